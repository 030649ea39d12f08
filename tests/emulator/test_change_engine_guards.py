"""The change engine's live guard against the emulator: a resource tagged ``aiops:protected=true``
after the plan was made is refused at execution — AWS unchanged, the refusal recorded and audited
with its reason — while an unprotected change of the same plan is made."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

pytestmark = [pytest.mark.emulator]
PROTECT = [{"Key": "aiops:protected", "Value": "true"}]


@pytest.fixture
def ec2(sandbox, isolated_stores):
    import boto3

    return boto3.client("ec2", endpoint_url=sandbox.endpoint, region_name="us-east-1",
                        aws_access_key_id="testing", aws_secret_access_key="testing")


def _plan(workflow: str, changes: list) -> dict:
    from aiops.ops.pipeline import ops_plan_hash
    from aiops.ops.plan import finish_plan

    plan = finish_plan(workflow, "2026-11-22", datetime(2026, 11, 22, 3, tzinfo=UTC), changes, [], max_changes=10)
    plan["plan_hash"] = ops_plan_hash(plan)
    return plan


def _audit(subject: str) -> list[dict]:
    from aiops.core.state import StateStore

    return StateStore().audit_entries(subject)


def test_snapshot_protected_after_planning_is_not_deleted(ec2):
    from aiops.ops.plan import Change, execute
    from aiops.remediation import records

    volume = ec2.create_volume(AvailabilityZone="us-east-1a", Size=1)["VolumeId"]
    protected, other = (ec2.create_snapshot(VolumeId=volume)["SnapshotId"] for _ in range(2))
    plan = _plan("ops_snapshots", [Change("ec2.delete_snapshot", s, "daily", "enforce", "past retention")
                                   for s in (protected, other)])
    ec2.create_tags(Resources=[protected], Tags=PROTECT)  # while the plan waited for its execute step

    outcome = execute(plan, run_id="guard-test")

    remaining = {s["SnapshotId"] for s in ec2.describe_snapshots(SnapshotIds=[protected])["Snapshots"]}
    assert remaining == {protected}
    assert [c["resource_id"] for c in outcome["done"]] == [other]
    assert not ec2.describe_snapshots(Filters=[{"Name": "snapshot-id", "Values": [other]}])["Snapshots"]
    [refused] = outcome["failed"]
    assert refused["resource_id"] == protected
    assert "aiops:protected=true" in refused["refused"]
    assert records.get(refused["key"])["status"] == "refused"
    [entry] = _audit(protected)
    assert entry["action"] == "ec2.delete_snapshot.refused"
    assert entry["actor"] == "ops_snapshots"
    assert entry["detail"]["refused"] == refused["refused"]
    assert entry["detail"]["approved_by"] == ["policy:daily"]
    assert entry["detail"]["plan_hash"] == plan["plan_hash"]
    assert entry["detail"]["permissions"] == ["ec2:DeleteSnapshot"]
    [done] = _audit(other)
    assert done["action"] == "ec2.delete_snapshot"
    assert done["detail"]["result"] == {"deleted": True}


def test_instance_protected_after_planning_is_not_stopped(ec2):
    from aiops.ops.plan import Change, execute

    image = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
    instance = ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1, InstanceType="t3.micro",
                                 TagSpecifications=[{"ResourceType": "instance",
                                                     "Tags": [{"Key": "env", "Value": "staging"}]}]
                                 )["Instances"][0]["InstanceId"]
    plan = _plan("ops_scheduling", [Change("ec2.stop_instance", instance, "office-hours", "enforce", "stop time")])
    ec2.create_tags(Resources=[instance], Tags=PROTECT)

    outcome = execute(plan, run_id="guard-test")

    state = ec2.describe_instances(InstanceIds=[instance])["Reservations"][0]["Instances"][0]["State"]["Name"]
    assert state == "running"
    assert outcome["done"] == []
    [entry] = _audit(instance)
    assert entry["action"] == "ec2.stop_instance.refused"
    assert "aiops:protected=true" in entry["detail"]["refused"]
