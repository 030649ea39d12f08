"""The change path's checks as functions: approval verification at the point of change, the plan
hash, who the requester is, the Markdown escaping, fail-closed S3 tag lookups, supersession and
per-origin pool routing. The end-to-end attacks are in tests/dags/test_change_path.py."""

from __future__ import annotations

from types import SimpleNamespace

import boto3
import pytest
from botocore.stub import Stubber

from aiops.remediation.approvals import (
    ApprovalNotVerified,
    md_code,
    md_escape,
    plan_hash,
    resolve_requester,
    verify_approvals,
)


def make_plan(rounds: int = 2, **overrides) -> dict:
    plan = {"request_id": "r" * 20, "runbook": "rightsize-ec2-instance", "document_name": "MatCarv-rightsize",
            "document_version": "1", "document_sha256": "d" * 64, "parameters": {"InstanceId": "i-0abc1234"},
            "assume_role": "arn:aws:iam::123456789012:role/MatCarvAIOps-rightsize-ec2-instance",
            "targets_executable": ["ec2:instance:i-0abc1234"], "approval": "requires-two-approvals",
            "approval_rounds": rounds, "approvers": ["alice.sre", "carol.secops", "admin"],
            "requested_by": "bob.finops", "dry_run": False,
            # the rest of a complete plan (aiops.remediation.model.RemediationPlan)
            "run_id": "manual__1", "title": "Right-size an EC2 instance", "risk": "medium", "origin": "manual",
            "targets": [{"id": "i-0abc1234", "kind": "ec2:instance", "tags": {}, "exists": True}],
            "blast_radius": {"targets": 1, "limit": 1}, "changes": "stop, resize, start", "rollback": "resize back",
            "planned_at": "2026-12-02T17:00:00+00:00", "approval_timeout_minutes": 720, **overrides}
    plan["plan_hash"] = plan_hash(plan)
    return plan


def answer(round_no: int, user: str, plan: dict, decision: str = "Approve", **overrides) -> dict:
    return {"round": round_no, "user": user, "decision": decision, "source": "hitl", "plan_hash": plan["plan_hash"],
            "assigned": [u for u in plan["approvers"] if u != plan["requested_by"]], **overrides}


# -- verify_approvals --------------------------------------------------------------------------------


def test_two_distinct_assigned_approvers_of_this_plan_verify():
    plan = make_plan()
    ok = verify_approvals(plan, [answer(1, "alice.sre", plan), answer(2, "carol.secops", plan)])
    assert [(a["round"], a["user"], a["plan_hash"]) for a in ok] == [
        (1, "alice.sre", plan["plan_hash"]), (2, "carol.secops", plan["plan_hash"])]


def test_pre_approved_plan_needs_no_answers():
    assert verify_approvals(make_plan(rounds=0), []) == []


@pytest.mark.parametrize(("answers", "why"), [
    pytest.param(lambda p: [], "round 1 of 2 has no recorded answer", id="mark_success_both_rounds"),
    pytest.param(lambda p: [answer(1, "alice.sre", p)], "round 2 of 2 has no recorded answer",
                 id="mark_success_second_round"),
    pytest.param(lambda p: [{"round": 1, "status": "asked", "assigned": ["alice.sre"], "plan_hash": p["plan_hash"],
                             "user": None, "decision": None, "source": None}, answer(2, "alice.sre", p)],
                 "round 1 of 2 has no recorded answer", id="asked_but_marked_success"),
    pytest.param(lambda p: [answer(1, "alice.sre", p, source="xcom"), answer(2, "carol.secops", p)],
                 r"malformed \(source", id="not_from_hitl"),
    pytest.param(lambda p: [answer(1, "alice.sre", p, "Reject"), answer(2, "carol.secops", p)],
                 "answered 'Reject'", id="rejected"),
    pytest.param(lambda p: [answer(1, "", p, "timeout"), answer(2, "carol.secops", p)],
                 "answered 'timeout'", id="timed_out"),
    pytest.param(lambda p: [answer(1, "alice.sre", p, plan_hash="f" * 64), answer(2, "carol.secops", p)],
                 "was for plan ffffffffffff", id="other_plan"),
    pytest.param(lambda p: [answer(1, "mallory", p), answer(2, "carol.secops", p)],
                 "mallory is not an assigned approver", id="unassigned"),
    pytest.param(lambda p: [answer(1, "bob.finops", p, assigned=["bob.finops"]), answer(2, "carol.secops", p)],
                 "bob.finops is not an assigned approver", id="requester_not_an_approver"),
    pytest.param(lambda p: [answer(1, "alice.sre", p), answer(2, "alice.sre", p)],
                 "approvals must come from different people", id="same_person_twice"),
])
def test_missing_or_invalid_approvals_are_refused(answers, why):
    plan = make_plan()
    with pytest.raises(ApprovalNotVerified, match=why):
        verify_approvals(plan, answers(plan))


