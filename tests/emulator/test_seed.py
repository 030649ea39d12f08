"""The simulated account: resources, injected truths and history, as the manifest says."""

from __future__ import annotations

import gzip
import json
from datetime import UTC, datetime, timedelta

import boto3
import numpy as np
import pytest

from aiops_sandbox.cloudtrail import parse_cloudtrail_file

pytestmark = pytest.mark.emulator


@pytest.fixture(scope="module")
def aws(seeded, sandbox):
    def client(service):
        return boto3.client(service, endpoint_url=sandbox.endpoint, region_name="us-east-1",
                            aws_access_key_id="testing", aws_secret_access_key="testing")
    return client


@pytest.fixture(scope="module")
def manifest(seeded):
    return seeded.manifest


def _instance_tags(aws, instance_id):
    inst = aws("ec2").describe_instances(InstanceIds=[instance_id])["Reservations"][0]["Instances"][0]
    return {t["Key"]: t["Value"] for t in inst.get("Tags", [])}, inst


def test_manifest_is_written_where_tests_and_docs_read_it(seeded, manifest):
    from pathlib import Path

    path = Path(__import__("os").environ["AIOPS_HOME"]) / "sandbox" / "ground_truth.json"
    assert json.loads(path.read_text())["anchor"] == manifest["anchor"] == "2026-11-20T12:00:00Z"


def test_every_instance_carries_service_env_owner_team_tags(aws, manifest):
    for name, instance_id in manifest["resources"]["instances"].items():
        tags, _ = _instance_tags(aws, instance_id)
        assert {"service", "env", "owner", "team"} <= tags.keys(), name
        assert tags["env"] in {"prod", "staging"}


def test_three_services_across_two_environments(manifest, aws):
    envs = {}
    for instance_id in manifest["resources"]["instances"].values():
        tags, _ = _instance_tags(aws, instance_id)
        envs.setdefault(tags["service"], set()).add(tags["env"])
    assert {"checkout", "catalog", "payments"} <= envs.keys()
    assert all(envs[s] == {"prod", "staging"} for s in ("checkout", "catalog", "payments"))


def test_protected_resources_are_tagged(aws, manifest):
    protected_instances = [i for i in manifest["resources"]["protected"] if i.startswith("i-")]
    assert len(protected_instances) >= 2
    for instance_id in protected_instances:
        tags, _ = _instance_tags(aws, instance_id)
        assert tags["aiops:protected"] == "true"


def test_instances_span_families_and_an_auto_scaling_group(aws, manifest):
    types = set(manifest["resources"]["instance_types"].values())
    assert {t.split(".")[0] for t in types} >= {"t3", "m5", "c5", "r5"}
    group = aws("autoscaling").describe_auto_scaling_groups(AutoScalingGroupNames=["checkout-prod-asg"])
    assert len(group["AutoScalingGroups"][0]["Instances"]) == 3


def test_waste_exists_as_described(aws, manifest):
    ec2, waste = aws("ec2"), manifest["waste"]
    vols = {v["VolumeId"]: v for v in ec2.describe_volumes(VolumeIds=waste["unattached_volumes"])["Volumes"]}
    assert all(v["State"] == "available" and not v["Attachments"] for v in vols.values())
    gp2 = ec2.describe_volumes(VolumeIds=waste["gp2_volumes"])["Volumes"]
    assert {v["VolumeType"] for v in gp2} == {"gp2"}
    anchor = datetime(2026, 11, 20, 12, tzinfo=UTC)
    for snap in ec2.describe_snapshots(SnapshotIds=waste["old_snapshots"])["Snapshots"]:
        assert anchor - snap["StartTime"].astimezone(UTC) > timedelta(days=180)
    eips = ec2.describe_addresses(AllocationIds=waste["unassociated_eips"])["Addresses"]
    assert all("AssociationId" not in a for a in eips)


def test_injected_misconfigurations_are_real(aws, manifest):
    mis = {m["id"]: m for m in manifest["misconfigurations"]}
    sg = aws("ec2").describe_security_groups(GroupIds=[mis["ssh_open_to_world"]["resource"]])["SecurityGroups"][0]
    assert any(p["FromPort"] == 22 and {"CidrIp": "0.0.0.0/0"} in p["IpRanges"] for p in sg["IpPermissions"])
    iam = aws("iam")
    assert iam.list_mfa_devices(UserName="bob.builder")["MFADevices"] == []
    key = iam.list_access_keys(UserName="ci-legacy")["AccessKeyMetadata"][0]
    assert (datetime.now(UTC) - key["CreateDate"].astimezone(UTC)).days > 90
    policy = json.loads(aws("s3").get_bucket_policy(Bucket=mis["public_bucket"]["resource"])["Policy"])
    assert policy["Statement"][0]["Principal"] == "*"
    vol = aws("ec2").describe_volumes(VolumeIds=[mis["unencrypted_volume"]["resource"]])["Volumes"][0]
    assert vol["Encrypted"] is False


