"""The metrics_extract pipeline: plan -> discover -> extract (one mapped task per day) -> publish.

Planning decides which time range a run pulls, so nothing waits two weeks for data and a backfill
of N days is a handful of runs:

* conf ``{"start": ISO, "end": ISO}`` or ``{"backfill_days": N}``: exactly that range;
* empty store (no watermark): the last ``metrics_history_days`` before the interval end;
  the watermark is per AWS account (STS GetCallerIdentity of the connection) and trusted only when
  the day partition it vouches for is in the artifact store, so an emptied store or a connection to
  another account pulls that account's history again (:func:`data_until`);
* a gap since the watermark (scheduler was down): from the watermark, at most the history window;
* otherwise the data interval, widened ``metrics_settle_minutes`` back because CloudWatch data
  arrives late (the partition upsert makes the overlap harmless).

The range is split at UTC midnights into chunks; each chunk is one mapped ``extract`` task that
writes one day partition.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from aiops.core.artifacts import ArtifactStore
from aiops.core.identity import current_account
from aiops.core.settings import Settings, get_settings
from aiops.core.state import StateStore
from aiops.core.times import floor as _floor
from aiops.core.times import utc as _utc
from aiops.metrics.collect import CallStats, SeriesRef, discover_series, fetch_metric_data
from aiops.metrics.model import STORE_COLUMNS, default_catalog
from aiops.metrics.quality import validate_metrics
from aiops.metrics.store import MetricsStore, empty_frame

log = logging.getLogger(__name__)

WATERMARK = "metrics_extract"
#: When the platform began watching an account's metrics: the end of its first extraction (or, for
#: a store that predates this marker, the watermark it had then). Data before it is history.
LIVE_SINCE = "metrics_live_since"
SERIES_KEY = "metrics/series/latest/series.json"






@dataclass(frozen=True)
class Chunk:
    start: datetime
    end: datetime

    def to_dict(self) -> dict[str, str]:
        return {"start": self.start.isoformat(), "end": self.end.isoformat()}

    @classmethod
    def from_dict(cls, d: dict[str, str]) -> Chunk:
        return cls(_utc(d["start"]), _utc(d["end"]))


def plan_range(interval_start: datetime, interval_end: datetime, conf: dict[str, Any] | None,
               watermark: datetime | None, settings: Settings | None = None) -> tuple[datetime, datetime, str]:
    """(start, end, reason) of what this run extracts."""
    s = settings or get_settings()
    conf = conf or {}
    period = s.metric_period_seconds
    end = _floor(_utc(interval_end), period)
    interval_start = _utc(interval_start)
    if interval_start >= end:  # a manual trigger has a zero-length interval: take one period
        interval_start = end - timedelta(seconds=period)
    history = timedelta(days=s.metrics_history_days)
    if conf.get("start") or conf.get("end"):
        if not (conf.get("start") and conf.get("end")):
            raise ValueError("conf needs both 'start' and 'end' (ISO 8601), or 'backfill_days'")
        start, end = _floor(_utc(conf["start"]), period), _floor(_utc(conf["end"]), period)
        reason = "explicit range from conf"
    elif conf.get("backfill_days"):
        days = float(conf["backfill_days"])
        if not 0 < days <= 63:
            raise ValueError("backfill_days must be in (0, 63]: CloudWatch keeps 5-minute data 63 days")
        start, reason = end - timedelta(days=days), f"backfill of {days:g} days from conf"
    elif watermark is None:
        start, reason = end - history, f"empty store: first run pulls {s.metrics_history_days} days"
    elif watermark < interval_start:
        start = max(watermark, end - history)
        reason = f"gap since watermark {watermark.isoformat()}"
    else:
        start = interval_start
        reason = "data interval"
    start = _floor(start - timedelta(minutes=s.metrics_settle_minutes) if reason == "data interval" else start,
                   period)
    if start >= end:
        raise ValueError(f"empty extraction range [{start.isoformat()}, {end.isoformat()})")
    return start, end, reason


def split_days(start: datetime, end: datetime) -> list[Chunk]:
    chunks, cursor = [], start
    while cursor < end:
        midnight = datetime(cursor.year, cursor.month, cursor.day, tzinfo=UTC) + timedelta(days=1)
        chunks.append(Chunk(cursor, min(midnight, end)))
        cursor = chunks[-1].end
    return chunks


def data_until(store: Any = None, *, account_id: str | None = None) -> datetime | None:
    """How far the connected account's metrics are extracted: its watermark, when the data it vouches
    for exists. A watermark whose last day partition is missing from the artifact store (the bucket was
    emptied or replaced) is not trusted: None, so the next run pulls the history again."""
    account_id = account_id if account_id is not None else current_account()
    watermark = (store or StateStore()).get_watermark(WATERMARK, account_id=account_id)
    if watermark is None:
        return None
    last_day = (watermark - timedelta(microseconds=1)).date()
    metrics = MetricsStore()
    if not metrics.artifacts.list_keys(metrics.day_key(last_day)):
        log.warning("The metrics watermark of account %s (%s) vouches for %s, which is not in %s: not trusted, "
                    "the history is pulled again", account_id, watermark.isoformat(), last_day,
                    metrics.artifacts.uri(metrics.day_key(last_day)))
        return None
    return watermark


def plan(interval_start: datetime, interval_end: datetime, conf: dict[str, Any] | None) -> list[dict[str, str]]:
    watermark = data_until()
    start, end, reason = plan_range(interval_start, interval_end, conf, watermark)
    chunks = split_days(start, end)
    log.info("Extracting [%s, %s): %s; %d chunk(s)", start.isoformat(), end.isoformat(), reason, len(chunks))
    return [c.to_dict() for c in chunks]


def discover() -> dict[str, Any]:
    """Discover series and save the list to the artifact store; returns its key and counts."""
    stats = CallStats()
    refs = discover_series(default_catalog(), get_settings().regions, stats=stats)
    store = ArtifactStore()
    store.put_json(SERIES_KEY, [r.to_dict() for r in refs])
    by_ns: dict[str, int] = {}
    for r in refs:
        by_ns[r.namespace] = by_ns.get(r.namespace, 0) + 1
    log.info("Discovered %d series %s (%d ListMetrics, %d tagging calls)", len(refs), by_ns,
             stats.list_metrics_calls, stats.tagging_calls)
    return {"key": SERIES_KEY, "series": len(refs), "by_namespace": by_ns}


def to_frame(data: dict[str, tuple[list[datetime], list[float]]], refs: dict[str, Any]) -> Any:
    import pandas as pd

    parts = []
    for sid, (ts, vals) in data.items():
        if not ts:
            continue
        ref = refs[sid]
        parts.append(pd.DataFrame({
            "series_id": sid, "timestamp": pd.to_datetime(ts, utc=True), "value": vals,
            "namespace": ref.namespace, "metric": ref.metric, "stat": ref.stat,
            "dimensions": ",".join(f"{k}={v}" for k, v in ref.dimensions), "resource_id": ref.resource_id,
            "service": ref.tag("service"), "env": ref.tag("env"), "team": ref.tag("team")}))
    if not parts:
        return empty_frame()
    return pd.concat(parts, ignore_index=True).astype(STORE_COLUMNS)


def extract_chunk(chunk: dict[str, str], series_key: str = SERIES_KEY) -> dict[str, Any]:
    """Pull one chunk, validate it, upsert the good series, quarantine the bad ones."""
    import time

    s = get_settings()
    window = Chunk.from_dict(chunk)
    artifacts = ArtifactStore()
    raw = artifacts.get_json(series_key)
    if raw is None:
        raise RuntimeError(f"series list {artifacts.uri(series_key)} is missing: run the discover task first")
    refs = {r.series_id: r for r in (SeriesRef.from_dict(d) for d in raw)}
    stats = CallStats()
    t0 = time.monotonic()

    def progress(done: int, total: int) -> None:
        log.info("  fetched %d/%d series", done, total)

    data = fetch_metric_data(list(refs.values()), window.start, window.end, period=s.metric_period_seconds,
                             batch_size=s.get_metric_data_batch, stats=stats, progress=progress)
    frame = to_frame(data, refs)
    good, bad, report = validate_metrics(
        frame, default_catalog(), window_start=window.start, window_end=window.end,
        freshness=timedelta(minutes=s.metrics_freshness_minutes), expected_series=list(refs))
    store = MetricsStore(artifacts)
    written = store.upsert(good, window.start, window.end)
    quarantine_uri = store.quarantine(bad, report.to_dict(), window.start, window.end)
    log.info("[%s, %s): %s; %d GetMetricData call(s); wrote %s in %.1fs", window.start.isoformat(),
             window.end.isoformat(), report.summary(), stats.get_metric_data_calls, written,
             time.monotonic() - t0)
    return {**window.to_dict(), "rows": len(good), "series": int(good["series_id"].nunique()),
            "quarantined": sorted(report.quarantined), "warnings": len(report.warnings),
            "get_metric_data_calls": stats.get_metric_data_calls, "partitions": written,
            "quarantine": quarantine_uri}


def live_since(account_id: str | None = None) -> datetime | None:
    """When the platform began watching the account's metrics (:data:`LIVE_SINCE`); None before its
    first extraction. Anomaly onsets before it are history: a first start never pages."""
    return StateStore().get_watermark(LIVE_SINCE, account_id=current_account() if account_id is None else account_id)


def publish(results: list[dict[str, Any]], run_id: str | None = None) -> dict[str, Any]:
    """Advance the watermark and summarise the run (the Asset event's extra)."""
    results = sorted(results, key=lambda r: r["start"])
    end = max(_utc(r["end"]) for r in results)
    store, account = StateStore(), current_account()
    previous = store.get_watermark(WATERMARK, account_id=account)
    store.set_watermark(WATERMARK, end, run_id=run_id, account_id=account)
    if store.get_watermark(LIVE_SINCE, account_id=account) is None:
        # the first extraction of this account: everything it brought in is history
        store.set_watermark(LIVE_SINCE, previous or end, run_id=run_id, account_id=account)
    summary = {
        "start": results[0]["start"], "end": end.isoformat(),
        "partitions": sorted({p for r in results for p in r["partitions"]}),
        "rows": sum(r["rows"] for r in results),
        "series": max((r["series"] for r in results), default=0),
        "quarantined": sorted({s for r in results for s in r["quarantined"]}),
        "get_metric_data_calls": sum(r["get_metric_data_calls"] for r in results),
    }
    log.info("Published %s rows over %d partition(s); %d series quarantined", f"{summary['rows']:,}",
             len(summary["partitions"]), len(summary["quarantined"]))
    return summary
