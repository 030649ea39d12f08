"""metrics_extract's steps against the emulator: what lands in the store, idempotency, quarantine."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import boto3
import numpy as np
import pytest

from aiops.core.state import StateStore
from aiops.metrics import pipeline
from aiops.metrics.store import MetricsStore

pytestmark = pytest.mark.emulator
ANCHOR = datetime(2026, 11, 20, 12, tzinfo=UTC)
ACCOUNT = "123456789012"  # the emulator's default account (the seeded, simulated one)


def run_pipeline(interval_end: datetime, conf: dict | None = None) -> dict:
    chunks = pipeline.plan(interval_end - timedelta(minutes=15), interval_end, conf or {})
    key = pipeline.discover()["key"]
    return pipeline.publish([pipeline.extract_chunk(c, key) for c in chunks])


def test_backfill_lands_exactly_the_seeded_values(seeded, isolated_stores):
    summary = run_pipeline(ANCHOR, {"backfill_days": 1})
    frame = MetricsStore().read(ANCHOR - timedelta(days=1), ANCHOR)
    assert frame["series_id"].nunique() == len(seeded.series) == summary["series"]
    assert len(frame) == len(seeded.series) * 288
    by_id = {s.series_id: s for s in seeded.series}
    for sid, rows in frame.groupby("series_id"):
        t = (rows["timestamp"].astype("int64") // 10**9).to_numpy()
        assert np.allclose(rows["value"].to_numpy(), by_id[sid].values(t), atol=1e-5), sid


def test_rows_carry_the_resource_tags(seeded, isolated_stores):
    run_pipeline(ANCHOR, {"backfill_days": 0.25})
    frame = MetricsStore().read(ANCHOR - timedelta(hours=6), ANCHOR)
    ec2 = frame[frame["namespace"] == "AWS/EC2"]
    assert set(ec2["env"]) == {"prod", "staging"}
    assert {"checkout", "catalog", "payments", "platform"} <= set(ec2["service"])
    tg = frame[frame["metric"] == "HTTPCode_Target_5XX_Count"]
    assert "storefront" in set(tg["team"])


def test_rerunning_an_interval_replaces_it_without_duplicates(seeded, isolated_stores):
    run_pipeline(ANCHOR, {"backfill_days": 0.5})
    first = MetricsStore().read(ANCHOR - timedelta(days=1), ANCHOR)
    run_pipeline(ANCHOR)  # the scheduled interval again, inside what is already stored
    run_pipeline(ANCHOR, {"backfill_days": 0.5})
    again = MetricsStore().read(ANCHOR - timedelta(days=1), ANCHOR)
    assert len(again) == len(first)
    assert not again.duplicated(["series_id", "timestamp"]).any()


def test_steady_state_run_advances_the_watermark_and_extends_the_store(seeded, isolated_stores):
    run_pipeline(ANCHOR - timedelta(minutes=15), {"backfill_days": 0.1})
    assert StateStore().get_watermark(pipeline.WATERMARK, account_id=ACCOUNT) == ANCHOR - timedelta(minutes=15)
    run_pipeline(ANCHOR)
    assert StateStore().get_watermark(pipeline.WATERMARK, account_id=ACCOUNT) == ANCHOR
    last = MetricsStore().read(ANCHOR - timedelta(minutes=5), ANCHOR)
    assert last["series_id"].nunique() == len(seeded.series)


def test_bad_series_are_quarantined_and_named_while_good_ones_land(fresh_emulator, isolated_stores):
    cw = boto3.client("cloudwatch", endpoint_url=fresh_emulator.endpoint, region_name="us-east-1",
                      aws_access_key_id="testing", aws_secret_access_key="testing")
    start = ANCHOR - timedelta(hours=1)
    for instance, values in (("i-good", [10.0, 20.0, 30.0]), ("i-broken", [10.0, 150.0, 12.0])):
        cw.put_metric_data(Namespace="AWS/EC2", MetricData=[
            {"MetricName": "CPUUtilization", "Dimensions": [{"Name": "InstanceId", "Value": instance}],
             "Timestamp": start + timedelta(minutes=5 * k), "Value": v, "Unit": "Percent"}
            for k, v in enumerate(values)])
    summary = run_pipeline(ANCHOR, {"backfill_days": 0.1})
    assert summary["quarantined"] == ["AWS/EC2|CPUUtilization|InstanceId=i-broken|Average"]
    frame = MetricsStore().read(start, ANCHOR)
    assert set(frame["resource_id"]) == {"i-good"}
    assert list(frame["value"]) == [10.0, 20.0, 30.0]
    report_keys = [k for k in MetricsStore().artifacts.list_keys("metrics/quarantine/") if k.endswith(".json")]
    report = MetricsStore().artifacts.get_json(report_keys[0])
    issue = next(i for i in report["issues"] if i["severity"] == "quarantine")
    assert issue["series_id"].endswith("i-broken|Average")
    assert "CPUUtilization" in issue["expectation"]


def test_fresh_account_creates_the_artifact_bucket_on_first_use(fresh_emulator, isolated_stores):
    s3 = boto3.client("s3", endpoint_url=fresh_emulator.endpoint, region_name="us-east-1",
                      aws_access_key_id="testing", aws_secret_access_key="testing")
    assert isolated_stores.artifact_bucket not in [b["Name"] for b in s3.list_buckets()["Buckets"]]
    pipeline.discover()
    assert isolated_stores.artifact_bucket in [b["Name"] for b in s3.list_buckets()["Buckets"]]


@pytest.mark.parametrize(
    ("window", "calls"),
    [
        pytest.param(timedelta(minutes=15), 2, id="15_minutes_620_series_ceil_620_over_500"),
        pytest.param(timedelta(days=1), 2, id="one_day_batches_of_350"),
    ],
)
def test_get_metric_data_calls_meet_the_minimum(fresh_emulator, window, calls):
    from aiops.metrics.collect import CallStats, SeriesRef, fetch_metric_data, minimum_calls
    from aiops_sandbox import emulator

    start = ANCHOR - timedelta(days=1)
    emulator.post(fresh_emulator.endpoint, "metrics", {"series": [
        {"namespace": "AWS/EC2", "metric": "CPUUtilization", "dimensions": [{"Name": "InstanceId", "Value": f"i-{i}"}],
         "start": start.timestamp(), "step": 300, "values": [float(i % 100)] * 288} for i in range(620)]})
    refs = [SeriesRef("AWS/EC2", "CPUUtilization", (("InstanceId", f"i-{i}"),), "Average", "us-east-1", f"i-{i}")
            for i in range(620)]
    stats = CallStats()
    data = fetch_metric_data(refs, ANCHOR - window, ANCHOR, stats=stats)
    assert stats.get_metric_data_calls == calls == minimum_calls(620, window.total_seconds(), 300)
    assert stats.datapoints == 620 * int(window.total_seconds() // 300)
    assert data["AWS/EC2|CPUUtilization|InstanceId=i-7|Average"][1][0] == 7.0


# --- the watermark per account, trusted only with its data (issue 15, failure 5) ---------------------
def _planned(interval_end: datetime) -> tuple[datetime, datetime]:
    chunks = pipeline.plan(interval_end - timedelta(minutes=5), interval_end, {})
    return pipeline._utc(chunks[0]["start"]), pipeline._utc(chunks[-1]["end"])


def test_a_watermark_whose_data_is_gone_is_not_trusted_and_history_is_pulled_again(seeded, isolated_stores):
    run_pipeline(ANCHOR - timedelta(minutes=15), {"backfill_days": 0.1})
    start, _ = _planned(ANCHOR)
    assert start > ANCHOR - timedelta(hours=1)  # steady state: the interval (plus the settle margin)
    store = MetricsStore()
    store.artifacts.delete_keys(store.artifacts.list_keys("metrics/"))  # the artifact store is emptied
    assert StateStore().get_watermark(pipeline.WATERMARK, account_id=ACCOUNT) is not None
    start, end = _planned(ANCHOR)
    assert (start, end) == (ANCHOR - timedelta(days=14), ANCHOR)  # the full history again


@pytest.fixture
def second_account(sandbox, monkeypatch):
    """The default AWS connection switched to another account (222222222222) of the same emulator,
    with credentials of a role assumed there."""
    import json

    from aiops.core import aws

    creds = boto3.client("sts", endpoint_url=sandbox.endpoint, region_name="us-east-1",
                         aws_access_key_id="testing", aws_secret_access_key="testing").assume_role(
        RoleArn="arn:aws:iam::222222222222:role/aiops", RoleSessionName="aiops")["Credentials"]
    monkeypatch.setenv("AIRFLOW_CONN_AWS_DEFAULT", json.dumps({
        "conn_type": "aws", "login": creds["AccessKeyId"], "password": creds["SecretAccessKey"],
        "extra": {"region_name": "us-east-1", "endpoint_url": sandbox.endpoint,
                  "aws_session_token": creds["SessionToken"]}}))
    aws.clear_client_cache()
    # S3 bucket names are global: the second account has its own artifact bucket
    from aiops.core.settings import get_settings

    monkeypatch.setenv("AIOPS_ARTIFACT_BUCKET", f"{get_settings().artifact_bucket}-second")
    get_settings.cache_clear()
    # one instance's CPU in that account: 13 days ago and an hour ago
    boto3.client("cloudwatch", endpoint_url=sandbox.endpoint, region_name="us-east-1",
                 aws_access_key_id=creds["AccessKeyId"], aws_secret_access_key=creds["SecretAccessKey"],
                 aws_session_token=creds["SessionToken"]).put_metric_data(Namespace="AWS/EC2", MetricData=[
        {"MetricName": "CPUUtilization", "Dimensions": [{"Name": "InstanceId", "Value": "i-0second"}],
         "Timestamp": ANCHOR - age, "Value": 42.0, "Unit": "Percent"}
        for age in (timedelta(days=13), timedelta(hours=1))])
    yield "222222222222"
    monkeypatch.undo()
    get_settings.cache_clear()
    aws.clear_client_cache()


def test_another_account_bootstraps_its_own_history(seeded, isolated_stores, request):
    from aiops.core.identity import current_account

    run_pipeline(ANCHOR - timedelta(minutes=15), {"backfill_days": 0.1})
    first = StateStore().get_watermark(pipeline.WATERMARK, account_id=ACCOUNT)
    other = request.getfixturevalue("second_account")
    assert current_account() == other
    assert _planned(ANCHOR) == (ANCHOR - timedelta(days=14), ANCHOR)  # its own 14 days, not the first's
    run_pipeline(ANCHOR)
    assert StateStore().get_watermark(pipeline.WATERMARK, account_id=other) == ANCHOR
    frame = MetricsStore().read(ANCHOR - timedelta(days=14), ANCHOR)  # that account's artifact store
    assert set(frame["resource_id"]) == {"i-0second"}
    assert frame["timestamp"].min() == ANCHOR - timedelta(days=13)
    assert StateStore().get_watermark(pipeline.WATERMARK, account_id=ACCOUNT) == first  # untouched
