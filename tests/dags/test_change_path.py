"""The change path's promises, attacked end to end with dag.test() on a seeded simulated account.

Each attack is reproduced the way an ordinary Airflow user would try it (mark an approval success,
rewrite the plan XCom after approval, approve their own request, pass a role in the conf, tag a
target protected while the approval waits, put Markdown in a Name tag) and shown refused with
nothing changed in AWS; the honest paths (two-person approval, incident-driven pre-approved
reboot) still work and the audit trail names who approved which plan hash.
"""

from __future__ import annotations

import contextlib
import uuid
from typing import Any

import pytest

from aiops_sandbox.hitl import HitlResponder, approve

pytestmark = [pytest.mark.airflow, pytest.mark.emulator, pytest.mark.slow]
ANCHOR = "2026-11-20T12:00:00Z"


@pytest.fixture(scope="module")
def account(tmp_path_factory, airflow_db):
    from conftest import EmulatorProcess, aws_conn_json

    from aiops.core import aws
    from aiops.core.settings import get_settings
    from aiops.remediation.sync import sync_catalog

    tmp = tmp_path_factory.mktemp("change_path")
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


@contextlib.contextmanager
def triggered_as(user: str | None, run_type: str | None = None):
    """dag.test() always records triggering user 'dag_test' and a manual run: make it the given
    user (a UI trigger) or an operator-triggered run with no user (a platform DAG)."""
    import airflow.models.dagrun as dagrun_module

    original = dagrun_module.get_or_create_dagrun

    def create(**kwargs: Any):
        kwargs["triggering_user_name"] = user
        dr = original(**kwargs)
        if run_type:
            dr.run_type = run_type
            kwargs["session"].merge(dr)
            kwargs["session"].commit()
        return dr

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(dagrun_module, "get_or_create_dagrun", create)
        yield


def mark_success(request) -> None:
    """What the UI's "Mark success" (PATCH of the task instance state) does: no HITL response."""
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session
    from sqlalchemy import update

    with create_session() as session:
        session.execute(update(TaskInstance).where(TaskInstance.id == uuid.UUID(str(request.ti_id)))
                        .values(state="success"))


def set_plan_xcom(run_id: str, **changes: Any) -> None:
    """What PATCH of the plan XCom over the REST API does."""
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        plan = session.scalars(XComModel.get_many(run_id=run_id, key="return_value", dag_ids="remediate",
                                                  task_ids="plan")).first()
        value = XComModel.deserialize_value(plan)
        value.update(changes)
        XComModel.set(key="return_value", value=value, dag_id="remediate", task_id="plan", run_id=run_id,
                      serialize=False, session=session)  # exactly as the API's PATCH does


def run(dag, conf, answers, *, user: str | None = "bob.finops", run_type: str | None = None):
    with triggered_as(user, run_type), HitlResponder(answers, process_timeouts=True) as responder:
        dag_run = dag.test(run_conf=conf)
    states = {ti.task_id: ti.state for ti in dag_run.get_task_instances()}
    return dag_run, states, responder


def row_of(dag_run) -> dict:
    from aiops.core.state import StateStore
    from aiops.remediation.pipeline import request_id

    return StateStore().get_request(request_id("remediate", dag_run.run_id))


def audit_of(dag_run) -> list[dict]:
    from aiops.core.state import StateStore
    from aiops.remediation.pipeline import request_id

    return StateStore().audit_entries(f"remediation:{request_id('remediate', dag_run.run_id)}")


def state(ec2, instance_id: str) -> str:
    return ec2.describe_instances(InstanceIds=[instance_id])["Reservations"][0]["Instances"][0]["State"]["Name"]


def ssm_executions(ec2_client_factory=None) -> list[dict]:
    from aiops.core import aws

    return aws.client("ssm").describe_automation_executions()["AutomationExecutionMetadataList"]


def refused(dag_run, states, why: str) -> dict:
    assert states["execute"] == "failed", states
    assert states["record"] == "failed"
    assert str(dag_run.state) == "failed"
    row = row_of(dag_run)
    assert row["status"] == "refused_at_execution"
    assert why in row["outcome"]["error"], row["outcome"]
    entry = next(e for e in audit_of(dag_run) if e["action"] == "refused_at_execution")
    assert why in entry["detail"]["error"]
    return row


def test_mark_success_on_the_approval_is_no_approval(dag, account):
    truth, ec2 = account
    target = truth["waste"]["idle_instances"][0]
    before = len(ssm_executions())
    conf = {"runbook": "stop-idle-instance", "parameters": {"InstanceId": target}, "reason": "idle"}
    dag_run, states, _ = run(dag, conf, lambda req: mark_success(req))
    assert states["approve_1"] == "success"  # the bypass itself still "works" in Airflow...
    refused(dag_run, states, "round 1 of 1 has no recorded answer")  # ...but nothing executes
    assert state(ec2, target) == "running"
    assert len(ssm_executions()) == before


