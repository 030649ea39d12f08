"""The remediate flow's logic: request -> plan (guards) -> approvals -> execute -> verify -> record.

Every change the platform makes to AWS goes through here (the ``remediate`` DAG calls these
functions), so there is one path, one set of guards and one audit trail:

* :func:`make_plan` validates parameters against the runbook's patterns, describes the targets,
  refuses protected / missing / too many targets (:mod:`aiops.remediation.guards`) and renders
  the dry-run plan the approver sees;
* :func:`approvers_for` and :func:`approval_rounds` turn the runbook's policy (plus any extra
  approval demanded by an :data:`APPROVAL_POLICIES` hook, e.g. an exhausted error budget) into
  HITL approval rounds;
* :func:`record_outcome` writes the final status, who approved or rejected, the execution id and
  the verification into the state store and the audit log.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from aiops.account.permissions import permissions
from aiops.core import aws
from aiops.core.identity import current_account
from aiops.core.settings import get_settings
from aiops.core.state import StateStore
from aiops.core.state import remediation_requests as table
from aiops.remediation.actions import change_record, get_action
from aiops.remediation.approvals import ApprovalNotVerified, Requester, plan_hash, short, verify_approvals
from aiops.remediation.approvals import md_code as c
from aiops.remediation.approvals import md_escape as e
from aiops.remediation.catalog import ASSUME_ROLE_PARAMETER, load_catalog
from aiops.remediation.guards import GuardViolation, check_targets, validate_parameters
from aiops.remediation.model import Approval, RemediationPlan
from aiops.remediation.policies import APPROVAL_POLICIES
from aiops.remediation.preapproval import gate_plan
from aiops.remediation.ssm import summarise
from aiops.remediation.sync import ensure_published
from aiops.remediation.targets import describe_targets

PERMISSIONS = permissions(
    "an execution's outcome",
    reader=(
        "ssm:GetAutomationExecution",
    ),
)

log = logging.getLogger(__name__)



def request_id(dag_id: str, run_id: str) -> str:
    return hashlib.sha1(f"{dag_id}/{run_id}".encode()).hexdigest()[:20]


def make_plan(conf: dict[str, Any], *, dag_id: str, run_id: str, requester: Requester | None = None,
              at: datetime | None = None) -> dict[str, Any]:
    """The dry-run plan for a remediate request; raises GuardViolation / KeyError with clear text.

    ``requester`` comes from the run (:func:`aiops.remediation.approvals.resolve_requester`); the
    conf's ``requested_by`` is only a note. The plan is stored in the state store with its hash
    (:func:`aiops.remediation.approvals.plan_hash`) before anyone is asked to approve it."""
    if not conf.get("runbook"):
        raise ValueError("conf must name a 'runbook' (one of the catalog ids) and its 'parameters'")
    who = requester or Requester(identity="unknown", origin="manual", note=str(conf.get("requested_by") or ""))
    rid = request_id(dag_id, run_id)
    store = StateStore()
    now = at or datetime.now(UTC)
    store.upsert_request(rid, run_id=run_id, runbook=str(conf["runbook"]), requested_by=who.identity,
                         reason=conf.get("reason"), incident_id=conf.get("incident_id"),
                         parameters=conf.get("parameters") or {}, status="requested",
                         account_id=current_account())  # the account it changes (issue 15)
    store.audit(actor=who.identity, action="requested", subject=f"remediation:{rid}", run_id=run_id,
                detail={"runbook": conf["runbook"], "parameters": conf.get("parameters") or {},
                        "reason": conf.get("reason"), "origin": who.origin, "note": who.note})
    try:
        runbook = load_catalog().get(str(conf["runbook"]))
        raw_params = dict(conf.get("parameters") or {})
        if ASSUME_ROLE_PARAMETER in raw_params:
            raise GuardViolation(runbook.id, f"{ASSUME_ROLE_PARAMETER} is set by the executor from the runbook's "
                                 "reviewed metadata; a request may not choose it", parameter=ASSUME_ROLE_PARAMETER)
        params = validate_parameters(runbook, raw_params)
        meta = runbook.metadata
        target_param = meta.targets_parameter
        target_kind = meta.parameters[target_param].target if target_param else None
        target_ids: list[str] = []
        if target_param:
            raw = params.get(target_param)
            target_ids = list(raw) if isinstance(raw, list) else [str(raw)] if raw else []
        targets = describe_targets(target_kind, target_ids) if target_kind and target_ids else []
        limit = min(meta.max_targets, get_settings().remediation_max_targets)
        check_targets(runbook, targets, limit)
        assume_role = resolve_assume_role(runbook.id, meta.automation_role)
        document = pin_document(runbook.id)
    except Exception as exc:
        store.upsert_request(rid, status="rejected_by_guard", outcome={"error": str(exc)})
        store.audit(actor="aiops", action="rejected_by_guard", subject=f"remediation:{rid}", run_id=run_id,
                    detail={"error": str(exc)})
        raise
    # pre-approved runs unattended only for a platform grant re-verified now (aiops.remediation.preapproval)
    gate = gate_plan(conf, runbook=runbook, parameters=params, request_id=rid, run_id=run_id)
    rounds = gate.rounds
    extra = [r for r in (hook({"runbook": runbook.id, "risk": meta.risk, "targets": [asdict(t) for t in targets]})
                         for hook in APPROVAL_POLICIES) if r]
    if extra and rounds < 2:
        rounds += 1
    # the requester never approves their own change
    approvers = [u for u in approvers_for(gate.approver_users, gate.approver_roles) if u != who.identity]
    if rounds > len(approvers) and not conf.get("dry_run"):  # a dry run shows the plan; it never executes
        refusal = GuardViolation(runbook.id, f"needs {rounds} approval(s) from people other than the requester "
                                 f"{who.identity}, but only {approvers or 'nobody'} may approve it")
        store.upsert_request(rid, status="rejected_by_guard", outcome={"error": str(refusal)})
        store.audit(actor="aiops", action="rejected_by_guard", subject=f"remediation:{rid}", run_id=run_id,
                    detail={"error": str(refusal)})
        raise refusal
    plan = RemediationPlan.model_validate({
        "request_id": rid, "run_id": run_id, "runbook": runbook.id, "title": meta.title,
        "document_name": document["name"], "document_version": document["version"],
        "document_sha256": document["sha256"], "assume_role": assume_role,
        "risk": meta.risk, "approval": meta.approval, "approval_rounds": rounds,
        "extra_approval_reasons": extra + gate.notes, "preapproval": gate.decision.model_dump(mode="json"),
        "approvers": approvers, "parameters": params, "targets": [asdict(t) for t in targets],
        "targets_executable": sorted(f"{t.kind}:{t.id}" for t in targets),
        "blast_radius": {"targets": len(targets), "limit": limit},
        "changes": runbook.render_changes(params), "permissions": list(meta.permissions),
        "rollback": meta.rollback, "requested_by": who.identity, "origin": who.origin,
        "note": who.note, "reason": conf.get("reason") or "", "incident_id": conf.get("incident_id"),
        "dry_run": bool(conf.get("dry_run", False)), "planned_at": now.isoformat(),
        "approval_timeout_minutes": get_settings().remediation_approval_timeout_minutes,
    }).to_json()  # the typed hand-off: validated here, and again where the change happens (stored_plan)
    plan["plan_hash"] = plan_hash(plan)
    plan["markdown"] = plan_markdown(plan)
    superseded = supersede_older(plan, store=store)
    plan["supersedes"] = superseded
    store.upsert_request(rid, targets=plan["targets"], plan=plan, parameters=params,
                         status="planned" if rounds == 0 else "awaiting_approval")
    store.audit(actor="aiops", action="planned", subject=f"remediation:{rid}", run_id=run_id,
                detail={**{k: plan[k] for k in ("runbook", "targets", "approval_rounds", "blast_radius",
                                                 "plan_hash", "document_version", "assume_role", "origin")},
                        "supersedes": superseded})
    return plan


def resolve_assume_role(runbook_id: str, role_name: str) -> str:
    """The role SSM Automation assumes for ``runbook_id``: the per-account override in settings, else
    the runbook's reviewed ``automation_role`` in the account of the AWS connection. Refuses an
    override in another account."""
    account = aws.account_id()
    configured = get_settings().remediation_automation_role_arns.get(runbook_id)
    if configured:
        match = re.fullmatch(r"arn:aws[a-z-]*:iam::([0-9]{12}):role/[A-Za-z0-9+=,.@_/-]{1,512}", configured)
        if not match or match.group(1) != account:
            raise GuardViolation(runbook_id, f"configured automation role {configured!r} is not a role of "
                                 f"account {account}")
        return configured
    partition = "aws"
    return f"arn:{partition}:iam::{account}:role/{role_name}"


def document_sha256(document: Any) -> str:
    return hashlib.sha256(json.dumps(document, sort_keys=True, separators=(",", ":"), default=str)
                          .encode()).hexdigest()


def pin_document(runbook_id: str) -> dict[str, str]:
    """Publish the catalog's reviewed document if SSM lacks it; the version to run and its content hash."""
    published = ensure_published(runbook_id)
    if not published.version:
        raise RuntimeError(f"SSM reported no version for {published.document_name}")
    return {"name": published.document_name, "version": str(published.version),
            "sha256": document_sha256(load_catalog().get(runbook_id).document)}


