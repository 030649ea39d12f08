"""ops_snapshots, ops_log_retention and ops_scheduling end to end with dag.test() on a freshly
seeded account: snapshots created and expired (never an AMI's or a kept one), retention set,
staging instances stopped and started on schedule, protected and prod untouched, re-runs idempotent."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

pytestmark = [pytest.mark.airflow, pytest.mark.emulator, pytest.mark.slow]
ANCHOR = "2026-11-20T12:00:00Z"  # a Friday


@pytest.fixture(scope="module")
def account(tmp_path_factory, airflow_db):
    from conftest import EmulatorProcess, arm_ops_workflows, aws_conn_json

    from aiops.core import aws
    from aiops.core.settings import get_settings

    tmp = tmp_path_factory.mktemp("ops")
    emulator = EmulatorProcess(seed=True, anchor=ANCHOR, days=1, manifest=tmp / "truth.json")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AIRFLOW_CONN_AWS_DEFAULT", aws_conn_json(emulator.endpoint))
        mp.setenv("AIOPS_HOME", str(tmp / "aiops"))
        mp.setenv("AIOPS_ARTIFACT_BUCKET", "aiops-ops-dag-tests")
        get_settings.cache_clear()
        aws.clear_client_cache()
        # these tests are about what the workflows do once armed; their first (plan-only) run on an
        # account is tests/emulator/test_ops_first_start.py
        arm_ops_workflows("ops_snapshots", "ops_log_retention", "ops_scheduling")
        yield emulator.manifest, emulator
    get_settings.cache_clear()
    aws.clear_client_cache()
    emulator.stop()


def _dag(dag_id: str):
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=f"dags/{dag_id}.py").get_dag(dag_id)


def _run(dag_id: str, when: datetime, conf: dict | None = None):
    dag_run = _dag(dag_id).test(logical_date=when, run_conf=conf or {})
    tis = {ti.task_id: ti for ti in dag_run.get_task_instances()}
    assert dag_run.state == "success", {k: ti.state for k, ti in tis.items()}
    return tis["plan"].xcom_pull(task_ids="plan"), tis["execute"].xcom_pull(task_ids="execute")


def _snapshots(ec2) -> dict[str, dict]:
    return {s["SnapshotId"]: s for s in ec2.describe_snapshots(OwnerIds=["self"])["Snapshots"]}


def _tags(resource: dict) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in resource.get("Tags", [])}


def test_snapshot_lifecycle_creates_expires_and_never_touches_ami_kept_or_protected(account):
    from aiops.core.artifacts import ArtifactStore
    from aiops.core.state import StateStore

    truth, emulator = account
    ops, ec2 = truth["ops"], emulator.client("ec2")
    when = datetime(2026, 11, 20, 1, tzinfo=UTC)
    plan, result = _run("ops_snapshots", when)

    after = _snapshots(ec2)
    assert not set(ops["expired_by_policy"]) & set(after)  # 9 and 12 days old, retention 7: expired
    assert {ops["kept_snapshot"], ops["ami_snapshot"], ops["managed_snapshots"]["3d"],
            ops["managed_snapshots"]["6d"]} <= set(after)
    assert set(truth["waste"]["old_snapshots"]) <= set(after)  # not the policy's: expire_scope managed
    today = [s for s in after.values() if _tags(s).get("aiops:snapshot-key", "").endswith("/2026-11-20")]
    by_volume = {s["VolumeId"]: _tags(s) for s in today}
    search = by_volume[ops["search_volume"]]
    assert search["service"] == "catalog"
    assert search["aiops:backup"] == "daily"
    assert search["aiops:snapshot-policy"] == "daily-backups"
    ledger = truth["resources"]["volumes"]["payments-prod-ledger-data"]
    assert ledger not in by_volume  # protected volume
    assert {s["resource_id"] for s in plan["skipped"]} >= {ops["ami_snapshot"], ops["kept_snapshot"], ledger}
    assert result["summary"]["done"] == len(today) + 2
    assert ArtifactStore().get_json(plan["artifact"].split("/", 3)[-1])["counts"] == plan["counts"]
    actions = [e["action"] for e in StateStore().audit_entries() if e["actor"] == "ops_snapshots"]
    assert actions.count("ec2.delete_snapshot") == 2
    assert "ops.plan" in actions

    # The same day again: nothing created or deleted twice.
    plan2, result2 = _run("ops_snapshots", when)
    assert plan2["counts"]["enforce"] == 0
    assert result2["summary"]["done"] == 0
    assert len(_snapshots(ec2)) == len(after)


def test_log_retention_sets_policies_and_reports_groups_without_one(account):
    truth, emulator = account
    logs = emulator.client("logs")
    without = next(m["resource"] for m in truth["misconfigurations"] if m["id"] == "log_group_without_retention")
    plan, result = _run("ops_log_retention", datetime(2026, 11, 20, 1, 30, tzinfo=UTC))

    retention = {g["logGroupName"]: g.get("retentionInDays") for g in logs.describe_log_groups()["logGroups"]}
    assert retention["/matcarv/catalog/prod/application"] == 90
    assert retention["/matcarv/checkout/staging/application"] == 14
    assert retention["/matcarv/checkout/prod/application"] == 90  # 30 raised to the policy's 90
    assert retention["/matcarv/payments/prod/application"] == 365  # never shortened without allow_decrease
    assert retention["/aws/rds/instance/checkout-prod-db/postgresql"] == 30
    no_policy = {f["log_group"] for f in plan["findings"] if f["kind"] == "no_policy"}
    assert no_policy == {"/matcarv/platform/prod/bastion-audit"}
    assert retention["/matcarv/platform/prod/bastion-audit"] is None  # default proposed, dry-run
    assert {g for g in without if retention[g] is None} == no_policy  # every other one got its policy
    assert result["summary"] == {"done": 6, "already_done": 0, "failed": 0, "dry_run": 1, "first_start": 0}


def test_office_hours_stop_and_start_staging_only(account):
    from aiops.remediation import records

    truth, emulator = account
    ec2 = emulator.client("ec2")
    inst = truth["resources"]["instances"]
    scheduled = [inst[n] for n in ("checkout-staging-web", "payments-staging-api", "platform-staging-ci-runner")]

    def states() -> dict[str, str]:
        reservations = ec2.describe_instances(InstanceIds=list(inst.values()))["Reservations"]
        return {i["InstanceId"]: i["State"]["Name"] for r in reservations for i in r["Instances"]}

    # Friday 19:00 London (GMT) is the stop time: the run whose interval [18:45, 19:00) ends then stops them.
    plan, result = _run("ops_scheduling", datetime(2026, 11, 20, 19, 0, tzinfo=UTC))
    assert plan["window"]["start"].startswith("2026-11-20T18:45")
    assert plan["window"]["end"].startswith("2026-11-20T19:00")
    after = states()
    assert {after[i] for i in scheduled} <= {"stopping", "stopped"}
    untouched = set(inst.values()) - set(scheduled)
    assert {after[i] for i in untouched} == {"running"}  # prod, protected, unscheduled
    assert sorted(c["resource_id"] for c in result["done"]) == sorted(scheduled)
    assert len([r for r in records.changes("ops_scheduling") if r["action"] == "ec2.stop_instance"]) == 3

    # Monday 08:00 London: started again.
    _run("ops_scheduling", datetime(2026, 11, 23, 8, 0, tzinfo=UTC))
    assert {states()[i] for i in scheduled} <= {"pending", "running"}


def test_new_asg_schedule_is_dry_run(account):
    truth, emulator = account
    asg = emulator.client("autoscaling")
    name = truth["resources"]["asgs"][0]
    plan, result = _run("ops_scheduling", datetime(2026, 11, 20, 17, 0, tzinfo=UTC))  # the 17:00 step
    change = next(c for c in plan["changes"] if c["action"] == "autoscaling.set_capacity")
    assert change["mode"] == "dry-run"
    assert change["params"]["desired"] == 5
    assert result["summary"]["dry_run"] >= 1
    assert result["summary"]["done"] == 0
    group = asg.describe_auto_scaling_groups(AutoScalingGroupNames=[name])["AutoScalingGroups"][0]
    assert group["DesiredCapacity"] == 3
