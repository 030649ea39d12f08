"""How much the metrics store holds, and the check analyses run before reading it (issue 19).

See :mod:`aiops.core.readiness` for the rule: an analysis that needs history is skipped, with the
reason, until the store holds it.
"""

from __future__ import annotations

from datetime import datetime

from aiops.core.readiness import Coverage, check_metrics
from aiops.core.times import utc as _utc
from aiops.metrics import pipeline
from aiops.metrics import store as metrics_store


def metrics_coverage() -> Coverage:
    """What the metrics store holds: oldest point and the extraction watermark (of the connected
    account, when the data it vouches for exists: :func:`aiops.metrics.pipeline.data_until`)."""
    until = pipeline.data_until()
    store = metrics_store.MetricsStore()
    since = None
    for day in store.days()[:2]:  # the oldest partition may be empty after a quarantine: try the next
        frame = store.read_day(datetime.fromisoformat(day).date())
        if len(frame):
            since = _utc(frame["timestamp"].min().to_pydatetime())
            break
    return Coverage(since=since, until=_utc(until) if until is not None else None)


def require_metrics(what: str, *, days: float, until: datetime | None = None,
                    coverage: Coverage | None = None) -> Coverage:
    """Raise ``DataNotReady`` unless the metrics store holds ``days`` of history, complete up to
    ``until`` when given."""
    return check_metrics(what, coverage or metrics_coverage(), days=days, until=until)
