"""remediate end to end with dag.test(): plan -> approval (answered Approve / Reject / not at all)
-> SSM Automation on the sandbox -> verify -> audit trail; guards refuse protected targets."""

from __future__ import annotations

import pytest

from aiops_sandbox.hitl import HitlResponder, approve, reject

pytestmark = [pytest.mark.airflow, pytest.mark.emulator, pytest.mark.slow]
ANCHOR = "2026-11-20T12:00:00Z"


@pytest.fixture(scope="module")
def account(tmp_path_factory, airflow_db):
    """A freshly seeded account in its own emulator process, catalog published, private stores."""
    from conftest import EmulatorProcess, aws_conn_json

    from aiops.core import aws
    from aiops.core.settings import get_settings
    from aiops.remediation.sync import sync_catalog

    tmp = tmp_path_factory.mktemp("remediate")
    emulator = EmulatorProcess(seed=True, anchor=ANCHOR, days=1, manifest=tmp / "truth.json")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AIRFLOW_CONN_AWS_DEFAULT", aws_conn_json(emulator.endpoint))
        mp.setenv("AIOPS_HOME", str(tmp / "aiops"))
        mp.setenv("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS", "admin:admin,alice.sre:op,bob.finops:op,carol.secops:op")
        get_settings.cache_clear()
        aws.clear_client_cache()
        sync_catalog()
        yield emulator.manifest, emulator.client("ec2")
    get_settings.cache_clear()
    aws.clear_client_cache()
    emulator.stop()


@pytest.fixture(scope="module")
def dag(account):
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder="dags/remediate.py").get_dag("remediate")


def state(ec2, instance_id: str) -> str:
    return ec2.describe_instances(InstanceIds=[instance_id])["Reservations"][0]["Instances"][0]["State"]["Name"]


def run(dag, conf, answers):
    with HitlResponder(answers, process_timeouts=True) as responder:
        dag_run = dag.test(run_conf=conf)
    states = {ti.task_id: ti.state for ti in dag_run.get_task_instances()}
    return dag_run, states, responder


def request_row(dag_run):
    from aiops.core.state import StateStore
    from aiops.remediation.pipeline import request_id

    return StateStore().get_request(request_id("remediate", dag_run.run_id))


def test_approved_stop_runs_and_is_audited(dag, account):
    truth, ec2 = account
    idle = truth["waste"]["idle_instances"][0]
    conf = {"runbook": "stop-idle-instance", "parameters": {"InstanceId": idle}, "requested_by": "bob.finops",
            "reason": "idle 14 days"}
    dag_run, states, responder = run(dag, conf, {"approve_1": approve(by="alice.sre")})
    assert states["execute"] == "success", states
    assert states["verify"] == "success"
    assert state(ec2, idle) == "stopped"
    row = request_row(dag_run)
    assert row["status"] == "succeeded"
    assert [(a["round"], a["user"], a["decision"], a["source"]) for a in row["approvals"]] == [
        (1, "alice.sre", "Approve", "hitl")]
    assert row["approvals"][0]["plan_hash"] == row["plan"]["plan_hash"]
    assert row["execution_id"]
    request = responder.answered[0][0]
    assert "Stop an idle EC2 instance" in request.subject
    assert idle in request.body  # the approver saw the plan
    assert {u["id"] for u in request.assigned_users} >= {"alice.sre", "bob.finops"}


def test_rejected_request_changes_nothing(dag, account):
    truth, ec2 = account
    target = truth["resources"]["instances"]["platform-staging-ci-runner"]
    conf = {"runbook": "stop-idle-instance", "parameters": {"InstanceId": target}, "requested_by": "bob.finops"}
    dag_run, states, _ = run(dag, conf, {"approve_1": reject(by="alice.sre")})
    assert states["execute"] == "skipped"
    assert state(ec2, target) == "running"
    row = request_row(dag_run)
    assert row["status"] == "rejected"
    assert row["approvals"][0]["user"] == "alice.sre"


def test_unanswered_approval_times_out_as_not_executed(dag, account, monkeypatch):
    truth, ec2 = account
    target = truth["resources"]["instances"]["payments-staging-api"]
    for task_id in ("approve_1", "approve_2"):
        monkeypatch.setattr(dag.get_task(task_id), "response_timeout", __import__("datetime").timedelta(seconds=1))
    conf = {"runbook": "stop-idle-instance", "parameters": {"InstanceId": target}, "requested_by": "bob.finops"}
    dag_run, states, _ = run(dag, conf, {"approve_1": None})
    assert states["execute"] == "skipped"
    assert state(ec2, target) == "running"
    assert request_row(dag_run)["status"] == "not_executed_timeout"


