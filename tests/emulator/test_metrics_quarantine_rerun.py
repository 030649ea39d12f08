"""Quarantine never deletes good rows (issue 15, failure 6): a series stored good by one run and
quarantined when the same window is re-run keeps its stored rows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import boto3
import pytest

from aiops.metrics import pipeline
from aiops.metrics.store import MetricsStore

pytestmark = pytest.mark.emulator
ANCHOR = datetime(2026, 11, 20, 12, tzinfo=UTC)
FLAKY = "AWS/EC2|CPUUtilization|InstanceId=i-flaky|Average"


def run_pipeline(interval_end: datetime, conf: dict | None = None) -> dict:
    chunks = pipeline.plan(interval_end - timedelta(minutes=15), interval_end, conf or {})
    key = pipeline.discover()["key"]
    return pipeline.publish([pipeline.extract_chunk(c, key) for c in chunks])


def test_rerun_that_quarantines_a_series_keeps_its_stored_good_rows(fresh_emulator, isolated_stores):
    cw = boto3.client("cloudwatch", endpoint_url=fresh_emulator.endpoint, region_name="us-east-1",
                      aws_access_key_id="testing", aws_secret_access_key="testing")
    start = ANCHOR - timedelta(hours=1)

    def put(instance, values, offset=0):
        cw.put_metric_data(Namespace="AWS/EC2", MetricData=[
            {"MetricName": "CPUUtilization", "Dimensions": [{"Name": "InstanceId", "Value": instance}],
             "Timestamp": start + timedelta(minutes=5 * (k + offset)), "Value": v, "Unit": "Percent"}
            for k, v in enumerate(values)])

    put("i-good", [10.0, 20.0, 30.0])
    put("i-flaky", [40.0, 50.0, 60.0])
    first = run_pipeline(ANCHOR, {"backfill_days": 0.1})
    assert first["quarantined"] == []
    stored = MetricsStore().read(start, ANCHOR)
    assert sorted(stored[stored["series_id"] == FLAKY]["value"]) == [40.0, 50.0, 60.0]

    put("i-flaky", [150.0], offset=3)  # a late, impossible value in the same window
    again = run_pipeline(ANCHOR, {"backfill_days": 0.1})  # the rerun quarantines the series ...
    assert again["quarantined"] == [FLAKY]
    after = MetricsStore().read(start, ANCHOR)
    assert sorted(after[after["series_id"] == FLAKY]["value"]) == [40.0, 50.0, 60.0]  # ... and keeps its rows
    assert sorted(after[after["resource_id"] == "i-good"]["value"]) == [10.0, 20.0, 30.0]
    assert not after.duplicated(["series_id", "timestamp"]).any()
