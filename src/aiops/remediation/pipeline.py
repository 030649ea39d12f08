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
from collections.abc import Callable
from dataclasses import asdict
from typing import Any

from aiops.core.settings import get_settings

log = logging.getLogger(__name__)

# Hooks that may demand extra approvals: fn(plan) -> reason or None. Other capabilities register
# here (SLO tracking: an exhausted error budget makes risky runbooks need one more approval).
APPROVAL_POLICIES: list[Callable[[dict[str, Any]], str | None]] = []
APPROVAL_ROUNDS = {"pre-approved": 0, "requires-approval": 1, "requires-two-approvals": 2}


def request_id(dag_id: str, run_id: str) -> str:
    return hashlib.sha1(f"{dag_id}/{run_id}".encode()).hexdigest()[:20]


def make_plan(conf: dict[str, Any], *, dag_id: str, run_id: str) -> dict[str, Any]:
    """The dry-run plan for a remediate request; raises GuardViolation / KeyError with clear text."""
    import aiops.slo.policy  # noqa: F401  (registers the error-budget policy)
    from aiops.core.state import StateStore
    from aiops.remediation.catalog import load_catalog
    from aiops.remediation.guards import check_targets, validate_parameters
    from aiops.remediation.targets import describe_targets

    if not conf.get("runbook"):
        raise ValueError("conf must name a 'runbook' (one of the catalog ids) and its 'parameters'")
    rid = request_id(dag_id, run_id)
    store = StateStore()
    requested_by = str(conf.get("requested_by") or "unknown")
    store.upsert_request(rid, run_id=run_id, runbook=str(conf["runbook"]), requested_by=requested_by,
                         reason=conf.get("reason"), incident_id=conf.get("incident_id"),
                         parameters=conf.get("parameters") or {}, status="requested")
    store.audit(actor=requested_by, action="requested", subject=f"remediation:{rid}", run_id=run_id,
                detail={"runbook": conf["runbook"], "parameters": conf.get("parameters") or {},
                        "reason": conf.get("reason")})
    try:
        runbook = load_catalog().get(str(conf["runbook"]))
        params = validate_parameters(runbook, dict(conf.get("parameters") or {}))
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
    except Exception as exc:
        store.upsert_request(rid, status="rejected_by_guard", outcome={"error": str(exc)})
        store.audit(actor="aiops", action="rejected_by_guard", subject=f"remediation:{rid}", run_id=run_id,
                    detail={"error": str(exc)})
        raise
    rounds = APPROVAL_ROUNDS[meta.approval]
    extra = [r for r in (hook({"runbook": runbook.id, "risk": meta.risk, "targets": [asdict(t) for t in targets]})
                         for hook in APPROVAL_POLICIES) if r]
    if extra and rounds < 2:
        rounds += 1
    plan = {
        "request_id": rid, "runbook": runbook.id, "title": meta.title, "document_name": runbook.document_name,
        "risk": meta.risk, "approval": meta.approval, "approval_rounds": rounds, "extra_approval_reasons": extra,
        "approvers": approvers_for(meta.approvers.users, meta.approvers.roles),
        "parameters": params, "targets": [asdict(t) for t in targets],
        "blast_radius": {"targets": len(targets), "limit": limit},
        "changes": runbook.render_changes(params), "permissions": list(meta.permissions),
        "rollback": meta.rollback, "requested_by": requested_by, "reason": conf.get("reason") or "",
        "incident_id": conf.get("incident_id"), "dry_run": bool(conf.get("dry_run", False)),
    }
    plan["markdown"] = plan_markdown(plan)
    store.upsert_request(rid, targets=plan["targets"], plan=plan, parameters=params,
                         status="planned" if rounds == 0 else "awaiting_approval")
    store.audit(actor="aiops", action="planned", subject=f"remediation:{rid}", run_id=run_id,
                detail={k: plan[k] for k in ("runbook", "targets", "approval_rounds", "blast_radius")})
    return plan


