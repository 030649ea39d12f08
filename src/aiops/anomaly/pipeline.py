"""The anomaly_detection pipeline: plan -> score (one mapped task per batch of series) -> publish.

Scoring a window [start, end) for a batch, day by day:

1. the day's models: fitted on the ``history_days`` before 00:00 UTC of that day (by
   ``anomaly_refit`` ahead of time, or here on demand) and persisted;
2. the detector state at 00:00 UTC of that day: the checkpoint, or — on the very first run — built
   by replaying ``anomaly_warmup_days`` of history;
3. the day's points from the metrics store up to ``end`` are stepped through the detector; rows in
   [start, end) are kept, and when the day is complete the next midnight's checkpoint is saved.

Because every run re-scores from its day's checkpoint with the day's models, running an interval
twice, or backfilling it later, reproduces the same scores and anomalies. Alerts are the onsets of
anomaly episodes inside the window; ``publish`` sends them to EventBridge (source
``matcarv.aiops``, detail-type ``AIOps Anomaly Detected``), whose ops-events rule delivers them to
the SQS queue the incident intake watches — one path for every alert source.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from aiops.account.permissions import permissions
from aiops.anomaly import SCORE_COLUMNS
from aiops.anomaly.collect import fetch_bands, list_detectors
from aiops.anomaly.detector import Detector, DetectorState, FittedModel
from aiops.anomaly.model import AnomalyEvent, AnomalyEvidence
from aiops.anomaly.spec import load_specs
from aiops.anomaly.store import DOMAIN, SCORE_STORE_COLUMNS, AnomalyStore, stable_batch
from aiops.core import aws
from aiops.core.artifacts import ArtifactStore
from aiops.core.identity import current_account
from aiops.core.settings import get_settings
from aiops.core.state import StateStore
from aiops.metrics import derived
from aiops.metrics.derived import COLLECTORS
from aiops.metrics.pipeline import _utc
from aiops.metrics.pipeline import live_since as metrics_live_since
from aiops.metrics.readiness import require_metrics

PERMISSIONS = permissions(
    "anomaly alerts onto the event bus",
    notifier=(
        "events:PutEvents @ arn:${AWS::Partition}:events:${AWS::Region}:${AWS::AccountId}:event-bus/${EventBusName}",
    ),
)

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger(__name__)

WATERMARK = "anomaly_detection"
ALERT_SOURCE = "matcarv.aiops"
ALERT_DETAIL_TYPE = "AIOps Anomaly Detected"
DAY = timedelta(days=1)


def _midnight(value: datetime) -> datetime:
    return datetime(value.year, value.month, value.day, tzinfo=UTC)


def plan(asset_ranges: list[dict[str, Any]], conf: dict[str, Any] | None, interval_end: datetime) -> list[dict]:
    """One mapped task per batch, all scoring the same window.

    The window is conf ``start``/``end`` when given (a backfill), else the union of the triggering
    metrics Asset events' ranges, capped to the last ``anomaly_max_score_days``.
    """
    s = get_settings()
    conf = conf or {}
    if conf.get("start") or conf.get("end"):
        if not (conf.get("start") and conf.get("end")):
            raise ValueError("conf needs both 'start' and 'end' (ISO 8601)")
        start, end = _utc(conf["start"]), _utc(conf["end"])
    elif asset_ranges:
        start = min(_utc(r["start"]) for r in asset_ranges)
        end = max(_utc(r["end"]) for r in asset_ranges)
        start = max(start, end - timedelta(days=s.anomaly_max_score_days))
    else:
        end = _utc(interval_end)
        start = end - timedelta(minutes=15)
    if start >= end:
        raise ValueError(f"empty scoring window [{start.isoformat()}, {end.isoformat()})")
    emit = bool(conf.get("emit_alerts", True))
    log.info("Scoring [%s, %s) in %d batches; alerts %s", start.isoformat(), end.isoformat(), s.anomaly_batches,
             "on" if emit else "off")
    return [{"batch": b, "batches": s.anomaly_batches, "start": start.isoformat(), "end": end.isoformat(),
             "emit_alerts": emit} for b in range(s.anomaly_batches)]


def derived_ready(window_end: datetime, now: datetime, watermarks: dict[str, datetime | None], *,
                  max_wait: timedelta, live_within: timedelta = timedelta(minutes=30)) -> tuple[bool, str]:
    """Whether a run scoring up to ``window_end`` should start now, and why.

    The derived series (p99 latency, fault rate, log errors) come from ``traces_collect`` and
    ``logs_collect``, which run on the same 15-minute schedule as ``metrics_extract`` but finish
    at their own pace. A run waits for a collector that is live — its watermark is behind
    ``window_end`` by no more than ``live_within`` — until it has brought the same window in, or
    until ``window_end + max_wait`` (then the newest derived points are scored by the next run).
    A collector that never ran, is paused or is catching up days is not waited for; neither is
    anything when the window ended longer ago than ``max_wait`` (a backfill, a catch-up).
    """
    behind = sorted(name for name, wm in watermarks.items()
                    if wm is not None and window_end - live_within <= wm < window_end)
    if not behind:
        return True, f"derived collectors are in for {window_end.isoformat()}"
    if now >= window_end + max_wait:
        return True, (f"{', '.join(behind)} not in for {window_end.isoformat()} after {max_wait}: scoring "
                      "without its newest window (the next run scores it)")
    return False, f"waiting for {', '.join(behind)} to bring in the window ending {window_end.isoformat()}"


def wait_for_derived(batches: list[dict[str, Any]], now: datetime | None = None) -> tuple[bool, str]:
    """:func:`derived_ready` for this run's window, with the collectors' watermarks from the state store."""
    s = get_settings()
    if not batches or s.anomaly_derived_wait_seconds <= 0:
        return True, "no wait for derived collectors (AIOPS_ANOMALY_DERIVED_WAIT_SECONDS=0)" if batches else "no batches"
    store = StateStore()
    watermarks = {name: store.get_watermark(name) for name in COLLECTORS.values()}
    return derived_ready(_utc(batches[0]["end"]), now or datetime.now(UTC), watermarks,
                         max_wait=timedelta(seconds=s.anomaly_derived_wait_seconds))


def _series_refs(batch: int, batches: int) -> dict[str, Any]:
    """This batch's series: CloudWatch's and the derived ones (error rate, p99 latency, log errors)."""
    return {r.series_id: r for r in derived.series_refs() if stable_batch(r.series_id, batches) == batch}


def _enough(detector: Any, history: pd.Series) -> bool:
    """Cold start: no model until the spec's minimum history exists (the detector then says so)."""
    valid = history.dropna()
    if len(valid) < detector.spec.refit.min_history_points:
        return False
    span_hours = (valid.index[-1] - valid.index[0]).total_seconds() / 3600
    return span_hours >= detector.spec.refit.min_history_hours


