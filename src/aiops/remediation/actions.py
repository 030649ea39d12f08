"""The change engine's actions: every way the platform changes an AWS account, in one registry.

An :class:`Action` is one kind of write (Cloud Custodian's actions are the model): its name, how it
runs (``kind``), what it acts on, the executor IAM actions the call needs, how a change of this kind
is approved, whether it destroys something, the live guard run right before the write and the
handler that makes it. Direct API calls register with :func:`action` in the module that makes
them (``aiops.ops.snapshots`` ...); every runbook in ``include/runbooks`` is an action too
(``runbook:<id>``, derived from its reviewed metadata). :func:`actions` lists them all.

A :class:`Change` is one planned use of an action on one resource; :mod:`aiops.remediation.engine`
executes it (guard, run, record, audit).
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

from aiops.remediation.catalog import load_catalog
from aiops.remediation.guards import PROTECTED_TAG, TargetInfo
from aiops.remediation.targets import describe_targets

Kind = Literal["api", "ssm-automation", "ssm-command"]
#: How a change of this kind is approved:
#:
#: * ``policy`` — an enforce-mode policy in ``include/`` (``include/ops/*.yaml``, or a runbook's
#:   ``approval: pre-approved`` metadata), reviewed as configuration, approves every change it
#:   plans; the audit record names it (``approved_by: ["policy:<policy id>"]``).
#: * ``human`` — every change needs a verified HITL answer (recorded by the approval operator,
#:   checked where the change happens); the audit record names the approvers.
#: * ``human-for-prod`` — ``human`` when the change's plan marks it ``requires_approval`` (a prod
#:   target or a policy with ``approval: required``), ``policy`` otherwise.
Approval = Literal["policy", "human", "human-for-prod"]

#: Modules that register direct-API and SSM Run Command actions (imported by :func:`actions`;
#: ``tests/unit/test_change_engine.py`` fails when a module uses ``@action`` and is missing here).
#: Named, not imported, so this layer does not depend on the capabilities that register into it.
ACTION_MODULES: tuple[str, ...] = (
    "aiops.ops.log_retention",
    "aiops.ops.patching",
    "aiops.ops.scheduling",
    "aiops.ops.snapshots",
)

_NAME = re.compile(r"^(runbook:[a-z0-9]+(-[a-z0-9]+)*|[a-z0-9-]+\.[a-z][a-z0-9_]*)$")
_PERMISSION = re.compile(r"^[a-z0-9-]+:[A-Z][A-Za-z0-9]+$")
_DESTRUCTIVE_VERBS = ("Delete", "Release", "Revoke", "Terminate", "Deregister", "Detach", "Disassociate")


@dataclass(frozen=True)
class Change:
    """One change a plan wants to make: an action on one resource. ``key`` makes it idempotent:
    ``<workflow>/<interval>/<action>/<resource>``; the engine makes a change whose key is recorded
    done only once."""

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


#: Refusal reason for a change, or None when it may go ahead.
Guard = Callable[[Change], "str | None"]
#: An action-specific check on the live target (already known to exist and not be protected).
TargetCheck = Callable[[TargetInfo, Change], "str | None"]
Handler = Callable[[Change], dict[str, Any]]


@dataclass(frozen=True)
class Action:
    """One kind of AWS write.

    ``permissions``: the executor's IAM actions the write needs (for a runbook: its automation
    role's). ``guard``: run right before the write against live AWS; returns why the change must
    not happen (the target is gone or tagged ``aiops:protected=true``, or an action-specific check
    fails), or None. ``run``: the handler (``None`` for actions an Airflow operator runs: runbooks
    through ``ApprovedRunbookAutomationOperator`` in the ``remediate`` DAG, the patch scan through
    ``SsmRunCommandOperator``). ``source``: the module (or runbook metadata file) that declares it.
    """

    name: str
    kind: Kind
    resource_type: str
    permissions: tuple[str, ...]
    approval: Approval
    destructive: bool
    guard: Guard
    run: Handler | None
    source: str
    description: str = ""

    def needs_human(self, change: Change) -> bool:
        return self.approval == "human" or (self.approval == "human-for-prod"
                                            and bool(change.params.get("requires_approval")))


_REGISTRY: dict[str, Action] = {}


def live_guard(resource_type: str, *checks: TargetCheck) -> Guard:
    """The guard every action shares: describe the target now (the same resolvers the runbook
    guards use, :mod:`aiops.remediation.targets`) and refuse when it is gone or protected, then
    run ``checks``. Fails closed: a target that cannot be read is refused."""

    def guard(change: Change) -> str | None:
        try:
            [target] = describe_targets(resource_type, [change.resource_id])
        except Exception as exc:  # AccessDenied, throttling...: never act on what could not be checked
            return f"could not check {change.resource_id} ({type(exc).__name__}: {exc})"
        if target.gone:
            return f"{change.resource_id} no longer exists ({target.state or 'not found'})"
        if target.protected:
            return f"{change.resource_id} is tagged {PROTECTED_TAG}=true"
        for check in checks:
            reason = check(target, change)
            if reason:
                return reason
        return None

    return guard


def _validated(name: str, kind: str, permissions: Iterable[str]) -> tuple[str, ...]:
    if not _NAME.match(name):
        raise ValueError(f"action name {name!r}: expected 'service.verb_noun' or 'runbook:<id>'")
    if kind not in ("api", "ssm-automation", "ssm-command"):
        raise ValueError(f"action {name}: unknown kind {kind!r}")
    perms = tuple(permissions)
    bad = [p for p in perms if not _PERMISSION.match(p)]
    if not perms or bad:
        raise ValueError(f"action {name}: permissions must be 'service:Action' strings, got {bad or 'none'}")
    return perms


def _register(act: Action) -> None:
    if act.name in _REGISTRY:
        raise ValueError(f"action {act.name!r} registered twice ({_REGISTRY[act.name].source}, {act.source})")
    _REGISTRY[act.name] = act


def action(name: str, *, kind: Kind = "api", resource_type: str, permissions: Iterable[str],
           approval: Approval = "policy", destructive: bool,
           checks: Iterable[TargetCheck] = ()) -> Callable[[Handler], Handler]:
    """Register the decorated handler as the action ``name`` (``<service>.<verb_noun>``), guarded
    by :func:`live_guard` on ``resource_type`` with ``checks``. A name registered twice, a
    malformed name or permission fails at import."""
    perms = _validated(name, kind, permissions)

    def register(fn: Handler) -> Handler:
        _register(Action(name=name, kind=kind, resource_type=resource_type, permissions=perms, approval=approval,
                         destructive=destructive, guard=live_guard(resource_type, *checks), run=fn,
                         source=fn.__module__, description=(fn.__doc__ or "").strip().split("\n\n")[0]))
        return fn

    return register


def operator_action(name: str, *, kind: Kind, resource_type: str, permissions: Iterable[str],
                    approval: Approval, destructive: bool, source: str, description: str) -> Action:
    """Register a write an Airflow operator sends (no handler: the engine never calls it)."""
    act = Action(name=name, kind=kind, resource_type=resource_type, permissions=_validated(name, kind, permissions),
                 approval=approval, destructive=destructive, guard=live_guard(resource_type), run=None,
                 source=source, description=description)
    _register(act)
    return act


def runbook_actions() -> dict[str, Action]:
    """One ``ssm-automation`` action per runbook of the catalog: permissions from its metadata,
    ``human`` approval unless the metadata says ``pre-approved``, destructive when its permissions
    delete, release, revoke or terminate something."""
    out: dict[str, Action] = {}
    for runbook in load_catalog():
        meta = runbook.metadata
        name = f"runbook:{runbook.id}"
        kind = runbook.target_kind or ""
        out[name] = Action(
            name=name, kind="ssm-automation", resource_type=kind,
            permissions=_validated(name, "ssm-automation", sorted(set(meta.permissions))),
            approval="policy" if meta.approval == "pre-approved" else "human",
            destructive=any(p.split(":", 1)[1].startswith(_DESTRUCTIVE_VERBS) for p in meta.permissions),
            guard=live_guard(kind), run=None, source=str(runbook.metadata_path), description=meta.title)
    return out


def _discover() -> None:
    for module in ACTION_MODULES:
        importlib.import_module(module)


def actions() -> dict[str, Action]:
    """Every action, by name: the registered direct-API and Run Command actions, then the runbooks."""
    _discover()
    return {**dict(sorted(_REGISTRY.items())), **runbook_actions()}


def get_action(name: str) -> Action | None:
    if name.startswith("runbook:"):
        return runbook_actions().get(name)
    if name not in _REGISTRY:
        _discover()
    return _REGISTRY.get(name)


def change_record(act: Action, resource: str, *, plan_hash: str | None, approved_by: Iterable[str],
                  **outcome: Any) -> dict[str, Any]:
    """The audit record every action writes (ops changes, patch installs, runbook executions):
    ``{action, kind, resource, plan_hash, approved_by, permissions}`` plus the outcome
    (``result`` | ``error`` | ``refused``)."""
    return {"action": act.name, "kind": act.kind, "resource": resource, "plan_hash": plan_hash,
            "approved_by": list(approved_by), "permissions": list(act.permissions), **outcome}
