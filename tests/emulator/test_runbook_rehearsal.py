"""Every runbook in the catalog, published by runbook_sync and run by the sandbox executor on a
freshly seeded simulated account; each test checks the AWS state the runbook promises."""

from __future__ import annotations

import time

import pytest

from aiops.remediation.catalog import load_catalog

pytestmark = [pytest.mark.emulator, pytest.mark.slow]
ANCHOR = "2026-11-20T12:00:00Z"


@pytest.fixture(scope="module")
def account(tmp_path_factory, sandbox):
    """A fresh seeded account in its own emulator process (these tests change it)."""
    from conftest import EmulatorProcess, aws_conn_json

    from aiops.core import aws
    from aiops.remediation.sync import sync_catalog

    emulator = EmulatorProcess(seed=True, anchor=ANCHOR, days=2,
                               manifest=tmp_path_factory.mktemp("rehearsal") / "truth.json")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AIRFLOW_CONN_AWS_DEFAULT", aws_conn_json(emulator.endpoint))
        aws.clear_client_cache()
        report = sync_catalog()
        assert report["catalog_errors"] == [], report
        assert report["counts"]["error"] == 0, report
        yield emulator.manifest, emulator.client
    aws.clear_client_cache()
    emulator.stop()


def run(client, runbook_id: str, **params) -> dict:
    ssm = client("ssm")
    name = load_catalog().get(runbook_id).document_name
    execution_id = ssm.start_automation_execution(DocumentName=name, Parameters={
        k: [str(x) for x in v] if isinstance(v, list) else [str(v)] for k, v in params.items()})["AutomationExecutionId"]
    deadline = time.monotonic() + 60
    while True:
        execution = ssm.get_automation_execution(AutomationExecutionId=execution_id)["AutomationExecution"]
        if execution["AutomationExecutionStatus"] in {"Success", "Failed", "TimedOut", "Cancelled"}:
            return execution
        assert time.monotonic() < deadline, f"{runbook_id} still {execution['AutomationExecutionStatus']}"
        time.sleep(0.3)


def ok(execution) -> dict:
    failed = [(s["StepName"], s.get("FailureMessage")) for s in execution["StepExecutions"] if s["StepStatus"] != "Success"]
    assert execution["AutomationExecutionStatus"] == "Success", failed or execution.get("FailureMessage")
    return execution


def instance(client, instance_id):
    return client("ec2").describe_instances(InstanceIds=[instance_id])["Reservations"][0]["Instances"][0]


def test_runbook_sync_is_idempotent(account):
    from aiops.remediation.sync import sync_catalog

    counts = sync_catalog()["counts"]
    assert counts["unchanged"] == len(load_catalog().runbooks)
    assert counts["created"] == counts["updated"] == 0


def test_stop_idle_instance(account):
    truth, client = account
    idle = truth["waste"]["idle_instances"][0]
    ok(run(client, "stop-idle-instance", InstanceId=idle))
    assert instance(client, idle)["State"]["Name"] == "stopped"


def test_restart_ec2_instance(account):
    truth, client = account
    target = truth["resources"]["instances"]["catalog-prod-api-1"]
    ok(run(client, "restart-ec2-instance", InstanceId=target))
    assert instance(client, target)["State"]["Name"] == "running"


def test_reboot_ec2_instance(account):
    truth, client = account
    target = truth["resources"]["instances"]["catalog-prod-api-1"]
    execution = ok(run(client, "reboot-ec2-instance", InstanceId=target))
    assert [s["StepName"] for s in execution["StepExecutions"]] == [
        "AssertInstanceRunning", "RebootInstance", "WaitForInstanceStatusOk", "DescribeInstance"]
    assert instance(client, target)["State"]["Name"] == "running"  # rebooted in place, not stopped


def test_reboot_ec2_instance_refuses_a_stopped_instance(account):
    truth, client = account
    idle = truth["waste"]["idle_instances"][0]
    client("ec2").stop_instances(InstanceIds=[idle])
    execution = run(client, "reboot-ec2-instance", InstanceId=idle)
    assert execution["AutomationExecutionStatus"] == "Failed"
    steps = {s["StepName"]: s["StepStatus"] for s in execution["StepExecutions"]}
    assert steps["AssertInstanceRunning"] == "Failed"
    assert "RebootInstance" not in steps or steps["RebootInstance"] != "Success"


def test_reboot_rds_instance(account):
    _truth, client = account
    ok(run(client, "reboot-rds-instance", DBInstanceIdentifier="checkout-prod-db"))
    db = client("rds").describe_db_instances(DBInstanceIdentifier="checkout-prod-db")["DBInstances"][0]
    assert db["DBInstanceStatus"] == "available"


def test_revoke_world_open_ingress(account):
    truth, client = account
    group = next(m["resource"] for m in truth["misconfigurations"] if m["id"] == "ssh_open_to_world")
    ok(run(client, "revoke-world-open-ingress", GroupId=group, Port=22, Protocol="tcp", SourceCidr="0.0.0.0/0"))
    perms = client("ec2").describe_security_groups(GroupIds=[group])["SecurityGroups"][0]["IpPermissions"]
    assert not any({"CidrIp": "0.0.0.0/0"} in p.get("IpRanges", []) and p.get("FromPort") == 22 for p in perms)


def test_snapshot_ebs_volume(account):
    truth, client = account
    volume = truth["resources"]["volumes"]["catalog-prod-search-data"]
    execution = ok(run(client, "snapshot-ebs-volume", VolumeId=volume))
    snapshot_id = execution["Outputs"]["CreateSnapshot.SnapshotId"][0]
    snap = client("ec2").describe_snapshots(SnapshotIds=[snapshot_id])["Snapshots"][0]
    assert snap["VolumeId"] == volume
    assert snap["State"] == "completed"