def _history(frame: pd.DataFrame, sid: str, start: datetime, end: datetime) -> pd.Series:
    import pandas as pd

    rows = frame[(frame["series_id"] == sid) & (frame["timestamp"] >= start) & (frame["timestamp"] < end)]
    return pd.Series(rows["value"].to_numpy(), index=pd.DatetimeIndex(rows["timestamp"]), name=sid).sort_index()


def score_batch(task: dict[str, Any]) -> dict[str, Any]:
    """Score one batch of series over the task's window; persist scores, anomalies, models, state."""
    import pandas as pd

    s = get_settings()
    t0 = time.monotonic()
    batch, batches = int(task["batch"]), int(task["batches"])
    start, end = _utc(task["start"]), _utc(task["end"])
    refs = _series_refs(batch, batches)
    specs = load_specs(s.include_dir / "models")
    detectors = {sid: Detector(specs.for_series(r.namespace, r.metric)) for sid, r in refs.items()}
    store = AnomalyStore()
    summary: dict[str, Any] = {"batch": batch, "series": len(refs), "points": 0, "anomalies": 0, "fits": 0,
                               "warmed": 0, "alerts": []}
    if not refs:
        return summary
    history_days = max(d.spec.refit.history_days for d in detectors.values())
    first_day = _midnight(start)
    data = derived.read(first_day - timedelta(days=max(history_days, s.anomaly_warmup_days)), end,
                        series_ids=list(refs), columns=["series_id", "timestamp", "value"])
    scored_parts: list[pd.DataFrame] = []
    day = first_day
    while day < end:
        d = day.date()
        model_json = store.load_models(d, batch)
        models: dict[str, FittedModel | None] = {}
        fitted_now = 0
        for sid, det in detectors.items():
            if sid in model_json:
                models[sid] = FittedModel.from_json(model_json[sid])
                continue
            history = _history(data, sid, day - timedelta(days=det.spec.refit.history_days), day)
            model = det.fit(history, fitted_at=pd.Timestamp(day)) if _enough(det, history) else None
            if model is not None:
                model_json[sid] = model.to_json()
                # score with exactly what a later run will load, so re-runs reproduce this one
                model = FittedModel.from_json(model_json[sid])
                fitted_now += 1
            models[sid] = model
        if fitted_now:
            store.save_models(d, batch, model_json)
            summary["fits"] += fitted_now
        state_json = store.load_state(d, batch)
        states: dict[str, DetectorState] = {}
        warmed = False
        for sid, det in detectors.items():
            if sid in state_json:
                states[sid] = DetectorState.from_json(state_json[sid])
                continue
            # First run for this series: replay recent history to build the state at midnight.
            warm = _history(data, sid, day - timedelta(days=s.anomaly_warmup_days), day)
            state = det.new_state()
            if len(warm):
                _, state = det.step(warm, models[sid], state)
            state_json[sid] = state.to_json()
            states[sid] = DetectorState.from_json(state_json[sid])  # what later runs will load
            summary["warmed"] += 1
            warmed = True
        if warmed:
            store.save_state(d, batch, state_json)
        day_end = min(day + DAY, end)
        next_states: dict[str, str] = {}
        for sid, det in detectors.items():
            points = _history(data, sid, day, day_end)
            scored, state = det.step(points, models[sid], states[sid])
            next_states[sid] = state.to_json()
            if len(scored):
                scored.insert(0, "series_id", sid)
                scored_parts.append(scored)  # from midnight: onsets need the points before `start`
        if day + DAY <= end:  # the day is complete: checkpoint the next midnight
            store.save_state((day + DAY).date(), batch, next_states)
        day += DAY

    day_scores = (pd.concat(scored_parts, ignore_index=True) if scored_parts
                  else pd.DataFrame(columns=["series_id", *SCORE_COLUMNS]))
    day_scores = attach_cw_bands(day_scores, refs, start, end) if s.anomaly_import_cw_bands else day_scores
    for column in ("cw_lower", "cw_upper"):
        if column not in day_scores:
            day_scores[column] = float("nan")
    day_scores = day_scores[list(SCORE_STORE_COLUMNS)].astype(SCORE_STORE_COLUMNS)
    alerts = episode_onsets(day_scores, refs, start, end, detectors) if task.get("emit_alerts", True) else []
    scores = day_scores[(day_scores["timestamp"] >= start) & (day_scores["timestamp"] < end)]
    store.upsert("scores", batch, scores, start, end)
    anomalies = scores[scores["is_anomaly"]].copy()
    for column in ("namespace", "metric", "resource_id", "service", "env", "team"):
        anomalies[column] = [getattr(refs[sid], column, None) if column in {"namespace", "metric", "resource_id"}
                             else refs[sid].tag(column) for sid in anomalies["series_id"]]
    store.upsert("anomalies", batch, anomalies, start, end)
    summary["points"] = len(scores)
    summary["anomalies"] = len(anomalies)
    summary["alerts"] = [a.detail() for a in alerts]  # XCom: the events' JSON, validated again by publish
    log.info("batch %d: %d series, %d points, %d anomalous, %d alert(s); %d fits, %d warm-ups; %.1fs", batch,
             len(refs), len(scores), len(anomalies), len(summary["alerts"]), summary["fits"], summary["warmed"],
             time.monotonic() - t0)
    return summary


