"""The shape every routine-operations workflow shares: a plan of changes, guards, idempotent
execution with records, and the readable Markdown the operator sees.

A workflow's ``plan`` step turns collected records + policies into :class:`Change` and
:class:`Skip` items (pure functions in its module), then :func:`finish_plan` applies the shared
guards — protected resources never appear as changes (they become skips upstream), and a plan
with more enforced changes than ``settings.ops_max_changes_per_run`` is refused whole — and
renders the Markdown. :func:`execute` runs the enforced changes once each: a change whose key is
already recorded as done (a retry, a re-run of the same interval) is not made again.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiops.remediation.guards import TargetInfo

log = logging.getLogger(__name__)

KEEP_TAG = "aiops:keep"


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
class Change:
    """One change a workflow wants to make. ``key`` makes it idempotent: ``<workflow>/<interval>/
    <action>/<resource>``; the executor makes a change whose key is recorded done only once."""

    action: str
    resource_id: str
    policy: str
    mode: str  # dry-run | enforce
    reason: str
    params: dict[str, Any] = field(default_factory=dict)
    key: str = ""

    @property
    def enforced(self) -> bool:
        return self.mode == "enforce"


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
    from aiops.core.settings import get_settings

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
    lines.append(f"**{counts['enforce']}** change(s) to make, **{counts['dry_run']}** dry-run only, "
                 f"**{counts['skipped']}** skipped (limit {plan['limit']} per run).")
    if plan.get("refused"):
        lines += ["", f"> **Refused:** {plan['refused']}"]
    if plan["changes"]:
        lines += ["", "| mode | action | resource | policy | why | parameters |", "| --- | --- | --- | --- | --- | --- |"]
        for c in plan["changes"]:
            params = ", ".join(f"{k}={v}" for k, v in c["params"].items() if k not in {"tags"})
            lines.append(f"| {c['mode']} | {c['action']} | {_cell(c['resource_id'])} | {c['policy']} | "
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
    from aiops.core.artifacts import ArtifactStore

    store = ArtifactStore()
    name = "plan.json" if plan["interval"] == day else f"plan-{plan['interval'].replace(':', '')}.json"
    return store.put_json(store.key("ops", plan["workflow"], day, name), dict(plan))


def store_result(workflow: str, day: str, interval: str, result: Mapping[str, Any]) -> str:
    from aiops.core.artifacts import ArtifactStore

    store = ArtifactStore()
    name = "result.json" if interval == day else f"result-{interval.replace(':', '')}.json"
    return store.put_json(store.key("ops", workflow, day, name), dict(result))


Handler = Callable[[Change], dict[str, Any]]


def execute(plan: Mapping[str, Any], handlers: Mapping[str, Handler], *, run_id: str | None,
            actor: str | None = None) -> dict[str, Any]:
    """Make the plan's enforced changes, each once; record and audit each one.

    Returns ``{"done": [...], "already_done": [...], "failed": [...], "dry_run": [...]}`` (lists of
    change dicts, with ``result`` or ``error``). A failing change does not stop the others (each is
    independent); the caller decides whether failures fail the task.
    """
    from aiops.core.state import StateStore
    from aiops.ops import records

    workflow = plan["workflow"]
    actor = actor or workflow
    outcome: dict[str, list[dict[str, Any]]] = {"done": [], "already_done": [], "failed": [], "dry_run": []}
    if plan.get("refused"):
        log.warning("Plan refused: %s", plan["refused"])
        return {**outcome, "refused": plan["refused"]}
    store = StateStore()
    changes = [Change(**c) for c in plan["changes"]]
    enforced = [c for c in changes if c.enforced]
    outcome["dry_run"] = [asdict(c) for c in changes if not c.enforced]
    for i, change in enumerate(enforced, 1):
        if records.is_done(change.key):
            outcome["already_done"].append(asdict(change))
            log.info("[%d/%d] %s %s: already done (key %s)", i, len(enforced), change.action,
                     change.resource_id, change.key)
            continue
        try:
            result = handlers[change.action](change)
        except Exception as exc:  # one failed change is reported; the others still run
            log.exception("[%d/%d] %s %s failed", i, len(enforced), change.action, change.resource_id)
            error = f"{type(exc).__name__}: {exc}"
            records.record(change, workflow=workflow, status="failed", detail={"error": error}, run_id=run_id)
            store.audit(actor=actor, action=f"ops.{change.action}.failed", subject=change.resource_id,
                        detail={"policy": change.policy, "params": change.params, "error": error}, run_id=run_id)
            outcome["failed"].append({**asdict(change), "error": error})
            continue
        records.record(change, workflow=workflow, status="done", detail=result, run_id=run_id)
        store.audit(actor=actor, action=f"ops.{change.action}", subject=change.resource_id,
                    detail={"policy": change.policy, "params": change.params, "reason": change.reason,
                            "result": result}, run_id=run_id)
        outcome["done"].append({**asdict(change), "result": result})
        log.info("[%d/%d] %s %s: done %s", i, len(enforced), change.action, change.resource_id, result)
    return outcome


def now_utc() -> datetime:
    """Only for records' timestamps (never inside planning: plans use the run's interval)."""
    return datetime.now(UTC)