def supersede_older(plan: dict[str, Any], *, store: Any) -> list[str]:
    """Older requests for the same runbook and targets still waiting for approval are superseded by
    this one (resolved: they can no longer execute; their approval page says so when answered)."""
    from sqlalchemy import select, update

    if not plan["targets_executable"]:
        return []
    with store.engine.connect() as conn:
        rows = conn.execute(select(table.c.request_id, table.c.plan, table.c.run_id).where(
            table.c.runbook == plan["runbook"], table.c.status == "awaiting_approval",
            table.c.request_id != plan["request_id"])).all()
    older = [r.request_id for r in rows
             if sorted((r.plan or {}).get("targets_executable") or []) == plan["targets_executable"]]
    for old in older:
        with store.engine.begin() as conn:
            conn.execute(update(table).where(table.c.request_id == old, table.c.status == "awaiting_approval")
                         .values(status="superseded", outcome={"superseded_by": plan["request_id"]},
                                 updated_at=datetime.now(UTC)))
        store.audit(actor="aiops", action="superseded", subject=f"remediation:{old}", run_id=plan["run_id"],
                    detail={"superseded_by": plan["request_id"], "runbook": plan["runbook"]})
    return older


def _target_label(t: dict[str, Any]) -> str:
    name = (t.get("detail") or {}).get("name") or ""
    return f"{t['id']} ({name})" if name else str(t["id"])