def attach_cw_bands(scores: pd.DataFrame, refs: dict[str, Any], start: datetime, end: datetime) -> pd.DataFrame:
    """Add CloudWatch's own band (cw_lower/cw_upper) for series that have a trained detector."""
    import pandas as pd
    from botocore.exceptions import BotoCoreError, ClientError

    frames = []
    for region in sorted({r.region for r in refs.values()}):
        try:
            detectors = list_detectors(region)
        except (ClientError, BotoCoreError) as exc:  # not enabled / not permitted / not emulated
            log.info("CloudWatch anomaly detectors unavailable in %s: %s", region, exc)
            continue
        wanted = [d for sid, d in detectors.items() if sid in refs]
        for sid, band in fetch_bands(wanted, start, end, region=region).items():
            frames.append(pd.DataFrame({"series_id": sid, "timestamp": pd.to_datetime(band.timestamps, utc=True),
                                        "cw_lower": band.lower, "cw_upper": band.upper}))
    if not frames:
        return scores
    bands = pd.concat(frames, ignore_index=True)
    merged = scores.merge(bands, on=["series_id", "timestamp"], how="left")
    outside = (merged["value"] > merged["cw_upper"]) | (merged["value"] < merged["cw_lower"])
    merged.loc[outside & merged["is_anomaly"], "reason"] = merged["reason"] + "; also outside CloudWatch's band"
    return merged


