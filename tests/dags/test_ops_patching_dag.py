"""ops_patching end to end with dag.test() on a freshly seeded account: Scan sent automatically,
prod Install only after an approval (answered with HitlResponder), batch by batch, never on
protected instances; staging installs in their own window without asking; compliance report."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from aiops_sandbox.hitl import HitlResponder, approve, reject

pytestmark = [pytest.mark.airflow, pytest.mark.emulator, pytest.mark.slow]
ANCHOR = "2026-11-20T12:00:00Z"
SUNDAY_3AM = datetime(2026, 11, 22, 3, tzinfo=UTC)  # prod windows: Sunday 02:00-06:00 UTC
TUESDAY_1030 = datetime(2026, 11, 24, 10, 30, tzinfo=UTC)  # staging: Tue/Thu 10:00-14:00 London (GMT)


@pytest.fixture(scope="module")
def account(tmp_path_factory, airflow_db):
    from conftest import EmulatorProcess, arm_ops_workflows, aws_conn_json

    from aiops.core import aws
    from aiops.core.settings import get_settings

    tmp = tmp_path_factory.mktemp("ops-patching")
    emulator = EmulatorProcess(seed=True, anchor=ANCHOR, days=1, manifest=tmp / "truth.json")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AIRFLOW_CONN_AWS_DEFAULT", aws_conn_json(emulator.endpoint))
        mp.setenv("AIOPS_HOME", str(tmp / "aiops"))
        mp.setenv("AIOPS_ARTIFACT_BUCKET", "aiops-ops-patching-tests")
        mp.setenv("AIOPS_OPS_COMMAND_WAIT_SECONDS", "1")
        mp.setenv("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS", "admin:admin,alice.sre:op,carol.secops:op")
        get_settings.cache_clear()
        aws.clear_client_cache()
        # installs once armed; the first (plan-only) run is tests/emulator/test_ops_first_start.py
        arm_ops_workflows("ops_patching")
        yield emulator.manifest, emulator
    get_settings.cache_clear()
    aws.clear_client_cache()
    emulator.stop()


@pytest.fixture(scope="module")
def dag(account):
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder="dags/ops_patching.py").get_dag("ops_patching")


def run(dag, when, answers, conf=None):
    with HitlResponder(answers, process_timeouts=True) as responder:
        dag_run = dag.test(logical_date=when, run_conf=conf or {})
    tis = {ti.task_id: ti for ti in dag_run.get_task_instances()}
    return dag_run, tis, responder


def commands(emulator, since: set[str]) -> list[dict]:
    listed = emulator.client("ssm").list_commands()["Commands"]
    return [c for c in listed if c["CommandId"] not in since and c["DocumentName"] == "AWS-RunPatchBaseline"]


def test_prod_install_waits_for_approval_then_patches_batch_by_batch(dag, account):
    truth, emulator = account
    inst = truth["resources"]["instances"]
    dag_run, tis, responder = run(dag, SUNDAY_3AM, {"approve": approve(by="alice.sre")})
    states = {k: ti.state for k, ti in tis.items()}
    assert dag_run.state == "success", states

    request = responder.answered[0][0]
    assert {u["id"] for u in request.assigned_users} == {"alice.sre", "carol.secops"}
    assert inst["catalog-prod-api-1"] in request.body  # the approver saw the plan

    sent = commands(emulator, set())
    scans = [c for c in sent if c["Parameters"]["Operation"] == ["Scan"]]
    installs = [c for c in sent if c["Parameters"]["Operation"] == ["Install"]]
    assert len(scans) == 1
    protected = set(truth["resources"]["protected"])
    assert not protected & {i for c in sent for i in c["InstanceIds"]}  # payments fleet never touched
    # prod-api (3 hosts) and prod-web (3) one at a time, prod-worker alone: seven batches of one
    assert sorted(len(c["InstanceIds"]) for c in installs) == [1] * 7
    assert {i for c in installs for i in c["InstanceIds"]} == {
        inst[n] for n in ("catalog-prod-api-1", "catalog-prod-api-2", "catalog-prod-search", "checkout-prod-web-1",
                          "checkout-prod-web-2", "checkout-prod-web-3", "payments-prod-worker")}
    report = tis["install_approved"].xcom_pull(task_ids="install_approved")
    assert [p["status"] for p in report["policies"]] == ["done", "done", "done"]
    compliance = tis["compliance"].xcom_pull(task_ids="compliance")
    by_instance = {r["instance_id"]: r for r in compliance["rows"]}
    assert by_instance[inst["catalog-prod-api-1"]]["operation"] == "Install"
    assert by_instance[inst["catalog-prod-api-1"]]["status"] == "Success"
    assert "unavailable" in by_instance[inst["catalog-prod-api-1"]]["source"]  # the emulator substitute


def test_rejected_prod_install_sends_no_install(dag, account):
    _truth, emulator = account
    before = {c["CommandId"] for c in emulator.client("ssm").list_commands()["Commands"]}
    when = datetime(2026, 11, 29, 3, tzinfo=UTC)  # the next Sunday: a new interval
    _dag_run, tis, _ = run(dag, when, {"approve": reject(by="carol.secops")})
    assert tis["install_approved"].state == "skipped"
    assert tis["compliance"].state == "success"
    sent = commands(emulator, before)
    assert [c["Parameters"]["Operation"] for c in sent] == [["Scan"]]


def test_staging_installs_in_its_window_without_asking(dag, account):
    truth, emulator = account
    inst = truth["resources"]["instances"]
    before = {c["CommandId"] for c in emulator.client("ssm").list_commands()["Commands"]}
    dag_run, tis, responder = run(dag, TUESDAY_1030, {})
    assert dag_run.state == "success", {k: ti.state for k, ti in tis.items()}
    assert responder.answered == []
    installs = [c for c in commands(emulator, before) if c["Parameters"]["Operation"] == ["Install"]]
    staging = {inst[n] for n in ("checkout-staging-web", "catalog-staging-batch", "payments-staging-api",
                                 "platform-staging-ci-runner")}
    assert sorted(len(c["InstanceIds"]) for c in installs) == [2, 2]  # batch_size 2
    assert {i for c in installs for i in c["InstanceIds"]} == staging


def test_unanswered_prod_approval_times_out_as_not_installed(dag, account, monkeypatch):
    from datetime import timedelta

    from aiops.core.state import StateStore

    _truth, emulator = account
    monkeypatch.setattr(dag.get_task("approve"), "response_timeout", timedelta(seconds=1))
    before = {c["CommandId"] for c in emulator.client("ssm").list_commands()["Commands"]}
    _dag_run, tis, _ = run(dag, datetime(2026, 12, 6, 3, tzinfo=UTC), {"approve": None})
    assert tis["install_approved"].state == "skipped"
    assert [c["Parameters"]["Operation"] for c in commands(emulator, before)] == [["Scan"]]
    decisions = [e for e in StateStore().audit_entries("ops_patching/2026-12-06T03:00")
                 if e["action"].startswith("ops.patch_install.")]
    assert [e["action"] for e in decisions] == ["ops.patch_install.asked", "ops.patch_install.timeout"]
    assert decisions[0]["detail"]["assigned"] == ["alice.sre", "carol.secops"]  # every HITL step is assigned


def test_prod_install_marked_success_without_an_answer_installs_nothing(dag, account):
    """The change-path bypass (issue 14): "Mark success" on the approval instead of answering it.
    install_approved re-reads the recorded HITL answer for this run's stored plan, finds none, and
    installs nothing."""
    import uuid

    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session
    from sqlalchemy import update

    def mark_success(request):
        with create_session() as session:
            session.execute(update(TaskInstance).where(TaskInstance.id == uuid.UUID(str(request.ti_id)))
                            .values(state="success"))

    _truth, emulator = account
    before = {c["CommandId"] for c in emulator.client("ssm").list_commands()["Commands"]}
    _dag_run, tis, _ = run(dag, datetime(2026, 12, 13, 3, tzinfo=UTC), mark_success)
    assert tis["approve"].state == "success"
    report = tis["install_approved"].xcom_pull(task_ids="install_approved")
    assert {p["status"] for p in report["policies"]} == {"not approved"}
    sent = commands(emulator, before)
    assert [c["Parameters"]["Operation"] for c in sent] == [["Scan"]]