def test_protected_target_is_refused_before_anything_reaches_ssm(dag, account):
    truth, ec2 = account
    protected = next(i for i in truth["resources"]["protected"] if i.startswith("i-"))
    conf = {"runbook": "stop-idle-instance", "parameters": {"InstanceId": protected}, "requested_by": "bob.finops"}
    dag_run, states, responder = run(dag, conf, {})
    assert states["plan"] == "failed"
    assert states["execute"] in {"upstream_failed", "skipped"}
    assert str(dag_run.state) == "failed"  # a refused plan fails the run (it is not a dry run)
    assert responder.answered == []
    assert state(ec2, protected) == "running"
    row = request_row(dag_run)
    assert row["status"] == "rejected_by_guard"
    assert "protected" in row["outcome"]["error"]


def test_manual_trigger_of_a_pre_approved_runbook_needs_an_approval(dag, account):
    """Pre-approved means pre-approved for a verified incident cause (docs/preapproval.md): a person
    triggering remediate gets an approval step, and nothing runs until someone approves."""
    truth, _ec2 = account
    volume = truth["resources"]["volumes"]["catalog-prod-search-data"]
    conf = {"runbook": "snapshot-ebs-volume", "parameters": {"VolumeId": volume}, "requested_by": "alice.sre"}
    dag_run, states, responder = run(dag, conf, {"approve_1": reject(by="bob.finops")})
    assert states["execute"] == "skipped", states
    assert [r.task_id for r, _ in responder.answered] == ["approve_1"]
    row = request_row(dag_run)
    assert row["status"] == "rejected"
    assert row["plan"]["preapproval"]["preapproved"] is False
    assert "manual" in row["plan"]["preapproval"]["reasons"][0]

    dag_run, states, responder = run(dag, conf, {"approve_1": approve(by="bob.finops")})
    assert states["execute"] == "success", states
    request = responder.answered[0][0]
    assert "pre-approval not granted" in request.body
    assert request_row(dag_run)["status"] == "succeeded"


def test_runbook_missing_from_the_account_is_published_before_execution(dag, account):
    """A fresh account that never ran runbook_sync: the approved execution publishes the catalog
    version first instead of failing with AutomationDefinitionNotFound (found on a fresh make run)."""
    from aiops.core import aws
    from aiops.remediation.catalog import load_catalog

    truth, ec2 = account
    target = truth["resources"]["instances"]["catalog-prod-api-1"]
    name = load_catalog().get("reboot-ec2-instance").document_name
    ssm = aws.client("ssm")
    ssm.delete_document(Name=name)
    # a manual request: the pre-approved runbook asks for an approval (docs/preapproval.md)
    _dag_run, states, _ = run(dag, {"runbook": "reboot-ec2-instance", "parameters": {"InstanceId": target},
                                   "requested_by": "incident_response"}, {"approve_1": approve(by="bob.finops")})
    assert states["execute"] == "success", states
    assert ssm.describe_document(Name=name)["Document"]["Name"] == name
    assert state(ec2, target) == "running"


def test_failed_execution_is_recorded_and_fails_the_run(dag, account):
    truth, ec2 = account
    target = truth["resources"]["instances"]["platform-staging-ci-runner"]
    ec2.stop_instances(InstanceIds=[target])  # the runbook asserts "running" first: SSM fails it
    dag_run, states, _ = run(dag, {"runbook": "reboot-ec2-instance", "parameters": {"InstanceId": target},
                                   "requested_by": "alice.sre"}, {"approve_1": approve(by="bob.finops")})
    assert states["execute"] == "failed"
    assert states["record"] == "failed"  # recorded, and the run is red rather than green
    assert str(dag_run.state) == "failed"
    row = request_row(dag_run)
    assert row["status"] == "execution_failed"
    assert row["execution_id"]


def test_two_approvals_need_two_different_people(dag, account):
    truth, ec2 = account
    target = truth["waste"]["overprovisioned_instances"][0]["instance_id"]
    conf = {"runbook": "rightsize-ec2-instance", "requested_by": "bob.finops",
            "parameters": {"InstanceId": target, "TargetInstanceType": "m5.xlarge"}}
    dag_run, states, responder = run(dag, conf, {"approve_1": approve(by="alice.sre"),
                                                 "approve_2": approve(by="bob.finops")})
    assert states["execute"] == "success", states
    second = next(req for req, _ in responder.answered if req.task_id == "approve_2")
    assert "alice.sre" not in {u["id"] for u in second.assigned_users}  # the first approver cannot approve twice
    instance = ec2.describe_instances(InstanceIds=[target])["Reservations"][0]["Instances"][0]
    assert instance["InstanceType"] == "m5.xlarge"
    assert [a["user"] for a in request_row(dag_run)["approvals"]] == ["alice.sre", "bob.finops"]


def test_dry_run_plans_and_approves_but_changes_nothing(dag, account):
    truth, ec2 = account
    target = truth["resources"]["instances"]["checkout-staging-web"]
    conf = {"runbook": "stop-idle-instance", "parameters": {"InstanceId": target}, "requested_by": "alice.sre",
            "dry_run": True}
    dag_run, states, _ = run(dag, conf, {"approve_1": approve(by="bob.finops")})
    assert states["execute"] == "skipped"
    assert state(ec2, target) == "running"
    row = request_row(dag_run)
    assert row["status"] == "dry_run"
    assert row["plan"]["targets"][0]["id"] == target