def fingerprint(series_id: str, onset: datetime) -> str:
    return hashlib.sha1(f"anomaly|{series_id}|{onset.isoformat()}".encode()).hexdigest()[:16]


def episode_onsets(scores: pd.DataFrame, refs: dict[str, Any], start: datetime,
                   end: datetime, detectors: dict[str, Any] | None = None) -> list[AnomalyEvent]:
    """One alert per anomaly episode that begins in [start, end), not one per anomalous point.

    ``scores`` may begin before ``start`` (the run re-scores from midnight) so an episode that was
    already going on when the window opened is recognised as such and not alerted again."""
    alerts: list[AnomalyEvent] = []
    for sid, rows in scores.sort_values("timestamp").groupby("series_id", sort=True):
        flags = rows["is_anomaly"].to_numpy()
        onsets = [i for i in range(len(flags)) if flags[i] and (i == 0 or not flags[i - 1])]
        for i in onsets:
            row = rows.iloc[i]
            onset = row["timestamp"].to_pydatetime()
            if not start <= onset < end:
                continue
            ref = refs[sid]
            fields: dict[str, Any] = {
                "alert_type": "anomaly", "fingerprint": fingerprint(str(sid), onset), "series_id": str(sid),
                "namespace": ref.namespace, "metric": ref.metric, "dimensions": dict(ref.dimensions),
                "stat": ref.stat, "region": ref.region, "resource_id": ref.resource_id,
                "service": ref.tag("service"), "env": ref.tag("env"), "team": ref.tag("team"),
                "onset": onset, "value": float(row["value"]), "forecast": _num(row["forecast"]),
                "lower": _num(row["lower"]), "upper": _num(row["upper"]),
                "anomaly_score": float(row["anomaly_score"]), "reason": str(row["reason"]),
            }
            det = (detectors or {}).get(sid)
            if det is not None and _num(row["forecast"]) is not None:
                # additive: the calibrated score and what raised it, so alerting can route on confidence
                ev = AnomalyEvidence.model_validate(det.evidence(
                    float(row["value"]), float(row["forecast"]), float(row["lower"]), float(row["upper"]),
                    float(row["anomaly_score"])))
                fields |= {"calibrated_score": float(row["anomaly_score"]), "p_value": ev.p_value, "evidence": ev}
            alerts.append(AnomalyEvent(**fields))
    return alerts


def _num(x: Any) -> float | None:
    try:
        value = float(x)
    except (TypeError, ValueError):
        return None
    return None if value != value else value


def split_fresh(alerts: list[AnomalyEvent], now: datetime | None = None,
                horizon: timedelta | None = None,
                live_since: datetime | None = None) -> tuple[list[AnomalyEvent], list[AnomalyEvent]]:
    """(fresh, history): an onset older than the freshness horizon (vs the wall clock), or before
    the platform began watching the account (``live_since``: the end of its first extraction, so a
    first start's catch-up never pages however recent its data), is history — scored and stored,
    never alerted. Both come back stamped with ``observed_at`` and ``data_age_seconds``."""
    now = now or datetime.now(UTC)
    horizon = horizon or timedelta(minutes=get_settings().freshness_horizon_minutes)
    fresh: list[AnomalyEvent] = []
    history: list[AnomalyEvent] = []
    for a in alerts:
        observed = a.observed_at or a.onset
        age = (now - observed).total_seconds()
        stamped = AnomalyEvent.model_validate({**a.detail(), "observed_at": observed, "data_age_seconds": round(age, 1)})
        before_start = live_since is not None and a.onset < live_since
        (history if age > horizon.total_seconds() or before_start else fresh).append(stamped)
    return fresh, history


