"""anomaly_detection's steps on the simulated account: anomalies found, quiet series quiet,
re-runs and backfills reproduce the same partitions, alerts reach the ops queue."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import boto3
import pytest

from aiops.anomaly import pipeline as anomaly
from aiops.metrics import pipeline as metrics

pytestmark = [pytest.mark.emulator, pytest.mark.slow]
ANCHOR = datetime(2026, 11, 20, 12, tzinfo=UTC)


@pytest.fixture(scope="module")
def store_with_history(seeded, tmp_path_factory):
    """A private artifact bucket holding the seeded account's last 4 days (the models fit on the days
    before each midnight), extracted once; scoring limited to a dozen series to keep the test fast."""
    from aiops.core.settings import get_settings

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AIOPS_ARTIFACT_BUCKET", "aiops-test-anomaly-pipeline")
        mp.setenv("AIOPS_HOME", str(tmp_path_factory.mktemp("aiops")))
        mp.setenv("AIOPS_ANOMALY_BATCHES", "2")
        mp.setenv("AIOPS_ANOMALY_IMPORT_CW_BANDS", "false")
        get_settings.cache_clear()
        # the platform began watching 4 days before the anchor (its first extraction ends there), so
        # the seeded anomalies after that are live data to it, not a first start's history
        extract(ANCHOR - timedelta(days=4, hours=1), ANCHOR - timedelta(days=4))
        extract(ANCHOR - timedelta(days=4), ANCHOR)
        # Score a handful of series: the surge's, its service's others, and clean ones elsewhere.
        from aiops.core.artifacts import ArtifactStore

        store = ArtifactStore()
        refs = store.get_json(metrics.SERIES_KEY)
        keep = [r for r in refs if r["metric"] in {"HTTPCode_Target_5XX_Count", "RequestCount"}
                and "TargetGroup" in r["dimensions"]]
        keep += [r for r in refs if r["metric"] == "CPUUtilization" and r["namespace"] == "AWS/RDS"]
        store.put_json(metrics.SERIES_KEY, keep)
        yield get_settings()
    get_settings.cache_clear()


def extract(start: datetime, end: datetime) -> dict:
    chunks = metrics.plan(end - timedelta(minutes=15), end, {"start": start.isoformat(), "end": end.isoformat()})
    key = metrics.discover()["key"]
    return metrics.publish([metrics.extract_chunk(c, key) for c in chunks])


def score(start: datetime, end: datetime, emit: bool = False) -> list[dict]:
    tasks = anomaly.plan([], {"start": start.isoformat(), "end": end.isoformat(), "emit_alerts": emit}, end)
    return [{**anomaly.score_batch(t), "end": t["end"]} for t in tasks]


@pytest.fixture
def surge_window(seeded):
    return next(a for a in seeded.manifest["anomalies"]
                if a["metric"] == "HTTPCode_Target_5XX_Count" and a["detectable"])


def test_surge_is_found_and_alerted_once(seeded, store_with_history, surge_window, sandbox):
    onset = datetime.fromisoformat(surge_window["start"].replace("Z", "+00:00"))
    results = score(onset - timedelta(hours=1), onset + timedelta(hours=1), emit=True)
    alerts = [a for r in results for a in r["alerts"]]
    surge_alerts = [a for a in alerts if a["series_id"] == surge_window["series_id"]]
    assert len(surge_alerts) == 1
    assert abs(datetime.fromisoformat(surge_alerts[0]["onset"]) - onset) <= timedelta(minutes=15)
    assert surge_alerts[0]["service"] == "checkout"
    # the calibrated score and the evidence that raised it travel with the event
    alert = surge_alerts[0]
    assert alert["calibrated_score"] == alert["anomaly_score"] >= 0.5
    ev = alert["evidence"]
    assert ev["component"] == "forecast_residual"
    assert ev["residual"] == pytest.approx(alert["value"] - alert["forecast"])
    assert ev["direction"] == "above"
    assert ev["residual_vs_band"] > 1.0
    assert 0.0 <= alert["p_value"] == ev["p_value"] < 0.01  # may underflow to 0 for a huge surge

    # Scored today, the surge (days ago) is history: recorded, not alerted (the freshness horizon).
    quiet = anomaly.publish(results, run_id="test-history")
    assert (quiet["alerts_sent"], quiet["alerts_history"]) == (0, len(alerts))
    # Scored live (minutes after the onset), it is alerted, carrying its data time and age.
    live_at = datetime.fromisoformat(surge_alerts[0]["onset"]) + timedelta(minutes=20)
    summary = anomaly.publish(results, run_id="test", now=live_at)
    assert summary["alerts_sent"] >= 1
    assert summary["alerts_sent"] + summary["alerts_history"] == len(alerts)
    sqs = boto3.client("sqs", endpoint_url=sandbox.endpoint, region_name="us-east-1",
                       aws_access_key_id="testing", aws_secret_access_key="testing")
    bodies = []
    for _ in range(5):
        got = sqs.receive_message(QueueUrl=seeded.manifest["resources"]["queues"]["ops_events"],
                                  MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", [])
        bodies += [json.loads(m["Body"]) for m in got]
    ours = [b for b in bodies if b.get("detail-type") == anomaly.ALERT_DETAIL_TYPE]
    [sent] = [b for b in ours if b["detail"]["fingerprint"] == surge_alerts[0]["fingerprint"]]
    assert sent["detail"]["observed_at"] == surge_alerts[0]["onset"]
    assert sent["detail"]["data_age_seconds"] == 1200.0
    assert sent["detail"]["evidence"]["component"] == "forecast_residual"


def test_rerun_and_backfill_reproduce_the_same_partition(store_with_history):
    from aiops.anomaly.store import AnomalyStore

    window = (ANCHOR - timedelta(hours=7), ANCHOR - timedelta(hours=5))
    score(*window)
    first = AnomalyStore().read("scores", *window)
    score(*window)  # the same interval again
    score(window[0] - timedelta(hours=3), window[1] + timedelta(hours=2))  # a wider backfill over it
    again = AnomalyStore().read("scores", *window)
    assert len(again) == len(first)
    assert not again.duplicated(["series_id", "timestamp"]).any()
    merged = first.merge(again, on=["series_id", "timestamp"], suffixes=("", "_again"))
    assert (merged["anomaly_score"] == merged["anomaly_score_again"]).all()
    assert (merged["is_anomaly"] == merged["is_anomaly_again"]).all()
