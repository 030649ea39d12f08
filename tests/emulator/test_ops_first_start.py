"""First starts never act (docs/first-start.md): the first run of an ops workflow on an account plans,
reports and audits its enforce-mode changes but makes none, and arms the workflow
(``<workflow>_armed``, per account); the next run acts; a manual ``act_now`` run acts at once.

Each test runs the DAG's task functions as the DAG does (plan; execute from the stored, hash-checked
plan) on its own state store, against an emulator seeded for this module."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

pytestmark = [pytest.mark.emulator, pytest.mark.slow]
ANCHOR = "2026-11-20T12:00:00Z"
SUNDAY_3AM = datetime(2026, 11, 22, 3, tzinfo=UTC)  # prod patch windows: Sunday 02:00-06:00 UTC
TUESDAY_1030 = datetime(2026, 11, 24, 10, 30, tzinfo=UTC)  # staging: Tue/Thu 10:00-14:00 London, no approval


@pytest.fixture(scope="module")
def account(tmp_path_factory):
    """A seeded account this module may change (snapshots created and deleted)."""
    from conftest import EmulatorProcess, aws_conn_json

    from aiops.core import aws

    emulator = EmulatorProcess(seed=True, anchor=ANCHOR, days=1, manifest=tmp_path_factory.mktemp("first") / "t.json")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AIRFLOW_CONN_AWS_DEFAULT", aws_conn_json(emulator.endpoint))
        aws.clear_client_cache()
        yield emulator
    aws.clear_client_cache()
    emulator.stop()


@pytest.fixture
def stores(account, isolated_stores):
    """A fresh state store and artifact bucket: no workflow armed yet."""
    return account


def run(workflow: str, at: datetime, run_id: str, conf: dict | None = None) -> tuple[dict, dict]:
    """What plan_then_execute's two tasks do."""
    from aiops.ops.pipeline import approved_plan, make_plan, run_changes

    plan = make_plan(workflow, at, conf=conf or {}, run_id=run_id)
    return plan, run_changes(approved_plan(workflow, run_id), run_id=run_id)


def snapshot_ids(emulator) -> set[str]:
    return {s["SnapshotId"] for s in emulator.client("ec2").describe_snapshots(OwnerIds=["self"])["Snapshots"]}


def test_first_run_changes_nothing_and_arms_then_the_next_run_acts(stores):
    from aiops.core.identity import current_account
    from aiops.core.state import StateStore
    from aiops.ops.pipeline import armed_since
    from aiops.ops.plan import FIRST_START
    from aiops.remediation import records

    emulator = stores
    first_at = datetime(2026, 11, 18, 1, tzinfo=UTC)
    before = snapshot_ids(emulator)

    plan, result = run("ops_snapshots", first_at, "scheduled__first")

    assert plan["first_start"] is True
    planned = plan["counts"]["enforce"]
    assert planned > 0  # creates (and maybe deletes) planned by the shipped enforce policy
    assert "**First start:**" in plan["markdown"]
    assert "enforce (first start: not made)" in plan["markdown"]
    assert snapshot_ids(emulator) == before  # nothing created, nothing deleted
    assert records.changes("ops_snapshots") == []
    assert result["summary"]["done"] == 0
    assert result["summary"]["first_start"] == planned
    assert {c["note"] for c in result["first_start"]} == {FIRST_START}
    assert armed_since("ops_snapshots") == first_at
    assert armed_since("ops_snapshots", account_id="000000000000") is None  # per account
    assert armed_since("ops_log_retention") is None  # per workflow
    entries = {e["action"]: e for e in StateStore().audit_entries() if e["actor"] == "ops_snapshots"}
    assert entries["ops.plan"]["detail"]["first_start"] is True
    assert entries["ops.armed"]["detail"] == {"account_id": current_account(), "first_start": True,
                                              "held_back": planned}
    assert not [a for a in entries if a.startswith("ec2.")]

    # The next scheduled run acts by policy.
    next_at = datetime(2026, 11, 19, 1, tzinfo=UTC)
    plan2, result2 = run("ops_snapshots", next_at, "scheduled__next")
    assert plan2["first_start"] is False
    after = snapshot_ids(emulator)
    created = [c for c in result2["done"] if c["action"] == "ec2.create_snapshot"]
    deleted = {c["resource_id"] for c in result2["done"] if c["action"] == "ec2.delete_snapshot"}
    assert created
    assert result2["summary"]["done"] == plan2["counts"]["enforce"] > 0
    assert result2["summary"]["first_start"] == 0
    assert len(after - before) == len(created)
    assert deleted == before - after
    assert armed_since("ops_snapshots") == first_at  # set once


def test_first_run_of_log_retention_sets_no_retention(stores):
    from aiops.ops.pipeline import armed_since

    emulator = stores
    logs = emulator.client("logs")
    before = {g["logGroupName"]: g.get("retentionInDays") for g in logs.describe_log_groups()["logGroups"]}

    plan, result = run("ops_log_retention", datetime(2026, 11, 20, 1, 30, tzinfo=UTC), "scheduled__first")

    assert plan["counts"]["enforce"] == 6
    assert {g["logGroupName"]: g.get("retentionInDays") for g in logs.describe_log_groups()["logGroups"]} == before
    assert result["summary"] == {"done": 0, "already_done": 0, "failed": 0, "dry_run": 1, "first_start": 6}
    assert armed_since("ops_log_retention") is not None


