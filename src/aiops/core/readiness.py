"""Analyses wait for their data: coverage checks an analysis runs before it reports or recommends.

Each analysis DAG either is scheduled on the Asset it reads (``anomaly_detection`` on the metrics
Asset) or calls one of these first. When the data is not there yet — the first extract of a fresh
start still running, less history than the analysis needs, no SLO history for the week — the check
raises :class:`DataNotReady` with the reason, and the DAG turns it into ``AirflowSkipException``
(the run is *skipped*, the reason is the first line of its log). Never a report or a
recommendation from partial data.

The metrics store's coverage (``aiops.metrics.readiness``) is measured from what it holds: the
``metrics_extract`` watermark (the end of the last completed extraction: the store is complete up to
it) and the oldest point in the oldest day partition.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from aiops.core.errors import AiopsError
from aiops.core.times import utc as _utc

log = logging.getLogger(__name__)


class DataNotReady(AiopsError):
    """The data an analysis reads is not there yet (or not enough of it): skip, do not report."""

    def __init__(self, what: str, reason: str) -> None:
        self.what = what
        self.reason = reason
        super().__init__(f"{what}: skipped, data not ready: {reason}")


@dataclass(frozen=True)
class Coverage:
    since: datetime | None  # oldest point held
    until: datetime | None  # complete up to (the extraction watermark)

    @property
    def days(self) -> float:
        if self.since is None or self.until is None or self.until <= self.since:
            return 0.0
        return (self.until - self.since).total_seconds() / 86400

    def describe(self) -> str:
        if self.until is None:
            return "metrics_extract has not completed a run yet (the first extraction pulls the history)"
        if self.since is None:
            return f"the metrics store is empty (watermark {self.until.isoformat()})"
        return f"{self.days:.1f} day(s) of metrics, {self.since.isoformat()} to {self.until.isoformat()}"




def check_metrics(what: str, coverage: Coverage, *, days: float, until: datetime | None = None) -> Coverage:
    """Raise :class:`DataNotReady` unless ``coverage`` holds ``days`` of history, complete up to
    ``until`` when given (e.g. the midnight a model is fitted for). The metrics store's own coverage:
    ``aiops.metrics.readiness.require_metrics``."""
    cov = coverage
    if cov.until is None or cov.since is None:
        raise DataNotReady(what, cov.describe())
    if until is not None and cov.until < _utc(until):
        raise DataNotReady(what, f"metrics are complete only up to {cov.until.isoformat()}, it needs data up to "
                                 f"{_utc(until).isoformat()} (the extraction has not caught up yet)")
    slack = timedelta(minutes=30)  # the first extraction starts at 'now - N days', a few minutes after the hour
    if cov.days * 86400 + slack.total_seconds() < days * 86400:
        raise DataNotReady(what, f"it needs {days:g} day(s) of metrics, the store holds {cov.describe()}")
    log.info("%s: data ready (%s)", what, cov.describe())
    return cov


def require_slo_history(what: str, start: datetime, end: datetime, history: Any, *,
                        tolerance: timedelta = timedelta(hours=1)) -> None:
    """Raise :class:`DataNotReady` unless ``history`` (rows of ``aiops_slo_history``) covers
    ``(start, end]`` for at least one SLO, within ``tolerance`` at either end."""
    start, end = _utc(start), _utc(end)
    if history is None or len(history) == 0:
        raise DataNotReady(what, f"no SLO history between {start.isoformat()} and {end.isoformat()} "
                                 "(slo_tracking has not evaluated this period; backfill it with conf start/end)")
    first, last = _utc(history["evaluated_at"].min().to_pydatetime()), _utc(history["evaluated_at"].max().to_pydatetime())
    if first > start + tolerance or last < end - tolerance:
        held = (last - first).total_seconds() / 86400
        raise DataNotReady(what, f"SLO history covers {first.isoformat()} to {last.isoformat()} ({held:.1f} of "
                                 f"{(end - start).total_seconds() / 86400:.1f} days); backfill slo_tracking over "
                                 f"{start.isoformat()} - {end.isoformat()} to report this period")