def test_rightsize_ec2_instance_snapshots_first(account):
    truth, client = account
    target = truth["waste"]["overprovisioned_instances"][0]["instance_id"]
    before = {s["SnapshotId"] for s in client("ec2").describe_snapshots(OwnerIds=["self"])["Snapshots"]}
    execution = ok(run(client, "rightsize-ec2-instance", InstanceId=target, TargetInstanceType="m5.xlarge"))
    after = instance(client, target)
    assert after["InstanceType"] == "m5.xlarge"
    assert after["State"]["Name"] == "running"
    new = {s["SnapshotId"] for s in client("ec2").describe_snapshots(OwnerIds=["self"])["Snapshots"]} - before
    assert new
    assert set(execution["Outputs"]["SnapshotAttachedVolumes.SnapshotIds"]) <= new


def test_free_disk_rotate_logs_sends_the_command(account):
    truth, client = account
    target = truth["resources"]["instances"]["catalog-prod-search"]
    execution = ok(run(client, "free-disk-rotate-logs", InstanceIds=[target]))
    assert execution["Outputs"]["RotateLogsAndFreeDisk.Status"] == ["Success"]
    commands = client("ssm").list_commands()["Commands"]
    assert any(c["DocumentName"] == "AWS-RunShellScript" and target in c["InstanceIds"] for c in commands)


def test_scale_out_asg(account):
    _truth, client = account
    asg = client("autoscaling")
    before = asg.describe_auto_scaling_groups(AutoScalingGroupNames=["checkout-prod-asg"])["AutoScalingGroups"][0]
    ok(run(client, "scale-out-asg", AutoScalingGroupName="checkout-prod-asg", Increment=1))
    after = asg.describe_auto_scaling_groups(AutoScalingGroupNames=["checkout-prod-asg"])["AutoScalingGroups"][0]
    assert after["DesiredCapacity"] == before["DesiredCapacity"] + 1


def test_block_public_s3_bucket(account):
    truth, client = account
    bucket = next(m["resource"] for m in truth["misconfigurations"] if m["id"] == "public_bucket")
    ok(run(client, "block-public-s3-bucket", BucketName=bucket))
    config = client("s3").get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"]
    assert all(config.values())


def test_enable_ebs_default_encryption(account):
    truth, client = account
    ok(run(client, "enable-ebs-default-encryption", AccountId=truth["account_id"]))
    assert client("ec2").get_ebs_encryption_by_default()["EbsEncryptionByDefault"] is True


def test_delete_unattached_ebs_volume_snapshots_first(account):
    truth, client = account
    volume = truth["waste"]["unattached_volumes"][1]
    execution = ok(run(client, "delete-unattached-ebs-volume", VolumeId=volume))
    snapshot_id = execution["Outputs"]["SnapshotVolume.SnapshotId"][0]
    assert client("ec2").describe_snapshots(SnapshotIds=[snapshot_id])["Snapshots"][0]["VolumeId"] == volume
    remaining = {v["VolumeId"] for v in client("ec2").describe_volumes()["Volumes"]}
    assert volume not in remaining


def test_modify_ebs_volume_to_gp3(account):
    truth, client = account
    volume = sorted(set(truth["waste"]["gp2_volumes"]) - set(truth["waste"]["unattached_volumes"]))[0]
    ok(run(client, "modify-ebs-volume-to-gp3", VolumeId=volume))
    assert client("ec2").describe_volumes(VolumeIds=[volume])["Volumes"][0]["VolumeType"] == "gp3"


def test_stop_rds_instance(account):
    truth, client = account
    db = truth["waste"]["idle_rds"][0]
    ok(run(client, "stop-rds-instance", DBInstanceIdentifier=db))
    rds = client("rds")
    assert rds.describe_db_instances(DBInstanceIdentifier=db)["DBInstances"][0]["DBInstanceStatus"] == "stopped"
    assert rds.describe_db_snapshots(DBSnapshotIdentifier=f"aiops-before-stop-{db}")["DBSnapshots"]


def test_release_elastic_ip(account):
    truth, client = account
    allocation = truth["waste"]["unassociated_eips"][0]
    ok(run(client, "release-elastic-ip", AllocationId=allocation))
    assert allocation not in {a.get("AllocationId") for a in client("ec2").describe_addresses()["Addresses"]}


def test_delete_ebs_snapshot(account):
    truth, client = account
    snapshot = truth["waste"]["old_snapshots"][0]
    execution = ok(run(client, "delete-ebs-snapshot", SnapshotId=snapshot))
    assert execution["Outputs"]["DescribeSnapshot.VolumeId"][0].startswith("vol-")
    assert snapshot not in {s["SnapshotId"] for s in client("ec2").describe_snapshots(OwnerIds=["self"])["Snapshots"]}


def test_every_catalog_runbook_is_rehearsed_here():
    tested = {name[len("test_"):].split("_snapshots")[0].split("_sends")[0].replace("_", "-")
              for name in globals() if name.startswith("test_")}
    assert set(load_catalog().runbooks) <= tested


def test_stop_refuses_a_malicious_parameter_before_running(account):
    _truth, client = account
    with pytest.raises(client("ssm").exceptions.InvalidAutomationExecutionParametersException):
        run(client, "stop-idle-instance", InstanceId="i-123; rm -rf /")

