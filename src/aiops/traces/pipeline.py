"""traces_collect's steps: plan (watermark / backfill conf), collect a day chunk, publish.

Same conventions as metrics_extract and logs_collect (:class:`aiops.metrics.windowed.Collection`):
per-day chunks whose writes replace their window (idempotent re-runs and backfills), a
``traces_collect`` watermark for catch-up, bad rows quarantining their series. Each chunk also
publishes the derived series fault rate and p99 latency per service (:mod:`aiops.metrics.derived`),
which anomaly detection scores like CloudWatch metrics.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from aiops.account.permissions import permissions
from aiops.core import aws
from aiops.metrics import derived
from aiops.metrics.derived import FAULT_RATE, P99_LATENCY
from aiops.metrics.windowed import Collection
from aiops.traces import collect
from aiops.traces.store import TracesStore

if TYPE_CHECKING:
    import pandas as pd

PERMISSIONS = permissions("traces extract (the calls are in aiops.traces.collect)")

log = logging.getLogger(__name__)
WATERMARK = "traces_collect"
COLLECTION = Collection(WATERMARK, "Traces", totals=("rows",))
plan = COLLECTION.plan
publish = COLLECTION.publish


RATE_WINDOW = timedelta(minutes=15)  # the fault rate's window: a few sampled traces per 5 minutes are too few


def service_points(stats: pd.DataFrame, start: datetime | None = None) -> pd.DataFrame:
    """Derived points from the per-service rows (edge ""): p99 latency (seconds) per 5-minute window,
    and the fault rate (%) over the trailing RATE_WINDOW (faults / requests of the windows in it), so
    one faulty sampled trace is not a 33 % rate. ``stats`` may start RATE_WINDOW before ``start``
    (the stored windows before the chunk); points are returned from ``start``."""
    import pandas as pd

    own = stats[stats["edge"] == ""].sort_values("timestamp")
    parts = []
    for service, g in own.groupby("service"):
        sums = g.set_index("timestamp")[["faults", "requests"]].astype(float).rolling(RATE_WINDOW).sum()
        parts.append(pd.DataFrame({"kind": FAULT_RATE.metric, "service": str(service), "timestamp": sums.index,
                                   "value": (100.0 * sums["faults"] / sums["requests"]).to_numpy()}))
        p99 = g[g["p99"].notna()]
        parts.append(pd.DataFrame({"kind": P99_LATENCY.metric, "service": str(service), "timestamp": p99["timestamp"],
                                   "value": p99["p99"].astype(float).to_numpy()}))
    if not parts:
        return pd.DataFrame(columns=["kind", "service", "timestamp", "value"])
    points = pd.concat(parts, ignore_index=True)
    return points[points["timestamp"] >= pd.Timestamp(start)] if start is not None else points


def collect_chunk(chunk: dict[str, str]) -> dict[str, Any]:
    start, end = datetime.fromisoformat(chunk["start"]), datetime.fromisoformat(chunk["end"])
    xray = aws.client("xray")
    stats = collect.service_graph_rows(start, end, xray)
    slow = collect.slow_rows(collect.trace_summaries(start, end, xray))
    store = TracesStore()
    wrote = {"stats": store.write("stats", store.frame("stats", stats), start, end),
             "slow": store.write("slow", store.frame("slow", slow), start, end)}
    good = store.read("stats", start - RATE_WINDOW, end)  # what is stored now: this chunk's good rows and before
    series = derived.publish("traces", service_points(good, start), start, end)
    services = sorted({r["service"] for r in stats if not r["edge"]})
    quarantined = sorted({s for w in wrote.values() for s in w["quarantined"]})
    log.info("Traces [%s, %s): %d stat row(s) for %s, %d slow/faulty trace(s), %d derived series%s", chunk["start"],
             chunk["end"], wrote["stats"]["rows"], services, wrote["slow"]["rows"], len(series["series"]),
             f"; quarantined: {quarantined}" if quarantined else "")
    return {**chunk, "rows": wrote["stats"]["rows"], "slow": wrote["slow"]["rows"], "services": services,
            "quarantined": quarantined, "derived_series": series["series"]}