def publish(results: list[dict[str, Any]], run_id: str | None = None,
            now: datetime | None = None) -> dict[str, Any]:
    """Send the fresh alert events to EventBridge (10 per PutEvents call), advance the watermark.

    Onsets older than the freshness horizon (a first start, a catch-up, a backfill, a late extract)
    were scored and stored by ``score_batch`` but are not sent: history is analysed quietly."""
    # the score tasks' XCom: each alert is validated here, where it is read (unknown keys are an error)
    events = [AnomalyEvent.model_validate(a) for r in results for a in r.get("alerts", [])]
    since = metrics_live_since()
    alerts, history = split_fresh(events, now=now, live_since=since)
    if history:
        oldest = min(a.observed_at or a.onset for a in history).isoformat()
        log.warning("not alerting on %d anomaly onset(s) older than the freshness horizon (%g min) or before "
                    "the platform began watching the account (%s; oldest %s): history is recorded, not paged",
                    len(history), get_settings().freshness_horizon_minutes,
                    since.isoformat() if since else "not yet", oldest)
    sent, failed = 0, 0
    if alerts:
        events = aws.client("events")
        entries = [{"Source": ALERT_SOURCE, "DetailType": ALERT_DETAIL_TYPE,
                    "Detail": json.dumps(AnomalyEvent.model_validate({**a.detail(), "run_id": run_id}).detail()),
                    "Resources": [], "Time": a.onset} for a in alerts]
        for i in range(0, len(entries), 10):
            resp = events.put_events(Entries=entries[i:i + 10])
            failed += int(resp.get("FailedEntryCount", 0))
            sent += len(entries[i:i + 10]) - int(resp.get("FailedEntryCount", 0))
    if failed:
        raise RuntimeError(f"EventBridge rejected {failed} of {len(alerts)} alert events; the run will retry")
    summary = {"series": sum(r["series"] for r in results), "points": sum(r["points"] for r in results),
               "anomalies": sum(r["anomalies"] for r in results), "alerts_sent": sent,
               "alerts_history": len(history),
               "fits": sum(r["fits"] for r in results), "warmed": sum(r["warmed"] for r in results)}
    if results and "end" in results[0]:
        StateStore().set_watermark(WATERMARK, _utc(results[0]["end"]), run_id=run_id, account_id=current_account())
    log.info("anomaly detection: %s", summary)
    return summary


def scored_until(store: Any = None, *, account_id: str | None = None) -> datetime | None:
    """How far the connected account's series are scored: its ``anomaly_detection`` watermark, when
    the scores it vouches for exist (the last day's score partition in the artifact store, as
    :func:`aiops.metrics.pipeline.data_until` does for metrics). Another account's watermark is never
    read (watermarks are per account), and one whose scores are gone is not trusted: None."""
    account_id = account_id if account_id is not None else current_account()
    watermark = (store or StateStore()).get_watermark(WATERMARK, account_id=account_id)
    if watermark is None:
        return None
    prefix = ArtifactStore.key(DOMAIN, "scores", (watermark - timedelta(microseconds=1)).date(), "")
    if not ArtifactStore().list_keys(prefix):
        log.warning("The anomaly watermark of account %s (%s) vouches for scores not in the artifact store (%s): "
                    "not trusted", account_id, watermark.isoformat(), prefix)
        return None
    return watermark


def refit(task: dict[str, Any]) -> dict[str, Any]:
    """Fit the models a day's scoring will use (data before its midnight) for one batch."""
    import pandas as pd

    s = get_settings()
    day = _midnight(_utc(task["day"]))
    refs = _series_refs(int(task["batch"]), int(task["batches"]))
    specs = load_specs(s.include_dir / "models")
    store = AnomalyStore()
    existing = store.load_models(day.date(), int(task["batch"]))
    if existing and set(refs) <= set(existing) and not task.get("force"):
        return {"batch": task["batch"], "fitted": 0, "kept": len(existing)}
    data = derived.read(day - timedelta(days=30), day, series_ids=list(refs),
                               columns=["series_id", "timestamp", "value"])
    models: dict[str, str] = {}
    t0 = time.monotonic()
    for sid, ref in refs.items():
        det = Detector(specs.for_series(ref.namespace, ref.metric))
        history = _history(data, sid, day - timedelta(days=det.spec.refit.history_days), day)
        if _enough(det, history):
            models[sid] = det.fit(history, fitted_at=pd.Timestamp(day)).to_json()
    store.save_models(day.date(), int(task["batch"]), models)
    log.info("batch %s: fitted %d models for %s in %.1fs", task["batch"], len(models), day.date(),
             time.monotonic() - t0)
    return {"batch": task["batch"], "fitted": len(models), "kept": 0}


def refit_ready(day: str) -> None:
    """Raise ``DataNotReady`` unless the metrics store is complete up to the day's midnight and holds the
    specs' minimum history (a model fitted on a half-extracted history would be wrong all day)."""
    specs = load_specs(get_settings().include_dir / "models")
    hours = max([s.refit.min_history_hours for s in specs.specs.values()] or [specs.default.refit.min_history_hours])
    require_metrics("anomaly_refit", days=hours / 24, until=_midnight(_utc(day)))


def refit_plan(day: str, force: bool = False) -> list[dict[str, Any]]:
    """One refit task per batch for the day containing ``day`` (ISO date or datetime)."""
    s = get_settings()
    midnight = _midnight(_utc(day))
    return [{"batch": b, "batches": s.anomaly_batches, "day": midnight.isoformat(), "force": force}
            for b in range(s.anomaly_batches)]