def plan_markdown(plan: dict[str, Any]) -> str:
    rows = "\n".join(
        f"| `{t['id']}` | {t.get('detail', {}).get('name', '')} | {t.get('state') or ''} | "
        f"{t['tags'].get('service', '')} / {t['tags'].get('env', '')} / {t['tags'].get('team', '')} |"
        for t in plan["targets"]) or "| (no resource targets) | | | |"
    params = "\n".join(f"- `{k}` = `{v}`" for k, v in plan["parameters"].items())
    extra = "".join(f"\n> Extra approval required: {r}" for r in plan["extra_approval_reasons"])
    return (f"## {plan['title']}\n\n**Runbook** `{plan['runbook']}` (SSM `{plan['document_name']}`), "
            f"risk **{plan['risk']}**, policy **{plan['approval']}**{extra}\n\n"
            f"**Requested by** {plan['requested_by']}: {plan['reason'] or 'no reason given'}\n\n"
            f"### What will change\n{plan['changes']}\n\n"
            f"### Targets ({plan['blast_radius']['targets']} of at most {plan['blast_radius']['limit']})\n"
            f"| id | name | state | service / env / team |\n|---|---|---|---|\n{rows}\n\n"
            f"### Parameters\n{params}\n\n### Rollback\n{plan['rollback']}\n\n"
            f"### IAM permissions used\n{', '.join(f'`{p}`' for p in plan['permissions'])}\n")


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


def record_approval(plan: dict[str, Any], *, round_no: int, user: str | None, decision: str, run_id: str) -> None:
    from aiops.core.state import StateStore

    store = StateStore()
    row = store.get_request(plan["request_id"]) or {}
    approvals = [a for a in row.get("approvals") or [] if a.get("round") != round_no]
    approvals.append({"round": round_no, "user": user, "decision": decision})
    store.upsert_request(plan["request_id"], approvals=approvals)
    store.audit(actor=user or "timeout", action=f"approval_{decision.lower()}", subject=f"remediation:{plan['request_id']}",
                run_id=run_id, detail={"round": round_no})


def record_outcome(plan: dict[str, Any], *, status: str, run_id: str, execution: dict[str, Any] | None = None,
                   verification: dict[str, Any] | None = None, actor: str = "aiops") -> dict[str, Any]:
    from aiops.core.state import StateStore

    store = StateStore()
    outcome = {"status": status, "execution": execution or {}, "verification": verification or {}}
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
    from aiops.remediation.catalog import load_catalog
    from aiops.remediation.targets import describe_targets

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
    """Decide the request's final status from the run (always runs, even after failures)."""
    from aiops.core.state import StateStore

    run_id = dag_run.run_id
    tasks = ["plan", "approve_1", "approve_2", "gate", "execute", "verify"]
    states = ti.get_task_states(dag_id=dag_run.dag_id, task_ids=tasks, run_ids=[run_id]).get(run_id, {})
    plan = ti.xcom_pull(task_ids="plan")
    if not plan:
        return {"status": "rejected_by_guard", "states": states}  # make_plan recorded why
    row = StateStore().get_request(plan["request_id"]) or {}
    decisions = {a.get("decision") for a in row.get("approvals") or []}
    execution = ti.xcom_pull(task_ids="execute") or {}
    verification = ti.xcom_pull(task_ids="verify") or {}
    if "Reject" in decisions:
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
            "states": states}


def _execution_summary(ti: Any) -> dict[str, Any] | None:
    """Why an execution failed, from SSM itself (the failed task left no XCom)."""
    from aiops.airflow.ssm_automation import summarise
    from aiops.core import aws

    execution_id = ti.xcom_pull(task_ids="execute", key="automation_execution_id")
    if not execution_id:
        return None
    resp = aws.client("ssm").get_automation_execution(AutomationExecutionId=execution_id)
    return summarise(resp["AutomationExecution"])