def test_cloudtrail_files_are_real_format_with_the_injected_events(aws, manifest):
    bucket = manifest["resources"]["buckets"]["cloudtrail"]
    keys = [o["Key"] for p in aws("s3").get_paginator("list_objects_v2").paginate(Bucket=bucket)
            for o in p.get("Contents", [])]
    assert len(keys) >= 48
    detections = {e["detection"] for e in manifest["security_events"]}
    assert {"root_account_usage", "security_group_opened_to_world", "cloudtrail_tampering"} <= detections
    event = next(e for e in manifest["security_events"] if e["detection"] == "cloudtrail_tampering")
    body = aws("s3").get_object(Bucket=bucket, Key=event["log_key"])["Body"].read()
    records = parse_cloudtrail_file(body)
    assert any(r["eventName"] == event["event_name"] for r in records)
    assert json.loads(gzip.decompress(body))["Records"][0]["eventVersion"]


def test_log_groups_hold_error_bursts_at_incident_times(aws, manifest):
    logs = aws("logs")
    groups = {g["logGroupName"]: g for g in logs.describe_log_groups(logGroupNamePrefix="/matcarv/")["logGroups"]}
    assert any("retentionInDays" not in g for g in groups.values())
    burst = manifest["logs"][0]
    start = int(datetime.fromisoformat(burst["start"].replace("Z", "+00:00")).timestamp() * 1000)
    end = int(datetime.fromisoformat(burst["end"].replace("Z", "+00:00")).timestamp() * 1000)
    events = logs.filter_log_events(logGroupName=burst["log_group"], startTime=start, endTime=end)["events"]
    errors = [e for e in events if burst["level"] in e["message"]]
    assert len(errors) >= 10


def test_cost_explorer_serves_sixty_plus_days_by_service(aws):
    resp = aws("ce").get_cost_and_usage(TimePeriod={"Start": "2026-09-01", "End": "2026-11-20"},
                                        Granularity="DAILY", Metrics=["UnblendedCost"],
                                        GroupBy=[{"Type": "DIMENSION", "Key": "SERVICE"}])
    days_with_cost = [r for r in resp["ResultsByTime"] if r["Groups"]]
    assert len(days_with_cost) >= 60
    services = {g["Keys"][0] for r in days_with_cost for g in r["Groups"]}
    assert "Amazon Elastic Compute Cloud - Compute" in services


def test_eventbridge_rule_delivers_ops_events_to_the_queue(aws, manifest):
    aws("events").put_events(Entries=[{"Source": "aws.ec2", "DetailType": "EC2 Instance State-change Notification",
                                       "Detail": json.dumps({"instance-id": "i-1", "state": "stopped"})}])
    msgs = aws("sqs").receive_message(QueueUrl=manifest["resources"]["queues"]["ops_events"],
                                      MaxNumberOfMessages=10, WaitTimeSeconds=2).get("Messages", [])
    assert any(json.loads(m["Body"])["detail-type"] == "EC2 Instance State-change Notification" for m in msgs)


def test_history_covers_fourteen_days_at_five_minutes_with_daily_seasonality(seeded):
    cpu = next(s for s in seeded.series if s.resource == "catalog-prod-api-1" and s.metric == "CPUUtilization")
    anchor = datetime(2026, 11, 20, 12, tzinfo=UTC).timestamp()
    t = np.arange(anchor - 14 * 86400, anchor, 300)
    v = cpu.values(t)
    assert len(v) == 14 * 288
    assert np.all((v >= 0) & (v <= 100))
    lag_day = np.corrcoef(v[:-288], v[288:])[0, 1]
    lag_half_day = np.corrcoef(v[:-144], v[144:])[0, 1]
    assert lag_day > 0.7
    assert lag_half_day < 0.3


def test_values_depend_only_on_time_not_on_the_window(seeded):
    s = seeded.series[0]
    t = np.arange(1_763_500_000 // 300 * 300, 1_763_500_000 // 300 * 300 + 86400 * 2, 300)
    assert np.array_equal(s.values(t)[100:200], s.values(t[100:200]))


def test_ground_truth_lists_every_kind_of_injected_anomaly(manifest):
    kinds = {a["kind"] for a in manifest["anomalies"]}
    assert {"spike", "level_shift", "slow_leak", "dropout", "surge"} <= kinds
    assert manifest["waste"]["idle_instances"]
    assert manifest["waste"]["overprovisioned_instances"]
    assert manifest["waste"]["busy_instances"]
    assert manifest["slo"]["page"] == ["checkout"]
