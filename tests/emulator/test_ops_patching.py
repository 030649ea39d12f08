"""Batched patch install against the emulator: the first unhealthy batch stops the run, a re-run of
the interval sends nothing twice, and a batch sent by an interrupted attempt is waited on, not re-sent."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

pytestmark = [pytest.mark.emulator]
SUNDAY_3AM = datetime(2026, 11, 22, 3, tzinfo=UTC)


@pytest.fixture
def plan(seeded, isolated_stores, monkeypatch):
    from conftest import arm_ops_workflows

    from aiops.ops.pipeline import make_plan

    monkeypatch.setenv("AIOPS_OPS_COMMAND_WAIT_SECONDS", "1")
    # an armed workflow's plan (the first, plan-only run: tests/emulator/test_ops_first_start.py)
    arm_ops_workflows("ops_patching")
    return make_plan("ops_patching", SUNDAY_3AM, conf={"scan": False}, run_id="test")


def install_commands(sandbox, since: set[str]) -> list[dict]:
    import boto3

    ssm = boto3.client("ssm", endpoint_url=sandbox.endpoint, region_name="us-east-1",
                       aws_access_key_id="testing", aws_secret_access_key="testing")
    return [c for c in ssm.list_commands()["Commands"]
            if c["CommandId"] not in since and c["Parameters"].get("Operation") == ["Install"]]


def test_unhealthy_batch_stops_every_later_batch(plan, sandbox, monkeypatch):
    from aiops.ops import patching
    from aiops.remediation import records

    first = plan["install"][0]["batches"][0][0]
    monkeypatch.setattr(patching, "instance_health",
                        lambda ids, check: {first: "target unhealthy in catalog-prod-tg"} if first in ids else {})
    before = {c["CommandId"] for c in install_commands(sandbox, set())}
    report = patching.run_install(plan, requires_approval=True, approved=True, run_id="test",
                                  approved_by="alice.sre", command_wait_seconds=1)
    assert report["failed"] is True
    assert report["policies"][0]["status"] == "stopped after batch 1"
    later = [b for p in report["policies"] for b in p["batches"]][1:]
    assert later
    assert {b["status"] for b in later} == {"not started: earlier batch failed"}
    assert [c["InstanceIds"] for c in install_commands(sandbox, before)] == [[first]]  # one batch sent, no more
    row = records.get(f"ops_patching/{plan['interval']}/ssm.patch_install/{first}")
    assert row["status"] == "failed"
    assert "unhealthy" in str(row["detail"]["health"])


def test_rerun_of_the_interval_sends_nothing_twice(plan, sandbox):
    from aiops.ops import patching

    before = {c["CommandId"] for c in install_commands(sandbox, set())}
    first = patching.run_install(plan, requires_approval=True, approved=True, run_id="a", approved_by="alice.sre",
                                 command_wait_seconds=1)
    assert first["failed"] is False
    sent = install_commands(sandbox, before)
    assert len(sent) == sum(len(p["batches"]) for p in plan["install"] if p["requires_approval"])
    again = patching.run_install(plan, requires_approval=True, approved=True, run_id="b", approved_by="alice.sre",
                                 command_wait_seconds=1)
    assert {b["status"] for p in again["policies"] for b in p["batches"]} == {"already done"}
    assert install_commands(sandbox, before) == sent


def test_batch_sent_by_an_interrupted_attempt_is_awaited_not_resent(plan, sandbox):
    import boto3

    from aiops.ops import patching
    from aiops.ops.plan import Change
    from aiops.remediation import records

    batch = plan["install"][0]["batches"][0]
    ssm = boto3.client("ssm", endpoint_url=sandbox.endpoint, region_name="us-east-1",
                       aws_access_key_id="testing", aws_secret_access_key="testing")
    command_id = ssm.send_command(DocumentName="AWS-RunPatchBaseline", InstanceIds=batch,
                                  Parameters={"Operation": ["Install"]})["Command"]["CommandId"]
    for iid in batch:  # what the first attempt recorded before it died
        key = f"ops_patching/{plan['interval']}/ssm.patch_install/{iid}"
        records.record(Change("ssm.patch_install", iid, plan["install"][0]["policy"], "enforce", "batch 1", {}, key),
                       workflow="ops_patching", status="sent", detail={"command_id": command_id}, run_id="a")
    before = {c["CommandId"] for c in install_commands(sandbox, set())}
    report = patching.run_install(plan, requires_approval=True, approved=True, run_id="b", approved_by="alice.sre",
                                  command_wait_seconds=1)
    assert report["policies"][0]["batches"][0]["command_id"] == command_id
    assert batch not in [c["InstanceIds"] for c in install_commands(sandbox, before)]


def test_forced_dry_run_plans_but_changes_nothing(seeded, isolated_stores):
    import boto3

    from aiops.ops.pipeline import make_plan, run_changes

    ec2 = boto3.client("ec2", endpoint_url=seeded.manifest["endpoint"], region_name="us-east-1",
                       aws_access_key_id="testing", aws_secret_access_key="testing")
    before = {s["SnapshotId"] for s in ec2.describe_snapshots(OwnerIds=["self"])["Snapshots"]}
    plan = make_plan("ops_snapshots", SUNDAY_3AM, conf={"dry_run": True}, run_id="dry")
    assert plan["changes"]
    assert {c["mode"] for c in plan["changes"]} == {"dry-run"}
    result = run_changes(plan, run_id="dry")
    assert result["summary"]["done"] == 0
    assert result["summary"]["dry_run"] == len(plan["changes"])
    assert {s["SnapshotId"] for s in ec2.describe_snapshots(OwnerIds=["self"])["Snapshots"]} == before


def test_instance_protected_after_planning_is_not_patched(plan, sandbox):
    import boto3

    from aiops.core.state import StateStore
    from aiops.ops import patching
    from aiops.remediation import records

    first = plan["install"][0]["batches"][0][0]
    ec2 = boto3.client("ec2", endpoint_url=sandbox.endpoint, region_name="us-east-1",
                       aws_access_key_id="testing", aws_secret_access_key="testing")
    before = {c["CommandId"] for c in install_commands(sandbox, set())}
    ec2.create_tags(Resources=[first], Tags=[{"Key": "aiops:protected", "Value": "true"}])
    try:
        report = patching.run_install(plan, requires_approval=True, approved=True, approved_by="alice.sre",
                                      run_id="c", command_wait_seconds=1)
    finally:
        ec2.delete_tags(Resources=[first], Tags=[{"Key": "aiops:protected"}])
    assert report["failed"] is True
    assert report["policies"][0]["batches"][0]["status"].startswith("refused: ")
    assert install_commands(sandbox, before) == []  # nothing sent, not even the batch's other instances
    assert records.get(f"ops_patching/{plan['interval']}/ssm.patch_install/{first}")["status"] == "refused"
    [entry] = [e for e in StateStore().audit_entries(first) if e["action"] == "ssm.patch_install.refused"]
    assert "aiops:protected=true" in entry["detail"]["refused"]
    assert entry["detail"]["approved_by"] == ["alice.sre"]
