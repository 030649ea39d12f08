"""The shape every routine-operations workflow shares: a plan of changes, guards, idempotent
execution with records, and the readable Markdown the operator sees.

A workflow's ``plan`` step turns collected records + policies into :class:`Change` and
:class:`Skip` items (pure functions in its module), then :func:`finish_plan` applies the shared
guards — protected resources never appear as changes (they become skips upstream), and a plan
with more enforced changes than ``settings.ops_max_changes_per_run`` is refused whole — and
renders the Markdown. :func:`execute` hands each enforced change to the change engine
(:func:`aiops.remediation.engine.execute_change`): approved by its enforce-mode policy, guarded
against live AWS, made once (a change whose key is recorded done — a retry, a re-run of the same
interval — is not made again), recorded and audited. A ``Change.action`` names a registered
action (:mod:`aiops.remediation.actions`).

A plan marked ``first_start`` (the workflow's first run on the account, see
:func:`aiops.ops.pipeline.make_plan`) is planned, rendered and stored as any other, but
:func:`execute` — like :func:`aiops.ops.patching.run_install` for installs — makes none of its
changes: each is reported :data:`FIRST_START` ("first starts never act").
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from aiops.core.artifacts import ArtifactStore
from aiops.core.settings import get_settings
from aiops.remediation.actions import Change
from aiops.remediation.engine import execute_change
from aiops.remediation.guards import TargetInfo

__all__ = ["FIRST_START", "KEEP_TAG", "Change", "Skip", "change_key", "execute", "finish_plan", "is_protected",
           "tag_dict"]

log = logging.getLogger(__name__)

KEEP_TAG = "aiops:keep"
#: How an enforced change of a first-start plan is reported: planned, not made.
FIRST_START = "first start: planned, not made — acts from the next scheduled run"


def is_protected(tags: Mapping[str, str]) -> bool:
    """``aiops:protected=true`` — the same test the runbook guards use."""
    return TargetInfo(id="", kind="", tags=tags, exists=True).protected


def tag_dict(tags: Iterable[Mapping[str, str]] | None) -> dict[str, str]:
    """AWS ``[{"Key": k, "Value": v}]`` (any key case) -> ``{k: v}``."""
    out: dict[str, str] = {}
    for tag in tags or []:
        key = tag.get("Key", tag.get("key"))
        if key is not None:
            out[str(key)] = str(tag.get("Value", tag.get("value", "")))
    return out


@dataclass(frozen=True)
class Skip:
    """A resource a policy selected but the plan will not touch, and why (protected, in use by an
    AMI, tagged keep, prod, already compliant...)."""

    resource_id: str
    policy: str
    reason: str


def change_key(workflow: str, interval: str, action: str, resource_id: str) -> str:
    return f"{workflow}/{interval}/{action}/{resource_id}"


def finish_plan(workflow: str, interval: str, at: datetime, changes: list[Change], skipped: list[Skip], *,
                findings: list[dict[str, Any]] | None = None, errors: list[str] | None = None,
                max_changes: int | None = None, extra: dict[str, Any] | None = None,
                title: str = "") -> dict[str, Any]:
    """The plan as a JSON-able dict (XCom, artifact), guarded and with its Markdown."""
    limit = max_changes if max_changes is not None else get_settings().ops_max_changes_per_run
    changes = [c if c.key else Change(**{**asdict(c), "key": change_key(workflow, interval, c.action, c.resource_id)})
               for c in changes]
    enforced = [c for c in changes if c.enforced]
    refused = None
    if len(enforced) > limit:
        refused = (f"{len(enforced)} enforced changes exceed the per-run limit of {limit} "
                   "(AIOPS_OPS_MAX_CHANGES_PER_RUN); nothing will be changed")
    plan = {
        "workflow": workflow,
        "interval": interval,
        "at": at.astimezone(UTC).isoformat(),
        "title": title or workflow,
        "changes": [asdict(c) for c in changes],
        "skipped": [asdict(s) for s in skipped],
        "findings": findings or [],
        "errors": errors or [],
        "limit": limit,
        "refused": refused,
        "counts": {"enforce": len(enforced), "dry_run": len(changes) - len(enforced), "skipped": len(skipped)},
        **(extra or {}),
    }
    plan["markdown"] = render_markdown(plan)
    return plan


def _cell(value: object) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")


def render_markdown(plan: Mapping[str, Any]) -> str:
    lines = [f"## {plan['title']} — plan for {plan['interval']}", ""]
    counts = plan["counts"]
    first_start = bool(plan.get("first_start"))
    to_make = "planned, not made (first start)" if first_start else "to make"
    lines.append(f"**{counts['enforce']}** change(s) {to_make}, **{counts['dry_run']}** dry-run only, "
                 f"**{counts['skipped']}** skipped (limit {plan['limit']} per run).")
    if first_start:
        lines += ["", "> **First start:** this workflow has not run on this account before, so this run only "
                      f"plans and reports — every `enforce` change below is *{FIRST_START}*. "
                      'A manual run with `{"act_now": true}` acts on the first run deliberately.']
    if plan.get("refused"):
        lines += ["", f"> **Refused:** {plan['refused']}"]
    if plan["changes"]:
        lines += ["", "| mode | action | resource | policy | why | parameters |", "| --- | --- | --- | --- | --- | --- |"]
        for c in plan["changes"]:
            params = ", ".join(f"{k}={v}" for k, v in c["params"].items() if k not in {"tags"})
            mode = "enforce (first start: not made)" if first_start and c["mode"] == "enforce" else c["mode"]
            lines.append(f"| {mode} | {c['action']} | {_cell(c['resource_id'])} | {c['policy']} | "
                         f"{_cell(c['reason'])} | {_cell(params)} |")
    if plan["skipped"]:
        lines += ["", "**Not touched:**", ""]
        lines += [f"- `{_cell(s['resource_id'])}` ({s['policy']}): {_cell(s['reason'])}" for s in plan["skipped"]]
    if plan["findings"]:
        lines += ["", "**Findings:**", ""]
        lines += [f"- {_cell(f.get('message', f))}" for f in plan["findings"]]
    if plan["errors"]:
        lines += ["", "**Policy errors (those policies were not applied):**", ""]
        lines += [f"- {_cell(e)}" for e in plan["errors"]]
    return "\n".join(lines) + "\n"


def store_plan(plan: Mapping[str, Any], day: str) -> str:
    """Write ``ops/<workflow>/dt=<day>/plan.json`` (a re-run of the interval overwrites it)."""
    store = ArtifactStore()
    name = "plan.json" if plan["interval"] == day else f"plan-{plan['interval'].replace(':', '')}.json"
    return store.put_json(store.key("ops", plan["workflow"], day, name), dict(plan))


def store_result(workflow: str, day: str, interval: str, result: Mapping[str, Any]) -> str:
    store = ArtifactStore()
    name = "result.json" if interval == day else f"result-{interval.replace(':', '')}.json"
    return store.put_json(store.key("ops", workflow, day, name), dict(result))


def execute(plan: Mapping[str, Any], *, run_id: str | None) -> dict[str, Any]:
    """Make the plan's enforced changes through the change engine, each once.

    Returns ``{"done": [...], "already_done": [...], "failed": [...], "dry_run": [...],
    "first_start": [...]}`` (lists of change dicts, with ``result`` or ``error``; a change the
    engine refused — unknown action, live guard — is in ``failed`` with ``refused``). A failing
    change does not stop the others (each is independent); the caller decides whether failures
    fail the task. A ``first_start`` plan's enforced changes are all in ``first_start`` (with
    ``note``): nothing reaches the change engine.
    """
    workflow = plan["workflow"]
    outcome: dict[str, list[dict[str, Any]]] = {"done": [], "already_done": [], "failed": [], "dry_run": [],
                                                "first_start": []}
    if plan.get("refused"):
        log.warning("Plan refused: %s", plan["refused"])
        return {**outcome, "refused": plan["refused"]}
    changes = [Change(**c) for c in plan["changes"]]
    enforced = [c for c in changes if c.enforced]
    outcome["dry_run"] = [asdict(c) for c in changes if not c.enforced]
    if plan.get("first_start"):  # the workflow's first run on the account: report, never act
        outcome["first_start"] = [{**asdict(c), "note": FIRST_START} for c in enforced]
        for change in enforced:
            log.info("%s %s: %s", change.action, change.resource_id, FIRST_START)
        return outcome
    for i, change in enumerate(enforced, 1):
        # an ops change is approved by the enforce-mode policy that planned it (include/ops, reviewed)
        done = execute_change(change, workflow=workflow, plan_hash=plan.get("plan_hash"),
                              approved_by=[f"policy:{change.policy}"], run_id=run_id)
        status = done["status"]
        log.info("[%d/%d] %s %s: %s %s", i, len(enforced), change.action, change.resource_id, status,
                 done.get("result") or done.get("reason") or done.get("error") or "")
        if status == "done":
            outcome["done"].append({**asdict(change), "result": done["result"]})
        elif status == "already_done":
            outcome["already_done"].append(asdict(change))
        elif status == "refused":
            outcome["failed"].append({**asdict(change), "error": f"refused: {done['reason']}",
                                      "refused": done["reason"]})
        else:
            outcome["failed"].append({**asdict(change), "error": done["error"]})
    return outcome


def now_utc() -> datetime:
    """Only for records' timestamps (never inside planning: plans use the run's interval)."""
    return datetime.now(UTC)