@pytest.mark.parametrize(("bad", "field"), [
    pytest.param({"approved_by_admin": True}, "approved_by_admin", id="unknown_key"),
    pytest.param({"round": "first"}, "round", id="wrong_type"),
])
def test_a_malformed_recorded_approval_is_no_approval(bad, field):
    """The approval record is a typed hand-off (aiops.remediation.model.Approval): an entry edited
    into a shape the approval task never writes is refused, naming the field."""
    plan = make_plan()
    with pytest.raises(ApprovalNotVerified, match=rf"malformed \({field}"):
        verify_approvals(plan, [answer(1, "alice.sre", plan, **bad), answer(2, "carol.secops", plan)])


def test_requester_listed_as_approver_still_cannot_approve():
    plan = make_plan(approvers=["alice.sre", "bob.finops"])
    with pytest.raises(ApprovalNotVerified, match=r"requester bob\.finops cannot approve"):
        verify_approvals(plan, [answer(1, "alice.sre", plan), answer(2, "bob.finops", plan, assigned=["bob.finops"])])


@pytest.mark.parametrize("key", ["parameters", "targets_executable", "document_name", "document_version",
                                 "assume_role", "approvers", "requested_by", "approval_rounds"])
def test_any_change_to_what_executes_changes_the_hash(key):
    plan = make_plan()
    changed = {**plan, key: {"x": "y"}}
    assert plan_hash(changed) != plan["plan_hash"]
    assert plan_hash({**plan, "markdown": "shown text only"}) == plan["plan_hash"]


# -- requester ---------------------------------------------------------------------------------------


def test_manual_run_requester_is_the_triggering_user_not_the_conf():
    who = resolve_requester(run_type="manual", triggering_user="bob.finops", conf={"requested_by": "alice.sre"})
    assert (who.identity, who.origin, who.note) == ("bob.finops", "manual", "alice.sre")


def test_manual_run_without_a_user_is_refused():
    with pytest.raises(ApprovalNotVerified, match="triggering user"):
        resolve_requester(run_type="manual", triggering_user=None, conf={"requested_by": "alice.sre"})


def test_platform_runs_are_requested_by_the_component():
    incident = resolve_requester(run_type="operator_triggered", triggering_user=None,
                                 conf={"requested_by": "incident_response"})
    assert (incident.identity, incident.origin) == ("platform:incident_response", "incident")
    cost = resolve_requester(run_type="operator_triggered", triggering_user=None,
                             conf={"requested_by": "bob.finops (cost_rightsizing)"})
    assert (cost.identity, cost.origin) == ("platform:cost_rightsizing", "scheduled")
    chained = resolve_requester(run_type="operator_triggered", triggering_user="carol.secops",
                                conf={"requested_by": "compliance_sweep"})
    assert (chained.identity, chained.origin) == ("carol.secops", "scheduled")


# -- escaping ----------------------------------------------------------------------------------------


def test_markdown_and_html_in_aws_text_are_inert():
    evil = "[click](https://evil.example) ![x](y) <img src=x onerror=alert(1)> **b** `c` | d\n# h"
    text = md_escape(evil)
    assert "<" not in text
    assert ">" not in text
    assert "](" not in text
    assert "**" not in text
    assert "\n" not in text
    assert "\\[click\\]\\(https\\://evil.example\\)" in text
    code = md_code("a`b|c\nd")
    assert code == "`a'b\\|c d`"


# -- fail-closed S3 tags -----------------------------------------------------------------------------