def test_act_now_acts_on_the_first_run(stores):
    from aiops.ops.pipeline import armed_since

    emulator = stores
    at = datetime(2026, 11, 21, 1, tzinfo=UTC)
    before = snapshot_ids(emulator)

    plan, result = run("ops_snapshots", at, "manual__act_now", conf={"act_now": True})

    assert plan["first_start"] is False
    assert plan["act_now"] is True
    created = [c for c in result["done"] if c["action"] == "ec2.create_snapshot"]
    assert created
    assert result["summary"]["done"] == plan["counts"]["enforce"]
    assert len(snapshot_ids(emulator) - before) == len(created)
    assert armed_since("ops_snapshots") == at  # a run that acted arms the workflow too


def test_forced_dry_run_does_not_arm(stores):
    from aiops.ops.pipeline import armed_since

    plan, result = run("ops_snapshots", datetime(2026, 11, 17, 1, tzinfo=UTC), "manual__dry", conf={"dry_run": True})

    assert plan["first_start"] is False  # everything is dry-run already
    assert result["summary"]["done"] == 0
    assert armed_since("ops_snapshots") is None  # the next scheduled run is still a first start


@pytest.mark.parametrize(("at", "gated"), [pytest.param(SUNDAY_3AM, True, id="prod_window_needs_approval"),
                                            pytest.param(TUESDAY_1030, False, id="staging_window_no_approval")])
def test_first_run_of_patching_installs_nothing_and_asks_nobody(stores, monkeypatch, at, gated):
    from aiops.core.state import StateStore
    from aiops.ops.pipeline import armed_since, compliance_report, install_patches, make_plan
    from aiops.ops.plan import FIRST_START

    emulator = stores
    monkeypatch.setenv("AIOPS_OPS_COMMAND_WAIT_SECONDS", "1")
    ssm = emulator.client("ssm")
    before = {c["CommandId"] for c in ssm.list_commands()["Commands"]}

    plan = make_plan("ops_patching", at, conf={"scan": False}, run_id="scheduled__patch")
    assert plan["first_start"] is True
    assert plan["counts"]["enforce"] > 0  # installs in their open window
    assert {i["requires_approval"] for i in plan["install"] if i["mode"] == "enforce"} == {gated}
    assert plan["needs_approval"] is False  # nothing will be installed: no approval is asked
    reports = [install_patches(plan, requires_approval=needs, approval=None, run_id="scheduled__patch")
               for needs in (False, True)]
    compliance_report(plan, None, reports, run_id="scheduled__patch")

    assert {c["CommandId"] for c in ssm.list_commands()["Commands"]} == before  # no Install sent
    enforced = [p for r in reports for p in r["policies"] if p["mode"] == "enforce"]
    assert enforced
    assert {p["status"] for p in enforced} == {FIRST_START}
    actions = [e["action"] for e in StateStore().audit_entries()]
    assert not [a for a in actions if a.startswith(("ssm.patch_install", "ops.patch_install."))]
    assert armed_since("ops_patching") == at


@pytest.mark.airflow
def test_the_dags_act_now_param_reaches_the_plan(stores, airflow_db):
    """Through the DAG (dag.test): the first run plans only; on an account where it is not armed
    (the marker cleared), a manual run with {"act_now": true} acts."""
    from airflow.dag_processing.dagbag import DagBag

    from aiops.core.identity import current_account
    from aiops.core.state import StateStore
    from aiops.ops.pipeline import ARMED, armed_since

    emulator = stores
    dag = DagBag(dag_folder="dags/ops_snapshots.py").get_dag("ops_snapshots")
    before = snapshot_ids(emulator)

    def dag_test(when: datetime, conf: dict) -> tuple[dict, dict]:
        dag_run = dag.test(logical_date=when, run_conf=conf)
        tis = {ti.task_id: ti for ti in dag_run.get_task_instances()}
        assert dag_run.state == "success", {k: ti.state for k, ti in tis.items()}
        return tis["plan"].xcom_pull(task_ids="plan"), tis["execute"].xcom_pull(task_ids="execute")

    plan, result = dag_test(datetime(2026, 11, 15, 1, tzinfo=UTC), {})
    assert plan["first_start"] is True
    assert result["summary"]["done"] == 0
    assert snapshot_ids(emulator) == before

    StateStore().clear_watermark(ARMED.format(workflow="ops_snapshots"), account_id=current_account())
    assert armed_since("ops_snapshots") is None
    plan, result = dag_test(datetime(2026, 11, 16, 1, tzinfo=UTC), {"act_now": True})
    assert (plan["first_start"], plan["act_now"]) == (False, True)
    assert result["summary"]["done"] == plan["counts"]["enforce"] > 0
    assert snapshot_ids(emulator) != before
