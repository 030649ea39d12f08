"""The change engine: make one planned :class:`~aiops.remediation.actions.Change`, or say why not.

:func:`execute_change` is what every direct change goes through (the ``ops_*`` workflows'
execute steps call it through :func:`aiops.ops.plan.execute`): resolve the action; skip a change
whose key is recorded done; check the approval it carries is of the action's kind; run the
action's live guard; run the handler; record the change (:mod:`aiops.remediation.records`) and
audit it with :func:`~aiops.remediation.actions.change_record`. Runbooks go through the
``remediate`` DAG instead (:func:`aiops.remediation.pipeline.authorise_execution`), which writes
the same record.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from aiops.core.state import StateStore
from aiops.remediation import records
from aiops.remediation.actions import Action, Change, change_record, get_action

log = logging.getLogger(__name__)


def legacy_key(change: Change) -> str:
    """The key the same change had before actions were qualified by service (``delete_snapshot``,
    now ``ec2.delete_snapshot``): a re-run of an interval done before the upgrade finds it done."""
    bare = change.action.split(".", 1)[-1]
    return change.key.replace(f"/{change.action}/", f"/{bare}/", 1) if bare != change.action else change.key


def approval_problem(act: Action, change: Change, approved_by: Sequence[str]) -> str | None:
    """Why ``approved_by`` does not approve ``change`` (None: it does). A ``human`` change needs a
    person (an entry not starting ``policy:``); any change needs someone or something named."""
    if not approved_by:
        return "no approval recorded"
    if act.needs_human(change) and all(a.startswith("policy:") for a in approved_by):
        return f"{act.name} needs a verified human approval, not {', '.join(approved_by)}"
    return None


def audit(act: Action, change: Change, *, workflow: str, plan_hash: str | None, approved_by: Sequence[str],
          run_id: str | None, resource: str | None = None, **outcome: Any) -> None:
    """One audit entry in the engine's shape (``<action>``, ``<action>.failed`` or
    ``<action>.refused``; subject the resource; actor the workflow)."""
    suffix = ".failed" if "error" in outcome else ".refused" if "refused" in outcome else ""
    detail = change_record(act, resource or change.resource_id, plan_hash=plan_hash, approved_by=approved_by,
                           **outcome)
    detail.update({"workflow": workflow, "policy": change.policy, "params": change.params, "reason": change.reason})
    StateStore().audit(actor=workflow, action=act.name + suffix, subject=resource or change.resource_id,
                       detail=detail, run_id=run_id)


def refuse(act: Action, change: Change, reason: str, *, workflow: str, plan_hash: str | None,
           approved_by: Sequence[str], run_id: str | None) -> dict[str, Any]:
    log.warning("%s %s refused: %s", change.action, change.resource_id, reason)
    records.record(change, workflow=workflow, status="refused", detail={"refused": reason}, run_id=run_id)
    audit(act, change, workflow=workflow, plan_hash=plan_hash, approved_by=approved_by, run_id=run_id,
          refused=reason)
    return {"status": "refused", "reason": reason}


def execute_change(change: Change, *, workflow: str, plan_hash: str | None, approved_by: Sequence[str],
                   run_id: str | None) -> dict[str, Any]:
    """``{"status": "done", "result"}`` | ``{"status": "already_done"}`` |
    ``{"status": "refused", "reason"}`` | ``{"status": "failed", "error"}``. Nothing is called on
    AWS for a refused change; a handler's exception is recorded, audited and returned."""
    act = get_action(change.action)
    if act is None or act.run is None:
        reason = (f"unknown action {change.action!r}" if act is None
                  else f"{change.action} runs in its Airflow operator, not the engine")
        log.error("%s %s refused: %s", change.action, change.resource_id, reason)
        records.record(change, workflow=workflow, status="refused", detail={"refused": reason}, run_id=run_id)

        StateStore().audit(actor=workflow, action="change.refused", subject=change.resource_id,
                           detail={"action": change.action, "resource": change.resource_id, "plan_hash": plan_hash,
                                   "approved_by": list(approved_by), "refused": reason}, run_id=run_id)
        return {"status": "refused", "reason": reason}
    if records.is_done(change.key) or records.is_done(legacy_key(change)):
        return {"status": "already_done"}
    refusal = approval_problem(act, change, approved_by) or act.guard(change)
    if refusal:
        return refuse(act, change, refusal, workflow=workflow, plan_hash=plan_hash, approved_by=approved_by,
                      run_id=run_id)
    try:
        result = act.run(change)
    except Exception as exc:  # one failed change is reported; the caller's other changes still run
        log.exception("%s %s failed", change.action, change.resource_id)
        error = f"{type(exc).__name__}: {exc}"
        records.record(change, workflow=workflow, status="failed", detail={"error": error}, run_id=run_id)
        audit(act, change, workflow=workflow, plan_hash=plan_hash, approved_by=approved_by, run_id=run_id,
              error=error)
        return {"status": "failed", "error": error}
    records.record(change, workflow=workflow, status="done", detail=result, run_id=run_id)
    audit(act, change, workflow=workflow, plan_hash=plan_hash, approved_by=approved_by, run_id=run_id, result=result)
    return {"status": "done", "result": result}
