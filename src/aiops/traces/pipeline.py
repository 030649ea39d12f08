"""traces_collect's steps: plan (watermark / backfill conf), collect a day chunk, publish.

Same conventions as metrics_extract and logs_collect: per-day chunks whose writes replace their
window (idempotent re-runs and backfills), a ``traces_collect`` watermark for catch-up.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from aiops.account.permissions import permissions
from aiops.metrics.pipeline import plan_range, split_days

PERMISSIONS = permissions("traces extract (the calls are in aiops.traces.collect)")

log = logging.getLogger(__name__)
WATERMARK = "traces_collect"


def plan(interval_start: datetime, interval_end: datetime, conf: dict[str, Any] | None) -> list[dict[str, str]]:
    from aiops.core.state import StateStore

    watermark = StateStore().get_watermark(WATERMARK)
    start, end, reason = plan_range(interval_start, interval_end, conf, watermark)
    chunks = split_days(start, end)
    log.info("Traces [%s, %s): %s; %d chunk(s)", start.isoformat(), end.isoformat(), reason, len(chunks))
    return [c.to_dict() for c in chunks]


def collect_chunk(chunk: dict[str, str]) -> dict[str, Any]:
    from aiops.core import aws
    from aiops.traces import collect
    from aiops.traces.store import TracesStore, frame

    start, end = datetime.fromisoformat(chunk["start"]), datetime.fromisoformat(chunk["end"])
    xray = aws.client("xray")
    stats = collect.service_graph_rows(start, end, xray)
    slow = collect.slow_rows(collect.trace_summaries(start, end, xray))
    store = TracesStore()
    store.upsert("stats", frame("stats", stats), start, end)
    store.upsert("slow", frame("slow", slow), start, end)
    services = sorted({r["service"] for r in stats if not r["edge"]})
    log.info("Traces [%s, %s): %d stat row(s) for %s, %d slow/faulty trace(s)", chunk["start"], chunk["end"],
             len(stats), services, len(slow))
    return {**chunk, "rows": len(stats), "slow": len(slow), "services": services}


def publish(results: list[dict[str, Any]], run_id: str | None = None) -> dict[str, Any]:
    from aiops.core.state import StateStore

    if not results:
        return {"chunks": 0}
    end = max(datetime.fromisoformat(r["end"]) for r in results)
    store = StateStore()
    current = store.get_watermark(WATERMARK)
    if current is None or end > current:
        store.set_watermark(WATERMARK, end, run_id=run_id)
    return {"chunks": len(results), "end": end.isoformat(), "rows": sum(r["rows"] for r in results)}
