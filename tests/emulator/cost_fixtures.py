"""Shared by the cost tests: fill the metrics store straight from the seeded series (what
``metrics_extract`` lands, value for value — pinned by test_metrics_pipeline — without its 60 s of
extraction for 14 days)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

ANCHOR = datetime(2026, 11, 20, 12, tzinfo=UTC)
RESOURCE_DIMS = ("InstanceId", "DBInstanceIdentifier", "TargetGroup", "LoadBalancer")


def fill_metrics_store(seeded, end: datetime = ANCHOR, days: int = 14) -> int:
    import numpy as np
    import pandas as pd

    from aiops.metrics.model import STORE_COLUMNS
    from aiops.metrics.store import MetricsStore

    start = end - timedelta(days=days)
    t = np.arange(int(start.timestamp()), int(end.timestamp()), 300)
    stamps = pd.to_datetime(t, unit="s", utc=True)
    parts = []
    for s in seeded.series:
        dims = dict(s.dimensions)
        rid = next((dims[d] for d in RESOURCE_DIMS if d in dims), "")
        parts.append(pd.DataFrame({
            "series_id": s.series_id, "timestamp": stamps, "value": s.values(t).astype(float),
            "namespace": s.namespace, "metric": s.metric, "stat": s.stat,
            "dimensions": ",".join(f"{k}={v}" for k, v in sorted(dims.items())), "resource_id": rid,
            "service": "", "env": "", "team": ""}))
    frame = pd.concat(parts, ignore_index=True).astype(STORE_COLUMNS)
    MetricsStore().upsert(frame, start, end)
    from aiops.core.identity import current_account
    from aiops.core.state import StateStore
    from aiops.metrics.pipeline import WATERMARK

    StateStore().set_watermark(WATERMARK, end, run_id="fill_metrics_store",  # what metrics_extract records
                               account_id=current_account())
    return len(frame)
