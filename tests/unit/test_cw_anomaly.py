"""Importing CloudWatch Anomaly Detection bands (the emulator lacks detectors: stubbed responses)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import boto3
import pytest
from botocore.stub import ANY, Stubber

from aiops.anomaly import collect as cw_anomaly
from aiops.core import aws

T0 = datetime(2026, 11, 20, 12, tzinfo=UTC)
DETECTOR = {
    "Namespace": "AWS/EC2", "MetricName": "CPUUtilization", "Stat": "Average",
    "Dimensions": [{"Name": "InstanceId", "Value": "i-0abc"}],
}


@pytest.fixture
def cloudwatch(monkeypatch):
    client = boto3.client("cloudwatch", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    monkeypatch.setattr(aws, "client", lambda service, **kw: client)
    with Stubber(client) as stub:
        yield stub


def test_lists_trained_single_metric_detectors_across_pages(cloudwatch):
    cloudwatch.add_response("describe_anomaly_detectors", {
        "AnomalyDetectors": [{**DETECTOR, "StateValue": "TRAINED", "SingleMetricAnomalyDetector": DETECTOR,
                              "Configuration": {"ExcludedTimeRanges": []}}],
        "NextToken": "p2"}, {"AnomalyDetectorTypes": ["SINGLE_METRIC"]})
    cloudwatch.add_response("describe_anomaly_detectors", {
        "AnomalyDetectors": [{"Namespace": "AWS/RDS", "MetricName": "CPUUtilization", "Stat": "Average",
                              "Dimensions": [{"Name": "DBInstanceIdentifier", "Value": "db"}],
                              "StateValue": "PENDING_TRAINING"}]},
        {"AnomalyDetectorTypes": ["SINGLE_METRIC"], "NextToken": "p2"})
    found = cw_anomaly.list_detectors()
    assert list(found) == ["AWS/EC2|CPUUtilization|InstanceId=i-0abc|Average"]


def test_band_is_read_from_the_expression_results(cloudwatch):
    stamps = [T0 + timedelta(minutes=5 * k) for k in range(3)]
    cloudwatch.add_response("get_metric_data", {"MetricDataResults": [
        {"Id": "m0", "Label": "CPUUtilization", "Timestamps": stamps, "Values": [40.0, 41.0, 95.0],
         "StatusCode": "Complete"},
        {"Id": "ad0", "Label": "CPUUtilization (expected) High", "Timestamps": stamps,
         "Values": [50.0, 51.0, 52.0], "StatusCode": "Complete"},
        {"Id": "ad0", "Label": "CPUUtilization (expected) Low", "Timestamps": stamps,
         "Values": [30.0, 31.0, 32.0], "StatusCode": "Complete"},
    ]}, {"MetricDataQueries": ANY, "StartTime": ANY, "EndTime": ANY, "ScanBy": "TimestampAscending"})
    bands = cw_anomaly.fetch_bands([DETECTOR], T0, T0 + timedelta(minutes=15))
    band = bands["AWS/EC2|CPUUtilization|InstanceId=i-0abc|Average"]
    assert band.upper == [50.0, 51.0, 52.0]
    assert band.lower == [30.0, 31.0, 32.0]
    assert band.timestamps == stamps


def test_band_request_pairs_each_metric_with_its_expression(cloudwatch):
    seen: dict = {}
    cloudwatch.client.meta.events.register("provide-client-params.cloudwatch.GetMetricData",
                                           lambda params, **kw: seen.update(params))
    cloudwatch.add_response("get_metric_data", {"MetricDataResults": []},
                            {"MetricDataQueries": ANY, "StartTime": ANY, "EndTime": ANY, "ScanBy": ANY})
    cw_anomaly.fetch_bands([DETECTOR], T0, T0 + timedelta(minutes=15), stddevs=3)
    ids = {q["Id"]: q for q in seen["MetricDataQueries"]}
    assert ids["ad0"]["Expression"] == "ANOMALY_DETECTION_BAND(m0, 3)"
    assert ids["m0"]["MetricStat"]["Metric"]["MetricName"] == "CPUUtilization"
