"""The anomaly event hand-off (score -> publish -> EventBridge -> alert intake) is one pydantic model:
it round-trips unchanged and a wrong or unknown field is refused where it is read."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from aiops.alerting.normalise import DeadLetter, normalise_message
from aiops.anomaly.model import AnomalyEvent
from aiops_sandbox import events as ev

ONSET = datetime(2026, 11, 26, 20, 15, tzinfo=UTC)
SERIES = "AWS/EC2|CPUUtilization|InstanceId=i-0e32a774a2a815833|Average"
EVIDENCE = {"component": "forecast_residual", "pipeline": ["forecast_residual", "tail_calibration"],
            "residual": 67.0, "band_half_width": 16.5, "residual_vs_band": 4.06, "direction": "above",
            "surprise": 25.0, "p_value": 1e-25, "threshold": 0.9}


def detail(**extra) -> dict:
    d = ev.anomaly_detail(series_id=SERIES, resource_id="i-0e32a774a2a815833", service="checkout", env="prod",
                          team="storefront", onset=ONSET, value=97.0, forecast=30.0, lower=15.0, upper=48.0)
    return {**d, **extra}


def score_result(*alerts: dict) -> dict:
    return {"batch": 0, "series": 1, "points": 12, "anomalies": 1, "fits": 0, "warmed": 0, "alerts": list(alerts),
            "end": (ONSET + timedelta(hours=1)).isoformat()}


@pytest.mark.parametrize("d", [
    pytest.param(detail(), id="without_evidence"),
    pytest.param(detail(calibrated_score=0.97, p_value=1e-25, evidence=EVIDENCE), id="with_evidence"),
    pytest.param(detail(observed_at=ONSET.isoformat(), data_age_seconds=1200.0, run_id="r1"), id="stamped"),
])
def test_the_event_json_round_trips_unchanged(d):
    assert AnomalyEvent.model_validate(d).detail() == d
    assert AnomalyEvent.model_validate(json.loads(json.dumps(d))).detail() == d


@pytest.mark.parametrize(("alert", "field"), [
    pytest.param(detail(severity="high"), "severity", id="unknown_key"),
    pytest.param(detail(anomaly_score="very"), "anomaly_score", id="wrong_type"),
    pytest.param({k: v for k, v in detail().items() if k != "onset"}, "onset", id="missing_onset"),
    pytest.param(detail(evidence={**EVIDENCE, "direction": "sideways"}), "evidence.direction", id="bad_evidence"),
])
def test_publish_refuses_a_malformed_score_result(alert, field):
    from aiops.anomaly.pipeline import publish

    with pytest.raises(ValidationError) as err:
        publish([score_result(alert)], run_id="r1", now=ONSET)
    assert field in {".".join(str(p) for p in e["loc"]) for e in err.value.errors()}


@pytest.mark.parametrize(("d", "reason"), [
    pytest.param(detail(severity="high"), "detail.severity: Extra inputs are not permitted", id="unknown_key"),
    pytest.param({k: v for k, v in detail().items() if k != "series_id"}, "detail.series_id: Field required",
                 id="missing_series_id"),
    pytest.param(detail(onset="yesterday"), "detail.onset:", id="bad_onset"),
])
def test_the_intake_dead_letters_an_event_the_model_refuses(d, reason):
    [result] = normalise_message(json.dumps(ev.anomaly_detected(d, time=ONSET)))
    assert isinstance(result, DeadLetter)
    assert result.reason.startswith("malformed AIOps Anomaly Detected: ")
    assert reason in result.reason


def test_the_intake_reads_what_publish_sends():
    d = AnomalyEvent.model_validate(detail(anomaly_score=0.5, calibrated_score=0.5, p_value=1e-25, evidence=EVIDENCE,
                                           observed_at=ONSET, data_age_seconds=60.0, run_id="r1")).detail()
    [alert] = normalise_message(json.dumps(ev.anomaly_detected(d, time=ONSET)))
    assert not isinstance(alert, DeadLetter), alert
    assert alert.severity == "medium"  # a clear departure: 4 band half-widths out, surprise 25
    assert alert.labels["evidence"] == EVIDENCE
    assert alert.labels["observed_at"] == ONSET.isoformat()


def test_an_onset_before_the_platform_began_watching_is_history_however_recent():
    """A first start's catch-up found an onset 10 minutes before the first extraction ended: younger
    than the freshness horizon, but from before the platform watched the account — recorded, never
    sent (seen on a fresh `make run`: it opened an incident and asked to reboot an instance)."""
    from aiops.anomaly.pipeline import split_fresh

    started = ONSET + timedelta(minutes=10)
    before, after = (AnomalyEvent.model_validate(detail()),
                     AnomalyEvent.model_validate(detail(onset=(started + timedelta(minutes=5)).isoformat())))
    now = started + timedelta(minutes=10)
    fresh, history = split_fresh([before, after], now=now, live_since=started)
    assert [a.onset for a in history] == [ONSET]
    assert [a.onset for a in fresh] == [started + timedelta(minutes=5)]
    # without the marker (no extraction yet recorded) only the horizon decides: both are young
    fresh, history = split_fresh([before, after], now=now)
    assert (len(fresh), len(history)) == (2, 0)


def test_the_first_extraction_marks_when_the_platform_began_watching(isolated_stores, monkeypatch):
    from aiops.metrics import pipeline as metrics

    monkeypatch.setattr(metrics, "current_account", lambda: "111122223333")
    chunk = {"start": (ONSET - timedelta(days=14)).isoformat(), "end": ONSET.isoformat(), "partitions": [],
             "rows": 0, "series": 0, "quarantined": [], "get_metric_data_calls": 0}
    metrics.publish([chunk])
    assert metrics.live_since("111122223333") == ONSET
    later = {**chunk, "start": ONSET.isoformat(), "end": (ONSET + timedelta(minutes=15)).isoformat()}
    metrics.publish([later])
    assert metrics.live_since("111122223333") == ONSET  # set once: later extractions are live
