"""logs_collect's steps: plan the window (watermark, backfill conf), collect a day chunk, publish.

Same conventions as metrics_extract (:class:`aiops.metrics.windowed.Collection`): real data
intervals, a watermark (``logs_collect``) so a run after downtime catches up, an explicit
``start``/``end`` conf for a backfill, and per-day chunks whose writes replace their window
(re-runs and backfills are idempotent). Bad rows quarantine their series, never good stored rows.
Each chunk also publishes the derived series "log errors per 5 minutes" per service
(:mod:`aiops.metrics.derived`), which anomaly detection scores like a CloudWatch metric.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from aiops.logs import collect
from aiops.logs.store import LogsStore
from aiops.metrics import derived
from aiops.metrics.derived import LOG_ERRORS
from aiops.metrics.windowed import Collection

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger(__name__)
WATERMARK = "logs_collect"
COLLECTION = Collection(WATERMARK, "Logs", totals=("errors",), unions=("truncated", "quarantined"))
plan = COLLECTION.plan
publish = COLLECTION.publish


def error_points(counts: pd.DataFrame, start: datetime, end: datetime,
                 tags: dict[str, dict[str, str]]) -> pd.DataFrame:
    """Derived points: errors per service and 5 minutes (the env the service's tags name, else all),
    zero-filled over [start, end) for every service with lines in the window."""
    import pandas as pd

    out = []
    grid = pd.date_range(pd.Timestamp(start).floor("5min"), end, freq="5min", inclusive="left", tz=UTC)
    for service, g in counts.groupby("service"):
        env = tags.get(str(service), {}).get("env")
        if env and (g["env"] == env).any():
            g = g[g["env"] == env]
        errors = g.groupby("timestamp")["errors"].sum().reindex(grid, fill_value=0)
        out.append(pd.DataFrame({"kind": LOG_ERRORS.metric, "service": str(service), "timestamp": grid,
                                 "value": errors.to_numpy(dtype=float)}))
    return pd.concat(out, ignore_index=True) if out else pd.DataFrame(columns=["kind", "service", "timestamp", "value"])


def collect_chunk(chunk: dict[str, str]) -> dict[str, Any]:
    start, end = datetime.fromisoformat(chunk["start"]), datetime.fromisoformat(chunk["end"])
    groups = collect.service_log_groups()
    reduced = collect.collect(start, end, groups)
    counts, sigs = collect.to_frames(reduced)
    store = LogsStore()
    wrote = {"counts": store.write("counts", counts, start, end), "signatures": store.write("signatures", sigs, start, end)}
    stored = store.read("counts", start, end)  # this chunk's good rows (a quarantined series: its stored ones)
    series = derived.publish("logs", error_points(stored, start, end, derived.service_tags()), start, end)
    good = counts[~counts[["service", "env"]].astype(str).agg("/".join, axis=1).isin(wrote["counts"]["quarantined"])] \
        if len(counts) else counts
    errors = int(good["errors"].sum()) if len(good) else 0
    quarantined = sorted({s for w in wrote.values() for s in w["quarantined"]})
    log.info("Logs [%s, %s): %d group(s), %d bucket row(s), %d error(s), %d signature row(s), %d derived series%s%s",
             chunk["start"], chunk["end"], len(groups), wrote["counts"]["rows"], errors, wrote["signatures"]["rows"],
             len(series["series"]), f"; truncated: {reduced.truncated}" if reduced.truncated else "",
             f"; quarantined: {quarantined}" if quarantined else "")
    return {**chunk, "groups": len(groups), "rows": wrote["counts"]["rows"], "errors": errors,
            "truncated": reduced.truncated, "quarantined": quarantined, "derived_series": series["series"]}
