"""The sandbox emulator's extensions behave like the real APIs (and like moto where moto is right)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import boto3
import pytest

from aiops_sandbox import emulator

T0 = datetime(2026, 11, 1, tzinfo=UTC)


def _client(sandbox, service):
    return boto3.client(service, endpoint_url=sandbox.endpoint, region_name="us-east-1",
                        aws_access_key_id="testing", aws_secret_access_key="testing")


def _datum(name, instance, minutes, value):
    return {"MetricName": name, "Dimensions": [{"Name": "InstanceId", "Value": instance}],
            "Timestamp": T0 + timedelta(minutes=minutes), "Value": value}


def _query(qid, name, instance, stat, period=300):
    return {"Id": qid, "MetricStat": {"Metric": {"Namespace": "Test/Equiv", "MetricName": name,
                                                 "Dimensions": [{"Name": "InstanceId", "Value": instance}]},
                                      "Period": period, "Stat": stat}}


@pytest.mark.parametrize("stat", ["Average", "Sum", "Minimum", "Maximum", "SampleCount"])
def test_indexed_get_metric_data_matches_moto_on_small_data(stat):
    from moto.cloudwatch.models import CloudWatchBackend

    emulator.install_extensions()
    data = [_datum("Load", "i-1", m, float((m * 7) % 23)) for m in range(0, 120)]
    data += [_datum("Load", "i-2", m, 5.0) for m in range(0, 120, 5)]
    reference = CloudWatchBackend("us-east-1", "000000000001")
    emulator.ORIGINALS["put_metric_data"](reference, "Test/Equiv", data)
    expected = emulator.ORIGINALS["get_metric_data"](
        reference, [_query("a", "Load", "i-1", stat)], T0, T0 + timedelta(hours=2), "TimestampAscending")
    indexed = CloudWatchBackend("us-east-1", "000000000002")
    indexed.put_metric_data("Test/Equiv", data)
    got, token = emulator.get_metric_data_page(indexed, [_query("a", "Load", "i-1", stat)], T0,
                                               T0 + timedelta(hours=2), "TimestampAscending")
    assert token is None
    assert got[0]["values"] == pytest.approx(expected[0]["values"])
    assert [t.timestamp() for t in got[0]["timestamps"]] == [t.timestamp() for t in expected[0]["timestamps"]]


def test_get_metric_data_pages_at_max_datapoints_like_aws(sandbox):
    cw = _client(sandbox, "cloudwatch")
    for inst in ("i-p1", "i-p2"):
        cw.put_metric_data(Namespace="Test/Paging", MetricData=[
            {"MetricName": "X", "Dimensions": [{"Name": "InstanceId", "Value": inst}],
             "Timestamp": T0 + timedelta(minutes=5 * k), "Value": float(k)} for k in range(100)])
    queries = [{"Id": f"q{i}", "MetricStat": {"Metric": {"Namespace": "Test/Paging", "MetricName": "X",
                                                         "Dimensions": [{"Name": "InstanceId", "Value": inst}]},
                                              "Period": 300, "Stat": "Average"}}
               for i, inst in enumerate(("i-p1", "i-p2"))]
    pages, values = 0, {"q0": [], "q1": []}
    kwargs = {"MetricDataQueries": queries, "StartTime": T0, "EndTime": T0 + timedelta(days=1),
              "ScanBy": "TimestampAscending", "MaxDatapoints": 70}
    while True:
        resp = cw.get_metric_data(**kwargs)
        pages += 1
        for r in resp["MetricDataResults"]:
            values[r["Id"]].extend(r["Values"])
        if "NextToken" not in resp:
            break
        kwargs["NextToken"] = resp["NextToken"]
    assert pages == 3  # 200 points at 70 per page
    assert values["q0"] == [float(k) for k in range(100)]
    assert values["q1"] == [float(k) for k in range(100)]


def test_list_metrics_pages_by_500_and_filters_by_dimension(sandbox):
    cw = _client(sandbox, "cloudwatch")
    data = [_datum("M", f"i-{n:04d}", 0, 1.0) for n in range(620)]
    for i in range(0, len(data), 500):
        cw.put_metric_data(Namespace="Test/List", MetricData=data[i:i + 500])
    pages = list(cw.get_paginator("list_metrics").paginate(Namespace="Test/List"))
    assert [len(p["Metrics"]) for p in pages] == [500, 120]
    one = cw.list_metrics(Namespace="Test/List", Dimensions=[{"Name": "InstanceId", "Value": "i-0007"}])
    assert [m["Dimensions"][0]["Value"] for m in one["Metrics"]] == ["i-0007"]


def test_cost_explorer_answers_from_seeded_items_with_groups_and_filters(sandbox):
    account = "123456789012"
    seeded = emulator.get_cost_items(account)  # the session's simulated account: restore it after
    emulator.set_cost_items(account, [
        {"date": "2026-10-01", "service": "EC2", "cost": 10.0, "tags": {"team": "a"}},
        {"date": "2026-10-01", "service": "S3", "cost": 1.5, "tags": {"team": "b"}},
        {"date": "2026-10-02", "service": "EC2", "cost": 12.0, "tags": {"team": "a"}},
    ])
    try:
        ce = _client(sandbox, "ce")
        grouped = ce.get_cost_and_usage(TimePeriod={"Start": "2026-10-01", "End": "2026-10-03"},
                                        Granularity="DAILY", Metrics=["UnblendedCost"],
                                        GroupBy=[{"Type": "TAG", "Key": "team"}])
        day1 = {g["Keys"][0]: float(g["Metrics"]["UnblendedCost"]["Amount"])
                for g in grouped["ResultsByTime"][0]["Groups"]}
        assert day1 == {"team$a": 10.0, "team$b": 1.5}
        filtered = ce.get_cost_and_usage(TimePeriod={"Start": "2026-10-01", "End": "2026-10-03"},
                                         Granularity="MONTHLY", Metrics=["UnblendedCost"],
                                         Filter={"Dimensions": {"Key": "SERVICE", "Values": ["EC2"]}})
        assert float(filtered["ResultsByTime"][0]["Total"]["UnblendedCost"]["Amount"]) == 22.0
    finally:
        emulator.set_cost_items(account, seeded or [])


def test_cost_items_missing_a_field_are_rejected_naming_it():
    with pytest.raises(ValueError, match=r"cost item 1: missing field\(s\) \['cost'\]"):
        emulator.set_cost_items("000000000009", [{"date": "2026-01-01", "service": "x", "cost": 1},
                                                 {"date": "2026-01-01", "service": "x"}])


def test_backdate_sets_snapshot_start_time(sandbox):
    ec2 = _client(sandbox, "ec2")
    vol = ec2.create_volume(AvailabilityZone="us-east-1a", Size=1)["VolumeId"]
    snap = ec2.create_snapshot(VolumeId=vol)["SnapshotId"]
    emulator.post(sandbox.endpoint, "backdate", {"items": [
        {"kind": "ebs_snapshot", "id": snap, "time": "2025-01-02T03:04:05Z"}]})
    got = ec2.describe_snapshots(SnapshotIds=[snap])["Snapshots"][0]["StartTime"]
    assert got.astimezone(UTC) == datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)


def test_unknown_backdate_kind_is_a_400_naming_it(sandbox):
    with pytest.raises(RuntimeError, match="unknown backdate kind 'kettle'"):
        emulator.post(sandbox.endpoint, "backdate", {"items": [{"kind": "kettle", "id": "x", "time": "2025-01-01"}]})


def test_is_sandbox_tells_our_emulator_from_anything_else(sandbox):
    assert emulator.is_sandbox(sandbox.endpoint)
    assert not emulator.is_sandbox("http://127.0.0.1:9")  # nothing listens on the discard port


def test_log_history_older_than_put_log_events_takes_is_stored_and_read_back(sandbox):
    """PutLogEvents drops events older than 14 days (as AWS does); the log-history extension stores
    them, and FilterLogEvents reads them like any other event."""
    logs = _client(sandbox, "logs")
    logs.create_log_group(logGroupName="/test/history")
    logs.create_log_stream(logGroupName="/test/history", logStreamName="s")
    old = int((datetime.now(UTC) - timedelta(days=20)).timestamp() * 1000)
    events = [{"timestamp": old + i * 1000, "message": f"ERROR old {i}"} for i in range(3)]
    rejected = logs.put_log_events(logGroupName="/test/history", logStreamName="s", logEvents=events)
    assert rejected["rejectedLogEventsInfo"]["tooOldLogEventEndIndex"] == 2
    assert logs.filter_log_events(logGroupName="/test/history")["events"] == []

    assert emulator.post(sandbox.endpoint, "logs", {"group": "/test/history", "stream": "s",
                                                    "events": events}) == {"events": 3}
    got = logs.filter_log_events(logGroupName="/test/history", startTime=old, endTime=old + 10_000,
                                 filterPattern="ERROR")["events"]
    assert [(e["timestamp"], e["message"]) for e in got] == [(e["timestamp"], e["message"]) for e in events]


def test_log_history_refuses_a_missing_stream_and_unordered_events(sandbox):
    with pytest.raises(RuntimeError, match="log group '/test/nowhere' does not exist"):
        emulator.post(sandbox.endpoint, "logs", {"group": "/test/nowhere", "stream": "s", "events": []})
    logs = _client(sandbox, "logs")
    logs.create_log_group(logGroupName="/test/order")
    with pytest.raises(RuntimeError, match="log stream 's' does not exist"):
        emulator.post(sandbox.endpoint, "logs", {"group": "/test/order", "stream": "s", "events": []})
    logs.create_log_stream(logGroupName="/test/order", logStreamName="s")
    with pytest.raises(RuntimeError, match="chronological order"):
        emulator.post(sandbox.endpoint, "logs", {"group": "/test/order", "stream": "s", "events": [
            {"timestamp": 2000, "message": "b"}, {"timestamp": 1000, "message": "a"}]})