@pytest.fixture
def s3(monkeypatch):
    client = boto3.client("s3", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    monkeypatch.setattr("aiops.remediation.targets.aws.client", lambda service, *a, **k: client)
    with Stubber(client) as stub:
        yield stub


def test_s3_tag_lookup_denied_refuses(s3):
    from botocore.exceptions import ClientError

    from aiops.remediation.targets import describe_targets

    s3.add_response("head_bucket", {}, {"Bucket": "matcarv-prod-ledger"})
    s3.add_client_error("get_bucket_tagging", "AccessDenied", "Access Denied", 403,
                        expected_params={"Bucket": "matcarv-prod-ledger"})
    with pytest.raises(ClientError, match="AccessDenied"):
        describe_targets("s3:bucket", ["matcarv-prod-ledger"])


def test_s3_no_tag_set_means_untagged_and_404_means_missing(s3):
    from aiops.remediation.targets import describe_targets

    s3.add_response("head_bucket", {}, {"Bucket": "plain"})
    s3.add_client_error("get_bucket_tagging", "NoSuchTagSet", "The TagSet does not exist", 404)
    s3.add_client_error("head_bucket", "404", "Not Found", 404)
    plain, gone = describe_targets("s3:bucket", ["plain", "gone"])
    assert (plain.exists, dict(plain.tags)) == (True, {})
    assert gone.exists is False


def test_s3_head_bucket_denied_refuses(s3):
    from botocore.exceptions import ClientError

    from aiops.remediation.targets import describe_targets

    s3.add_client_error("head_bucket", "403", "Forbidden", 403)
    with pytest.raises(ClientError):
        describe_targets("s3:bucket", ["someone-elses"])


# -- supersession and execution refusals that need only the state store ------------------------------


def test_newer_request_supersedes_an_older_pending_one_which_cannot_execute(isolated_stores):
    from aiops.core.state import StateStore
    from aiops.remediation.pipeline import authorise_execution, supersede_older

    store = StateStore()
    old, new = make_plan(request_id="a" * 20, run_id="old"), make_plan(request_id="b" * 20, run_id="new")
    other = make_plan(request_id="c" * 20, run_id="other", targets_executable=["ec2:instance:i-0def5678"])
    for p in (old, other):
        store.upsert_request(p["request_id"], run_id=p["run_id"], runbook=p["runbook"], plan=p,
                             status="awaiting_approval")
    assert supersede_older(new, store=store) == [old["request_id"]]
    assert store.get_request(old["request_id"])["status"] == "superseded"
    assert store.get_request(other["request_id"])["status"] == "awaiting_approval"
    with pytest.raises(ApprovalNotVerified, match=f"superseded by {new['request_id']}"):
        authorise_execution(old["request_id"], run_id="old")
    refusal = store.audit_entries(f"remediation:{old['request_id']}")[-1]
    assert refusal["action"] == "refused_at_execution"


def test_stored_plan_altered_after_planning_is_refused(isolated_stores):
    from aiops.core.state import StateStore
    from aiops.remediation.pipeline import authorise_execution

    plan = make_plan(request_id="d" * 20)
    tampered = {**plan, "parameters": {"InstanceId": "i-0feedbeef"}}  # hash left as approved
    StateStore().upsert_request(plan["request_id"], run_id="r", runbook=plan["runbook"], plan=tampered,
                                status="awaiting_approval")
    with pytest.raises(ApprovalNotVerified, match="does not match its hash"):
        authorise_execution(plan["request_id"], run_id="r")
    assert StateStore().get_request(plan["request_id"])["status"] == "refused_at_execution"


# -- pools -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("run", "pool"), [
    (SimpleNamespace(run_type="operator_triggered", triggering_user_name=None,
                     conf={"requested_by": "incident_response"}), "aiops_remediation_incident"),
    (SimpleNamespace(run_type="operator_triggered", triggering_user_name=None,
                     conf={"requested_by": "compliance_sweep"}), "aiops_remediation_scheduled"),
    (SimpleNamespace(run_type="manual", triggering_user_name="bob.finops",
                     conf={"requested_by": "incident_response"}), "aiops_remediation_manual"),
])
def test_remediate_tasks_go_to_the_pool_of_their_origin(monkeypatch, run, pool):
    from aiops.airflow import pools

    monkeypatch.setattr(pools, "_pool_exists", lambda name: True)
    ti = SimpleNamespace(dag_id="remediate", task_id="execute", pool="default_pool")
    pools.task_instance_mutation_hook(ti, dag_run=run)
    assert ti.pool == pool
    approval = SimpleNamespace(dag_id="remediate", task_id="approve_1", pool="default_pool")
    pools.task_instance_mutation_hook(approval, dag_run=run)
    assert approval.pool == "default_pool"
    other = SimpleNamespace(dag_id="ops_snapshots", task_id="execute", pool="default_pool")
    pools.task_instance_mutation_hook(other, dag_run=run)
    assert other.pool == "default_pool"


def test_missing_pool_is_never_routed_to(monkeypatch):
    from aiops.airflow import pools

    monkeypatch.setattr(pools, "_pool_exists", lambda name: False)
    ti = SimpleNamespace(dag_id="remediate", task_id="execute", pool="default_pool")
    pools.task_instance_mutation_hook(ti, dag_run=SimpleNamespace(run_type="manual", triggering_user_name="x", conf={}))
    assert ti.pool == "default_pool"


@pytest.mark.airflow
def test_ensure_pools_creates_the_three_pools(airflow_db):
    from airflow.models.pool import Pool

    from aiops.airflow.pools import ensure_pools

    ensure_pools({"incident": 5, "scheduled": 2, "manual": 1})
    assert {o: Pool.get_pool(f"aiops_remediation_{o}").slots for o in ("incident", "scheduled", "manual")} == {
        "incident": 5, "scheduled": 2, "manual": 1}


@pytest.mark.parametrize(("change", "why"), [
    pytest.param({"evil": "i-0protected"}, "evil", id="unknown_key"),
    pytest.param({"targets": "all of them"}, "targets", id="wrong_type"),
    pytest.param({"risk": "none"}, "risk", id="bad_value"),
])
def test_stored_plan_that_is_not_a_plan_is_refused_even_with_a_matching_hash(isolated_stores, change, why):
    """Keys outside the hashed part can be rewritten without changing the hash; the model catches them."""
    from aiops.core.state import StateStore
    from aiops.remediation.model import RemediationPlan
    from aiops.remediation.pipeline import stored_plan

    plan = make_plan(request_id="e" * 20)
    RemediationPlan.model_validate(plan)  # the fixture is a complete plan
    StateStore().upsert_request(plan["request_id"], run_id="r", runbook=plan["runbook"], plan={**plan, **change},
                                status="awaiting_approval")
    with pytest.raises(ApprovalNotVerified, match=f"is not a valid plan: .*{why}"):
        stored_plan(plan["request_id"])
