"""logs_collect's steps: plan the window (watermark, backfill conf), collect a day chunk, publish.

Same conventions as metrics_extract: real data intervals, a watermark (``logs_collect``) so a run
after downtime catches up, an explicit ``start``/``end`` conf for a backfill, and per-day chunks
whose writes replace their window (re-runs and backfills are idempotent).
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from aiops.metrics.pipeline import plan_range, split_days

log = logging.getLogger(__name__)
WATERMARK = "logs_collect"


def plan(interval_start: datetime, interval_end: datetime, conf: dict[str, Any] | None) -> list[dict[str, str]]:
    from aiops.core.state import StateStore

    watermark = StateStore().get_watermark(WATERMARK)
    start, end, reason = plan_range(interval_start, interval_end, conf, watermark)
    chunks = split_days(start, end)
    log.info("Logs [%s, %s): %s; %d chunk(s)", start.isoformat(), end.isoformat(), reason, len(chunks))
    return [c.to_dict() for c in chunks]


def collect_chunk(chunk: dict[str, str]) -> dict[str, Any]:
    from aiops.logs import collect
    from aiops.logs.store import LogsStore

    start, end = datetime.fromisoformat(chunk["start"]), datetime.fromisoformat(chunk["end"])
    groups = collect.service_log_groups()
    reduced = collect.collect(start, end, groups)
    counts, sigs = collect.to_frames(reduced)
    store = LogsStore()
    store.upsert("counts", counts, start, end)
    store.upsert("signatures", sigs, start, end)
    errors = int(counts["errors"].sum()) if len(counts) else 0
    log.info("Logs [%s, %s): %d group(s), %d bucket row(s), %d error(s), %d signature row(s)%s", chunk["start"],
             chunk["end"], len(groups), len(counts), errors, len(sigs),
             f"; truncated: {reduced.truncated}" if reduced.truncated else "")
    return {**chunk, "groups": len(groups), "rows": len(counts), "errors": errors, "truncated": reduced.truncated}


def publish(results: list[dict[str, Any]], run_id: str | None = None) -> dict[str, Any]:
    """Advance the watermark to the newest chunk end (never backwards)."""
    from aiops.core.state import StateStore

    if not results:
        return {"chunks": 0}
    end = max(datetime.fromisoformat(r["end"]) for r in results)
    store = StateStore()
    current = store.get_watermark(WATERMARK)
    if current is None or end > current:
        store.set_watermark(WATERMARK, end, run_id=run_id)
    return {"chunks": len(results), "end": end.isoformat(), "errors": sum(r["errors"] for r in results),
            "truncated": sorted({g for r in results for g in r["truncated"]})}