def test_mark_success_on_the_second_round_is_no_approval(dag, account):
    truth, ec2 = account
    target = truth["waste"]["overprovisioned_instances"][0]["instance_id"]
    before = ec2.describe_instances(InstanceIds=[target])["Reservations"][0]["Instances"][0]["InstanceType"]
    conf = {"runbook": "rightsize-ec2-instance", "parameters": {"InstanceId": target, "TargetInstanceType": "m5.large"}}

    def answer(req):
        if req.task_id == "approve_1":
            return approve(by="alice.sre")
        mark_success(req)
        return None

    dag_run, states, _ = run(dag, conf, answer)
    refused(dag_run, states, "round 2 of 2 has no recorded answer")
    after = ec2.describe_instances(InstanceIds=[target])["Reservations"][0]["Instances"][0]
    assert after["InstanceType"] == before
    assert after["State"]["Name"] == "running"


def test_plan_xcom_rewritten_after_approval_changes_nothing(dag, account):
    """Approved for instance A; the XCom is then pointed at a protected instance B, another
    document and an attacker's role. Execution runs the stored plan: A, its document, its role."""
    from aiops.core import aws

    truth, ec2 = account
    approved = truth["resources"]["instances"]["payments-staging-api"]
    protected = next(i for i in truth["resources"]["protected"] if i.startswith("i-"))
    evil_role = "arn:aws:iam::123456789012:role/attacker-admin"

    def answer(req):
        set_plan_xcom(req.run_id, parameters={"InstanceId": protected},
                      targets=[{"id": protected, "kind": "ec2:instance", "tags": {}, "exists": True}],
                      document_name="MatCarv-reboot-ec2-instance", assume_role=evil_role,
                      request_id="0" * 20)
        return approve(by="alice.sre")

    dag_run, states, _ = run(dag, {"runbook": "stop-idle-instance", "parameters": {"InstanceId": approved}}, answer)
    assert states["execute"] == "success", states
    assert state(ec2, protected) == "running"
    assert state(ec2, approved) == "stopped"
    row = row_of(dag_run)
    execution = aws.client("ssm").get_automation_execution(AutomationExecutionId=row["execution_id"])[
        "AutomationExecution"]
    assert execution["DocumentName"] == row["plan"]["document_name"] != "MatCarv-reboot-ec2-instance"
    assert execution["Parameters"]["InstanceId"] == [approved]
    assert execution["Parameters"]["AutomationAssumeRole"] == [row["plan"]["assume_role"]]
    assert row["plan"]["assume_role"].endswith(":role/MatCarvAIOps-stop-idle-instance")
    assert row["status"] == "succeeded"


def test_requester_cannot_approve_their_own_change(dag, account):
    truth, ec2 = account
    target = truth["resources"]["instances"]["checkout-staging-web"]
    conf = {"runbook": "stop-idle-instance", "parameters": {"InstanceId": target},
            "requested_by": "carol.secops"}  # a conf identity is only a note
    seen = []

    def answer(req):
        seen.append([u["id"] for u in req.assigned_users])
        return approve(by="bob.finops")  # the triggering user answers: the API refuses (403)

    with pytest.raises(Exception, match="403"):
        run(dag, conf, answer, user="bob.finops")
    assert seen
    assert "bob.finops" not in seen[0]
    assert "carol.secops" in seen[0]
    assert state(ec2, target) == "running"


def test_two_person_rule_counts_the_requester_out(dag, account):
    """alice asks for a two-approval runbook whose named approvers are only alice and bob: with the
    requester removed one person is left, so the plan is refused (and the run fails)."""
    from aiops.core.settings import get_settings

    truth, _ec2 = account
    target = truth["waste"]["overprovisioned_instances"][0]["instance_id"]
    conf = {"runbook": "rightsize-ec2-instance", "parameters": {"InstanceId": target, "TargetInstanceType": "m5.large"}}
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS", "alice.sre:admin,bob.finops:op")
        get_settings.cache_clear()
        dag_run, states, responder = run(dag, conf, {}, user="alice.sre")
    assert states["plan"] == "failed"
    assert str(dag_run.state) == "failed"
    assert "other than the requester" in row_of(dag_run)["outcome"]["error"]
    assert responder.answered == []