def approval_subject(plan: dict[str, Any], round_no: int) -> str:
    """Names the resource(s) and the incident: what a person in Required Actions decides about."""
    targets = plan["targets"]
    shown = ", ".join(_target_label(t) for t in targets[:2]) + (f" +{len(targets) - 2}" if len(targets) > 2 else "")
    where = f" on {shown}" if targets else ""
    incident = f" for {plan['incident_id']}" if plan.get("incident_id") else ""
    rounds = f" — approval {round_no} of {plan['approval_rounds']}" if plan["approval_rounds"] > 1 else ""
    text = f"[{plan['risk']} risk] {plan['title']}{where}{incident}{rounds}"
    return re.sub(r"[\r\n]+", " ", text)[:250]


def plan_markdown(plan: dict[str, Any]) -> str:
    rows = "\n".join(
        f"| {c(t['id'])} | {e(t.get('detail', {}).get('name', ''))} | {e(t.get('state') or '')} | "
        f"{e(t['tags'].get('service', ''))} / {e(t['tags'].get('env', ''))} / {e(t['tags'].get('team', ''))} |"
        for t in plan["targets"]) or "| (no resource targets) | | | |"
    params = "\n".join(f"- {c(k)} = {c(v)}" for k, v in plan["parameters"].items())
    extra = "".join(f"\n> Extra approval required: {e(r)}" for r in plan["extra_approval_reasons"])
    incident = f"incident **{e(plan['incident_id'])}**" if plan.get("incident_id") else "no incident"
    timeout = plan.get("approval_timeout_minutes")
    return (f"## {e(plan['title'])}\n\n"
            f"**Plan hash** `{short(plan['plan_hash'])}` (sha256 `{plan['plan_hash']}`): the execution runs exactly "
            f"this plan or nothing.\n\n"
            f"**Runbook** {c(plan['runbook'])} (SSM {c(plan['document_name'])} version "
            f"{c(plan['document_version'])}, role {c(plan['assume_role'])}), risk **{e(plan['risk'])}**, "
            f"policy **{e(plan['approval'])}**{extra}\n\n"
            f"**Requested by** {e(plan['requested_by'])} ({e(plan['origin'])}, {incident}) at "
            f"{e(plan['planned_at'][:16].replace('T', ' '))} UTC: {e(plan['reason'] or 'no reason given')}"
            + (f" — note: {e(plan['note'])}" if plan.get("note") and plan["note"] != plan["requested_by"] else "")
            + f"\n\n**On timeout** ({e(timeout)} min without an answer) the request is rejected and nothing "
            f"changes. A newer request for the same runbook and targets supersedes this one.\n\n"
            f"### What will change\n{e(plan['changes'])}\n\n"
            f"### Targets ({plan['blast_radius']['targets']} of at most {plan['blast_radius']['limit']})\n"
            f"| id | name | state | service / env / team |\n|---|---|---|---|\n{rows}\n\n"
            f"### Parameters\n{params}\n\n### Rollback\n{e(plan['rollback'])}\n\n"
            f"### IAM permissions used\n{', '.join(c(p) for p in plan['permissions'])}\n")


