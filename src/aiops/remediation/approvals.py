"""Who asked, who approved which plan, and the check at the point of change.

Three promises of the change path live here (see ``docs/change-path.md``):

* **Who asked is who triggered.** :func:`resolve_requester` takes the requester from the run
  itself — the triggering user of a manual run, or the named platform component for runs another
  DAG triggered (incidents, scheduled sweeps). The conf's ``requested_by`` is kept as a note only.
* **The approved plan is immutable.** :func:`plan_hash` is a SHA-256 over the plan's executable
  part (runbook, document + pinned version, parameters, the executor's role, targets, approval
  policy). The plan is stored in the state store with its hash when it is shown for approval; the
  approver sees the hash; every recorded answer names the hash it approved.
* **Approval is verified where the change happens.** :func:`verify_approvals` re-reads the answers
  mirrored from Airflow's HITL responses into the state store (written only by the approval
  operator when Airflow resumes it with a stored response) and refuses unless the policy's number
  of rounds was answered Approve, by assigned people, all distinct, none of them the requester, all
  for this plan hash. A task marked success by hand leaves no recorded answer: no approval.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from aiops.core.errors import AiopsError
from aiops.remediation.model import Approval

#: Platform components that trigger ``remediate`` from their own tasks, and the origin (pool) each
#: one's requests belong to. Anything else triggered by an operator is "scheduled".
PLATFORM_COMPONENTS: dict[str, str] = {
    "incident_response": "incident",
    "compliance_sweep": "scheduled",
    "cost_rightsizing": "scheduled",
}
ORIGINS = ("incident", "scheduled", "manual")

#: The plan keys whose values decide what reaches SSM (and who may approve it): the hash covers
#: exactly these, so a change to any of them is a different plan.
EXECUTABLE_KEYS = ("request_id", "runbook", "document_name", "document_version", "document_sha256",
                   "parameters", "assume_role", "targets_executable", "approval", "approval_rounds",
                   "approvers", "requested_by", "dry_run")


class ApprovalNotVerified(AiopsError):
    """Execution refused at the point of change: no valid approval / plan mismatch / guard failed."""


@dataclass(frozen=True)
class Requester:
    """Who asked (an Airflow user, or ``platform:<component>``), where the request came from
    (``incident`` | ``scheduled`` | ``manual``: picks the pool) and the conf's free-text note."""

    identity: str
    origin: str
    note: str = ""
    component: str | None = None


def _component(text: str) -> str | None:
    for name in PLATFORM_COMPONENTS:
        if re.search(rf"(^|[\s(]){re.escape(name)}($|[\s)])", text):
            return name
    return None


def resolve_requester(*, run_type: Any, triggering_user: str | None, conf: Mapping[str, Any]) -> Requester:
    """The requester of a remediate run, from the run (never from the conf).

    * ``manual`` (UI, REST, CLI, ``dag.test``): the triggering user; refused when Airflow names none.
    * ``operator_triggered`` (a platform DAG's ``TriggerDagRunOperator``; only tasks can create
      such runs): the user who triggered the parent chain when there is one, else the platform
      component named in the conf — ``platform:<component>``. The component picks the origin.
    * anything else (scheduled, asset-triggered...): ``platform:<dag>``-style, origin scheduled.
    """
    kind = str(getattr(run_type, "value", run_type) or "").lower()
    note = str(conf.get("requested_by") or "")
    reason = str(conf.get("reason") or "")
    if kind == "manual":
        user = (triggering_user or "").strip()
        if not user:
            raise ApprovalNotVerified("a manual run must name its triggering user (Airflow recorded none)")
        return Requester(identity=user, origin="manual", note=note)
    component = _component(note) or _component(reason)
    origin = PLATFORM_COMPONENTS.get(component or "", "scheduled")
    user = (triggering_user or "").strip()
    identity = user if user else f"platform:{component or 'unknown'}"
    return Requester(identity=identity, origin=origin, note=note, component=component)


def executable_part(plan: Mapping[str, Any]) -> dict[str, Any]:
    return {k: plan.get(k) for k in EXECUTABLE_KEYS}


def plan_hash(plan: Mapping[str, Any]) -> str:
    """SHA-256 of the plan's executable part, canonical JSON (sorted keys, no spaces)."""
    text = json.dumps(executable_part(plan), sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def short(hash_: str) -> str:
    return hash_[:12]


def verify_approvals(plan: Mapping[str, Any], approvals: list[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The approvals that authorise ``plan``, or :class:`ApprovalNotVerified` saying what is missing.

    ``approvals`` are the state store's mirror of the HITL answers (``source == "hitl"``). Each
    round 1..N of the plan's policy needs an entry answered ``Approve`` by a user that round
    assigned, for this plan's hash; the users are distinct and none is the requester.
    """
    needed = int(plan.get("approval_rounds") or 0)
    if needed == 0:
        return []
    try:
        approvals = [Approval.model_validate(a).model_dump() for a in approvals]
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise ApprovalNotVerified(f"a recorded approval is malformed ({problems})") from exc
    expected = plan_hash(plan)
    requester = str(plan.get("requested_by") or "")
    allowed = set(plan.get("approvers") or [])
    valid: list[dict[str, Any]] = []
    for round_no in range(1, needed + 1):
        entry = next((a for a in approvals if a.get("round") == round_no and a.get("source") == "hitl"
                      and a.get("decision") is not None), None)
        if entry is None:
            raise ApprovalNotVerified(f"approval round {round_no} of {needed} has no recorded answer "
                                      "(a task marked success by hand is not an approval)")
        user = str(entry.get("user") or "")
        if entry.get("decision") != "Approve":
            raise ApprovalNotVerified(f"approval round {round_no} was answered {entry.get('decision')!r}")
        if not user:
            raise ApprovalNotVerified(f"approval round {round_no} names no approver")
        if entry.get("plan_hash") != expected:
            raise ApprovalNotVerified(f"approval round {round_no} by {user} was for plan "
                                      f"{short(str(entry.get('plan_hash')))}, not {short(expected)}")
        assigned = set(entry.get("assigned") or [])
        if user not in assigned or user not in allowed:
            raise ApprovalNotVerified(f"approval round {round_no}: {user} is not an assigned approver")
        if user == requester:
            raise ApprovalNotVerified(f"approval round {round_no}: the requester {user} cannot approve "
                                      "their own change")
        if any(v["user"] == user for v in valid):
            raise ApprovalNotVerified(f"approval round {round_no}: {user} already approved round "
                                      f"{next(v['round'] for v in valid if v['user'] == user)}; "
                                      "approvals must come from different people")
        valid.append({"round": round_no, "user": user, "plan_hash": expected,
                      "responded_at": entry.get("responded_at")})
    return valid


def md_escape(value: object) -> str:
    """Text from AWS or a request (tag values, names, reasons) made inert in the approval page's
    Markdown: HTML escaped, Markdown metacharacters backslash-escaped (links, images, emphasis, code,
    tables, autolinks), line breaks flattened, length bounded."""
    text = re.sub(r"[\r\n\t]+", " ", str(value if value is not None else ""))
    if len(text) > 300:
        text = text[:300] + "..."
    text = re.sub(r"([\\`*_{}\[\]()!|~:#])", r"\\\1", text)
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def md_code(value: object) -> str:
    """A value shown as inline code: backticks cannot close the span, no line breaks."""
    text = re.sub(r"[\r\n\t]+", " ", str(value if value is not None else "")).replace("`", "'").replace("|", "\\|")
    return f"`{text[:300]}`"