def test_automation_assume_role_in_conf_is_refused(dag, account):
    truth, ec2 = account
    target = truth["resources"]["instances"]["platform-staging-ci-runner"]
    conf = {"runbook": "stop-idle-instance", "parameters": {
        "InstanceId": target, "AutomationAssumeRole": "arn:aws:iam::123456789012:role/attacker-admin"}}
    before = len(ssm_executions())
    dag_run, states, responder = run(dag, conf, {})
    assert states["plan"] == "failed"
    assert str(dag_run.state) == "failed"
    assert responder.answered == []
    row = row_of(dag_run)
    assert row["status"] == "rejected_by_guard"
    assert "AutomationAssumeRole is set by the executor" in row["outcome"]["error"]
    assert state(ec2, target) == "running"
    assert len(ssm_executions()) == before


def test_markdown_in_a_name_tag_is_escaped_and_protected_tag_added_while_waiting_refuses(dag, account):
    truth, ec2 = account
    target = truth["resources"]["instances"]["platform-prod-bastion"]
    evil = "[approve me](https://evil.example) <img src=x onerror=alert(1)> **prod** `x` | y"
    ec2.create_tags(Resources=[target], Tags=[{"Key": "Name", "Value": evil}])

    def answer(req):
        ec2.create_tags(Resources=[target], Tags=[{"Key": "aiops:protected", "Value": "true"}])
        return approve(by="alice.sre")

    try:
        dag_run, states, responder = run(dag, {"runbook": "stop-idle-instance", "parameters": {"InstanceId": target}},
                                         answer)
    finally:
        ec2.delete_tags(Resources=[target], Tags=[{"Key": "aiops:protected"}])
    body = responder.answered[0][0].body
    assert "<img" not in body
    assert "](https" not in body
    assert "**prod**" not in body
    assert "&lt;img" in body
    assert "\\[approve me\\]" in body
    refused(dag_run, states, "aiops:protected=true")
    assert state(ec2, target) == "running"


def test_two_person_approval_runs_and_audit_names_approvers_and_plan_hash(dag, account):
    truth, ec2 = account
    target = truth["waste"]["overprovisioned_instances"][0]["instance_id"]
    conf = {"runbook": "rightsize-ec2-instance", "parameters": {"InstanceId": target, "TargetInstanceType": "m5.xlarge"},
            "incident_id": "INC-TEST"}
    dag_run, states, responder = run(dag, conf, {"approve_1": approve(by="alice.sre"),
                                                 "approve_2": approve(by="admin")})
    assert states["execute"] == "success", states
    first, second = (req for req, _ in responder.answered)
    assert "bob.finops" not in {u["id"] for u in first.assigned_users}  # the requester
    assert "alice.sre" not in {u["id"] for u in second.assigned_users}  # the first approver
    assert target in first.subject
    assert "INC-TEST" in first.subject
    row = row_of(dag_run)
    digest = row["plan"]["plan_hash"]
    assert digest[:12] in first.body
    assert "rejected and nothing changes" in first.body
    assert [(a["user"], a["decision"], a["plan_hash"]) for a in row["approvals"]] == [
        ("alice.sre", "Approve", digest), ("admin", "Approve", digest)]
    authorised = next(e for e in audit_of(dag_run) if e["action"] == "execution_authorised")
    assert authorised["detail"]["approved_by"] == ["alice.sre", "admin"]
    assert authorised["detail"]["plan_hash"] == digest
    assert authorised["detail"]["requested_by"] == "bob.finops"
    instance = ec2.describe_instances(InstanceIds=[target])["Reservations"][0]["Instances"][0]
    assert instance["InstanceType"] == "m5.xlarge"


def test_incident_run_without_a_verified_cause_asks_before_a_pre_approved_reboot(dag, account):
    """A platform-triggered run naming an incident the platform never verified (no pre-approval
    grant bound to it) does not run the pre-approved runbook unattended: it asks a person. The
    honest unattended path (a verified game-day alarm) is tests/emulator/test_incident_response.py."""
    truth, _ec2 = account
    target = truth["resources"]["instances"]["catalog-prod-api-1"]
    conf = {"runbook": "reboot-ec2-instance", "parameters": {"InstanceId": target},
            "requested_by": "incident_response", "incident_id": "INC-GAMEDAY"}
    dag_run, states, responder = run(dag, conf, {"approve_1": approve(by="alice.sre")}, user=None,
                                     run_type="operator_triggered")
    assert states["execute"] == "success", states
    [(request, _)] = responder.answered  # asked once, although the runbook is pre-approved
    assert target in request.subject
    row = row_of(dag_run)
    assert row["requested_by"] == "platform:incident_response"
    assert row["plan"]["origin"] == "incident"
    assert row["status"] == "succeeded"
    authorised = next(e for e in audit_of(dag_run) if e["action"] == "execution_authorised")
    assert authorised["detail"]["approved_by"] == ["alice.sre"]
    assert authorised["detail"]["plan_hash"] == row["plan"]["plan_hash"]
