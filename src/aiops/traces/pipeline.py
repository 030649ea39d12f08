"""traces_collect's steps: plan (watermark / backfill conf), collect a day chunk, publish.

Same conventions as metrics_extract and logs_collect (:class:`aiops.metrics.windowed.Collection`):
per-day chunks whose writes replace their window (idempotent re-runs and backfills), a
``traces_collect`` watermark for catch-up, bad rows quarantining their series. Each chunk also
publishes the derived series fault rate and p99 latency per service (:mod:`aiops.metrics.derived`),
which anomaly detection scores like CloudWatch metrics.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import TYPE_CHECKING, Any

from aiops.account.permissions import permissions
from aiops.metrics.windowed import Collection

if TYPE_CHECKING:
    import pandas as pd

PERMISSIONS = permissions("traces extract (the calls are in aiops.traces.collect)")

log = logging.getLogger(__name__)
WATERMARK = "traces_collect"
COLLECTION = Collection(WATERMARK, "Traces", totals=("rows",))
plan = COLLECTION.plan
publish = COLLECTION.publish


def service_points(stats: pd.DataFrame) -> pd.DataFrame:
    """Derived points from the per-service rows (edge ""): p99 latency (seconds) and fault rate (%)."""
    import pandas as pd

    from aiops.metrics.derived import FAULT_RATE, P99_LATENCY

    own = stats[stats["edge"] == ""]
    p99 = own[own["p99"].notna()]
    return pd.concat([
        pd.DataFrame({"kind": P99_LATENCY.metric, "service": p99["service"].astype(str), "timestamp": p99["timestamp"],
                      "value": p99["p99"].astype(float)}),
        pd.DataFrame({"kind": FAULT_RATE.metric, "service": own["service"].astype(str), "timestamp": own["timestamp"],
                      "value": 100.0 * own["fault_rate"].astype(float)}),
    ], ignore_index=True)


def collect_chunk(chunk: dict[str, str]) -> dict[str, Any]:
    from aiops.core import aws
    from aiops.metrics import derived
    from aiops.traces import collect
    from aiops.traces.store import TracesStore

    start, end = datetime.fromisoformat(chunk["start"]), datetime.fromisoformat(chunk["end"])
    xray = aws.client("xray")
    stats = collect.service_graph_rows(start, end, xray)
    slow = collect.slow_rows(collect.trace_summaries(start, end, xray))
    store = TracesStore()
    wrote = {"stats": store.write("stats", store.frame("stats", stats), start, end),
             "slow": store.write("slow", store.frame("slow", slow), start, end)}
    good = store.frame("stats", stats)
    good = good[~good[["service", "edge"]].astype(str).agg("/".join, axis=1).isin(wrote["stats"]["quarantined"])] \
        if len(good) else good
    series = derived.publish("traces", service_points(good), start, end)
    services = sorted({r["service"] for r in stats if not r["edge"]})
    quarantined = sorted({s for w in wrote.values() for s in w["quarantined"]})
    log.info("Traces [%s, %s): %d stat row(s) for %s, %d slow/faulty trace(s), %d derived series%s", chunk["start"],
             chunk["end"], wrote["stats"]["rows"], services, wrote["slow"]["rows"], len(series["series"]),
             f"; quarantined: {quarantined}" if quarantined else "")
    return {**chunk, "rows": wrote["stats"]["rows"], "slow": wrote["slow"]["rows"], "services": services,
            "quarantined": quarantined, "derived_series": series["series"]}