def approvers_for(users: list[str], roles: list[str]) -> list[str]:
    """Named users plus the users holding the named roles (SimpleAuthManager's user:role config)."""
    out = list(dict.fromkeys(users))
    if roles:
        try:
            from airflow.configuration import conf

            configured = conf.get("core", "simple_auth_manager_users", fallback="") or ""
        except Exception:
            configured = ""
        for entry in configured.split(","):
            if ":" in entry:
                user, role = (x.strip() for x in entry.split(":", 1))
                if role in roles and user not in out:
                    out.append(user)
    return out


def approval_rounds(plan: dict[str, Any]) -> int:
    return int(plan.get("approval_rounds", 0))


def stored_plan(rid: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The plan as stored when it was shown for approval, and its request row; raises
    :class:`ApprovalNotVerified` when there is none or its content no longer matches its hash."""
    row = StateStore().get_request(rid)
    plan = dict((row or {}).get("plan") or {})
    if not row or not plan:
        raise ApprovalNotVerified(f"no stored plan for request {rid}")
    if not plan.get("plan_hash") or plan_hash(plan) != plan["plan_hash"]:
        raise ApprovalNotVerified(f"stored plan of {rid} does not match its hash (altered after planning)")
    try:
        RemediationPlan.model_validate(plan)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise ApprovalNotVerified(f"stored plan of {rid} is not a valid plan: {problems}") from exc
    return plan, row


def record_asked(plan: dict[str, Any], *, round_no: int, assigned: list[str], run_id: str) -> None:
    """An approval round is about to be shown: who may answer it, for which plan hash."""
    store = StateStore()
    row = store.get_request(plan["request_id"]) or {}
    approvals = [a for a in row.get("approvals") or [] if a.get("round") != round_no]
    approvals.append(Approval(round=round_no, status="asked", assigned=assigned, plan_hash=plan["plan_hash"],
                              asked_at=datetime.now(UTC).isoformat()).model_dump(mode="json"))
    store.upsert_request(plan["request_id"], approvals=sorted(approvals, key=lambda a: a["round"]))
    store.audit(actor="aiops", action="approval_asked", subject=f"remediation:{plan['request_id']}", run_id=run_id,
                detail={"round": round_no, "assigned": assigned, "plan_hash": plan["plan_hash"]})


def record_approval(plan: dict[str, Any], *, round_no: int, user: str | None, decision: str, run_id: str,
                    responded_at: str | None = None) -> None:
    """Mirror a HITL answer (as Airflow resumed the approval task with it) into the state store.

    The assigned users and plan hash come from what was recorded when the round was asked
    (:func:`record_asked`), not from the answer."""
    store = StateStore()
    row = store.get_request(plan["request_id"]) or {}
    asked: dict[str, Any] = next((a for a in row.get("approvals") or [] if a.get("round") == round_no), {})
    approvals = [a for a in row.get("approvals") or [] if a.get("round") != round_no]
    approvals.append(Approval(round=round_no, user=user, decision=decision, source="hitl",
                              assigned=asked.get("assigned") or [], plan_hash=asked.get("plan_hash"),
                              asked_at=asked.get("asked_at"), responded_at=responded_at).model_dump(mode="json"))
    store.upsert_request(plan["request_id"], approvals=sorted(approvals, key=lambda a: a["round"]))
    store.audit(actor=user or "timeout", action=f"approval_{decision.lower()}", subject=f"remediation:{plan['request_id']}",
                run_id=run_id, detail={"round": round_no, "plan_hash": asked.get("plan_hash")})


def authorise_execution(rid: str, *, run_id: str) -> dict[str, Any]:
    """Right before StartAutomationExecution: rebuild the SSM call from the stored plan and refuse
    unless every check passes again now. Returns ``document_name``, ``document_version``,
    ``parameters`` (with the executor's ``AutomationAssumeRole``) and ``tags``.

    Checks: the stored plan matches its hash; the request is not superseded / a dry run; the
    approvals verify (:func:`aiops.remediation.approvals.verify_approvals`); parameters and targets
    pass the guards against live AWS (a protected tag added while the approval waited refuses); the
    role is the one the runbook's metadata names; the pinned document version is the approved
    content. A refusal is recorded (status ``refused_at_execution``, reason in the audit trail).
    Both audit entries carry the change engine's record of the runbook's action
    (:func:`aiops.remediation.actions.change_record`)."""
    store = StateStore()
    plan: dict[str, Any] = {"request_id": rid, "runbook": "?"}
    try:
        plan, row = stored_plan(rid)
        if row["status"] == "superseded":
            raise ApprovalNotVerified(f"superseded by {(row.get('outcome') or {}).get('superseded_by')}")
        if plan.get("dry_run"):
            raise ApprovalNotVerified("a dry run never executes")
        approved = verify_approvals(plan, list(row.get("approvals") or []))
        runbook = load_catalog().get(plan["runbook"])
        params = validate_parameters(runbook, plan["parameters"])
        if params != plan["parameters"]:
            raise ApprovalNotVerified("parameters no longer validate to the approved values")
        kinds = {t["kind"] for t in plan["targets"]}
        live = [t for kind in sorted(kinds)
                for t in describe_targets(kind, [x["id"] for x in plan["targets"] if x["kind"] == kind])]
        if plan["targets"]:
            check_targets(runbook, live, plan["blast_radius"]["limit"])
        if sorted(f"{t.kind}:{t.id}" for t in live) != plan["targets_executable"]:
            raise ApprovalNotVerified("live targets differ from the approved plan's")
        role = resolve_assume_role(runbook.id, runbook.metadata.automation_role)
        if role != plan["assume_role"]:
            raise ApprovalNotVerified(f"automation role is now {role}, the plan approved {plan['assume_role']}")
        doc = aws.client("ssm").get_document(Name=plan["document_name"], DocumentVersion=plan["document_version"],
                                             DocumentFormat="YAML")
        if document_sha256(__import__("yaml").safe_load(doc["Content"])) != plan["document_sha256"]:
            raise ApprovalNotVerified(f"{plan['document_name']} version {plan['document_version']} is not the "
                                      "approved document content")
    except Exception as exc:
        reason = str(exc)
        store.upsert_request(rid, status="refused_at_execution", outcome={"error": reason,
                                                                         "plan_hash": plan.get("plan_hash")})
        act = get_action(f"runbook:{plan.get('runbook')}")
        record = change_record(act, ",".join(plan.get("targets_executable") or []), plan_hash=plan.get("plan_hash"),
                               approved_by=[], refused=reason) if act else {}
        store.audit(actor="aiops", action="refused_at_execution", subject=f"remediation:{rid}", run_id=run_id,
                    detail={**record, "error": reason, "plan_hash": plan.get("plan_hash"), "runbook": plan.get("runbook")})
        log.error("remediation %s refused at execution: %s", rid, reason)
        raise
    store.upsert_request(rid, status="executing")
    act = get_action(f"runbook:{runbook.id}")
    assert act is not None  # every catalog runbook is an action
    # a pre-approved runbook (no rounds) is approved by its reviewed metadata and a claimed, re-verified grant
    record = change_record(act, ",".join(plan["targets_executable"]), plan_hash=plan["plan_hash"],
                           approved_by=[a["user"] for a in approved] or [f"policy:runbook:{runbook.id}"])
    store.audit(actor="aiops", action="execution_authorised", subject=f"remediation:{rid}", run_id=run_id,
                detail={**record, "approvals": approved, "requested_by": plan["requested_by"],
                        "document": plan["document_name"], "document_version": plan["document_version"],
                        "assume_role": plan["assume_role"], "targets": plan["targets_executable"]})
    return {"document_name": plan["document_name"], "document_version": plan["document_version"],
            "parameters": {**plan["parameters"], ASSUME_ROLE_PARAMETER: plan["assume_role"]},
            "tags": {"aiops:request": rid, "aiops:plan": plan["plan_hash"][:12]},
            "plan_hash": plan["plan_hash"], "approved_by": [a["user"] for a in approved]}


def record_outcome(plan: dict[str, Any], *, status: str, run_id: str, execution: dict[str, Any] | None = None,
                   verification: dict[str, Any] | None = None, actor: str = "aiops") -> dict[str, Any]:
    store = StateStore()
    outcome = {"status": status, "execution": execution or {}, "verification": verification or {},
               "plan_hash": plan.get("plan_hash")}
    store.upsert_request(plan["request_id"], status=status, outcome=outcome,
                         execution_id=(execution or {}).get("execution_id"))
    store.audit(actor=actor, action=status, subject=f"remediation:{plan['request_id']}", run_id=run_id,
                detail=json.loads(json.dumps(outcome, default=str)))
    log.info("remediation %s (%s): %s", plan["request_id"], plan["runbook"], status)
    return outcome


def verify_remediation(plan: dict[str, Any], execution: dict[str, Any]) -> dict[str, Any]:
    """Check the targets reached what the runbook promises (its metadata's ``verify``).

    ``target_state: [stopped]`` re-describes every target and compares its state; a runbook without
    a resource-level check is verified by its own SSM assertions (the execution succeeded)."""
    runbook = load_catalog().get(plan["runbook"])
    check = runbook.metadata.verify
    wanted = list(check.target_state) if check else []
    if wanted and plan["targets"]:
        kind = plan["targets"][0]["kind"]
        now = describe_targets(kind, [t["id"] for t in plan["targets"]])
        bad = [f"{t.id} is {t.state}" for t in now if t.state not in wanted]
        result = {"checked": "target_state", "expected": wanted, "ok": not bad,
                  "observed": {t.id: t.state for t in now}}
        if bad:
            raise RuntimeError(f"verification failed: expected {wanted}; {', '.join(bad)}")
        return result
    return {"checked": "automation_assertions", "ok": execution.get("status") == "Success",
            "note": "the runbook's own assert/wait steps verified the change"}


def finalise(dag_run: Any, ti: Any) -> dict[str, Any]:
    """Decide the request's final status from the run and the state store (always runs, even after
    failures; never trusts XCom for the plan or the approvals)."""
    run_id = dag_run.run_id
    tasks = ["plan", "approve_1", "approve_2", "gate", "execute", "verify"]
    states = ti.get_task_states(dag_id=dag_run.dag_id, task_ids=tasks, run_ids=[run_id]).get(run_id, {})
    rid = request_id(dag_run.dag_id, run_id)
    row = StateStore().get_request(rid) or {}
    plan = row.get("plan") or {}
    if not plan:  # make_plan recorded why
        return {"status": row.get("status") or "rejected_by_guard", "states": states, "request_id": rid,
                "error": (row.get("outcome") or {}).get("error")}
    plan = {**plan, "request_id": rid}
    decisions = {a.get("decision") for a in row.get("approvals") or []}
    execution = ti.xcom_pull(task_ids="execute") or {}
    verification = ti.xcom_pull(task_ids="verify") or {}
    if row.get("status") == "superseded":
        status = "superseded"
    elif row.get("status") == "refused_at_execution":
        return {"status": "refused_at_execution", "states": states, "request_id": rid,
                "error": (row.get("outcome") or {}).get("error")}
    elif "Reject" in decisions:
        status = "rejected"
    elif "timeout" in decisions:
        status = "not_executed_timeout"
    elif plan.get("dry_run") and states.get("execute") == "skipped":
        status = "dry_run"
    elif states.get("execute") == "failed":
        status = "execution_failed"
        execution = _execution_summary(ti) or execution
    elif states.get("verify") == "failed":
        status = "verification_failed"
    elif states.get("verify") == "success":
        status = "succeeded"
    else:
        status = f"incomplete ({states})"
    return {**record_outcome(plan, status=status, run_id=run_id, execution=execution, verification=verification),
            "states": states, "request_id": rid}


def _execution_summary(ti: Any) -> dict[str, Any] | None:
    """Why an execution failed, from SSM itself (the failed task left no XCom)."""
    execution_id = ti.xcom_pull(task_ids="execute", key="automation_execution_id")
    if not execution_id:
        return None
    resp = aws.client("ssm").get_automation_execution(AutomationExecutionId=execution_id)
    return summarise(resp["AutomationExecution"])
