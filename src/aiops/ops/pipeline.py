"""What the ``ops_*`` DAGs' tasks do, testable without Airflow: plan (collect + policies + guards,
stored and audited) and execute (the enforced changes, once each, recorded and audited).

Plans are keyed by the run's time ``at`` (its data interval end), never by the wall clock, so a
re-run of an interval plans the same changes and finds them done.

First starts never act: until a workflow is *armed* on the account (:data:`ARMED`, set once at
the end of its first run), its plan is marked ``first_start`` and its changes are planned,
reported and audited but not made (:func:`aiops.ops.plan.execute`,
:func:`aiops.ops.patching.run_install`). A manual run with conf ``act_now: true`` acts anyway.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import asdict, replace
from datetime import datetime
from typing import Any

from aiops.core.artifacts import ArtifactStore
from aiops.core.identity import current_account
from aiops.core.settings import get_settings
from aiops.core.state import StateStore, audit_log
from aiops.core.times import utc as as_utc
from aiops.ops import log_retention, patching, scheduling, snapshots
from aiops.ops.plan import Change, execute, finish_plan, store_plan, store_result
from aiops.ops.policy import load_policies

log = logging.getLogger(__name__)

TITLES = {
    "ops_snapshots": "EBS snapshot lifecycle",
    "ops_log_retention": "CloudWatch Logs retention",
    "ops_scheduling": "Off-hours scheduling and ASG capacity",
    "ops_patching": "Patching (AWS-RunPatchBaseline)",
}

#: When a workflow was armed on an account: the time of its first run that ran the policies as they
#: are (not forced dry-run, plan not refused), set at the end of that run (a state-store watermark
#: per account, like ``metrics_live_since``). Before it, the workflow's runs only plan: a first
#: start never changes the account.
ARMED = "{workflow}_armed"


def armed_since(workflow: str, account_id: str | None = None) -> datetime | None:
    """When ``workflow`` was armed on the account (:data:`ARMED`); None before its first run ended."""
    return StateStore().get_watermark(ARMED.format(workflow=workflow),
                                      account_id=current_account() if account_id is None else account_id)


def arm(plan: Mapping[str, Any], *, run_id: str | None) -> bool:
    """At the end of a run: arm the plan's workflow on the account, once (the run's time; audited
    ``ops.armed`` with how many changes the first start held back). A forced dry run or a refused
    plan arms nothing: neither ran the policies as they are. True when this call armed it."""
    if plan.get("forced_dry_run") or plan.get("refused"):
        return False
    workflow, store, account = plan["workflow"], StateStore(), current_account()
    name = ARMED.format(workflow=workflow)
    if store.get_watermark(name, account_id=account) is not None:
        return False
    store.set_watermark(name, as_utc(plan["at"]), run_id=run_id, account_id=account)
    held_back = plan["counts"]["enforce"] if plan.get("first_start") else 0
    store.audit(actor=workflow, action="ops.armed", subject=f"{workflow}/{plan['interval']}",
                detail={"account_id": account, "first_start": bool(plan.get("first_start")),
                        "held_back": held_back}, run_id=run_id)
    log.info("%s armed on account %s: the next run acts by policy (%d change(s) held back by this first start)",
             workflow, account, held_back)
    return True


def _force_dry_run(changes: list[Change]) -> list[Change]:
    return [replace(c, mode="dry-run") for c in changes]


def make_plan(workflow: str, at: datetime | str, *, start: datetime | str | None = None,
              conf: Mapping[str, Any] | None = None, run_id: str | None = None,
              store: bool = True) -> dict[str, Any]:
    """Collect, plan, guard, render; store ``ops/<workflow>/dt=<day>/plan.json``; audit the plan.

    ``conf``: ``dry_run`` (true: every change dry-run, whatever the policies say); ``act_now``
    (true: act even if the workflow is not armed on the account yet — a deliberate first start);
    for patching ``operation`` (``auto`` | ``scan``) and ``scan`` (false: no scan this run); for
    scheduling ``reconcile`` (true: bring every scheduled instance to its schedule's state now).

    A stored plan of a workflow not yet armed on the account (:func:`armed_since`) is marked
    ``first_start`` unless ``dry_run`` or ``act_now``: planned and reported, not made.
    """
    conf = dict(conf or {})
    settings = get_settings()
    at = as_utc(at)
    day = at.date().isoformat()
    extra: dict[str, Any] = {}
    findings: list[dict[str, Any]] = []
    if workflow == "ops_snapshots":
        policies = load_policies("snapshots")
        changes, skipped = snapshots.plan_snapshots(policies.policies, snapshots.collect(), at)
        errors, interval = policies.error_lines(), day
    elif workflow == "ops_log_retention":
        policies = load_policies("log_retention")
        changes, skipped, findings = log_retention.plan_retention(
            policies.policies, log_retention.collect(), default_days=settings.ops_log_retention_default_days,
            default_mode=settings.ops_log_retention_default_mode)
        errors, interval = policies.error_lines(), day
    elif workflow == "ops_scheduling":
        schedules, asg_schedules = load_policies("schedules"), load_policies("asg_schedules")
        begin = as_utc(start) if start is not None else at
        instances, groups = scheduling.collect(sorted({s.asg for s in asg_schedules.policies}))
        changes, skipped, findings = scheduling.plan_schedules(schedules.policies, asg_schedules.policies,
                                                               instances, groups, begin, at,
                                                               reconcile=bool(conf.get("reconcile")))
        errors = schedules.error_lines() + asg_schedules.error_lines()
        interval = at.strftime("%Y-%m-%dT%H:%M")
        extra["window"] = {"start": begin.isoformat(), "end": at.isoformat()}
    elif workflow == "ops_patching":
        policies = load_policies("patching")
        changes, skipped, extra = patching.plan_patching(
            policies.policies, patching.collect(policies.policies), at,
            default_batch_size=settings.ops_patch_batch_size, operation=str(conf.get("operation") or "auto"),
            scan=bool(conf.get("scan", True)))
        errors, interval = policies.error_lines(), at.strftime("%Y-%m-%dT%H:%M")
    else:
        raise ValueError(f"unknown workflow {workflow!r}")
    if conf.get("dry_run"):
        changes = _force_dry_run(changes)
        for install in extra.get("install", []):
            install["mode"] = "dry-run"
        if "needs_approval" in extra:
            extra["needs_approval"] = False
    act_now = bool(conf.get("act_now"))
    # a preview (store=False) shows the policies' own modes and reads no state
    first_start = store and not conf.get("dry_run") and not act_now and armed_since(workflow) is None
    if first_start and "needs_approval" in extra:
        extra["needs_approval"] = False  # nothing is installed on a first start: nobody is asked
    plan = finish_plan(workflow, interval, at, changes, skipped, findings=findings, errors=errors,
                       extra={**extra, "day": day, "forced_dry_run": bool(conf.get("dry_run")),
                              "first_start": first_start, "act_now": act_now},
                       title=TITLES[workflow])
    if not store:  # a look from the command line: no artifact, no audit entry
        return plan
    plan["plan_hash"] = ops_plan_hash(plan)
    plan["artifact"] = store_plan(plan, day)
    StateStore().audit(actor=workflow, action="ops.plan", subject=f"{workflow}/{interval}",
                       detail={"counts": plan["counts"], "refused": plan["refused"], "errors": plan["errors"],
                               "artifact": plan["artifact"], "plan_hash": plan["plan_hash"],
                               "first_start": first_start, "act_now": act_now}, run_id=run_id)
    log.info("%s", plan["markdown"])
    return plan


class OpsPlanRefused(RuntimeError):
    """An ops execute step refused to act: no stored plan for this run, a plan altered since it was
    planned, or a required approval that was not recorded."""


_HASH_EXCLUDED = ("artifact", "plan_hash", "scan_command")


def ops_plan_hash(plan: Mapping[str, Any]) -> str:
    """SHA-256 of the plan as stored (canonical JSON, bookkeeping keys excluded)."""
    import hashlib
    import json

    body = {k: v for k, v in plan.items() if k not in _HASH_EXCLUDED}
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":"), default=str).encode()).hexdigest()


def _run_audit(run_id: str, action: str, actor: str | None = None) -> list[dict[str, Any]]:
    from sqlalchemy import select

    store = StateStore()
    store.schema_version()  # migrated
    query = select(audit_log).where(audit_log.c.run_id == run_id, audit_log.c.action == action)
    if actor:
        query = query.where(audit_log.c.actor == actor)
    with store.engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(query.order_by(audit_log.c.id))]


def approved_plan(workflow: str, run_id: str) -> dict[str, Any]:
    """The plan this run stored (located and hash-checked through the state store's audit entry for
    the run, never through XCom). Raises :class:`OpsPlanRefused`."""
    entries = _run_audit(run_id, "ops.plan", actor=workflow)
    if not entries:
        raise OpsPlanRefused(f"{workflow}: no plan recorded for run {run_id}")
    detail = entries[-1]["detail"] or {}
    store = ArtifactStore()
    uri = str(detail.get("artifact") or "")
    prefix = store.uri()
    plan = store.get_json(uri[len(prefix):] if uri.startswith(prefix) else uri)
    if not isinstance(plan, dict) or ops_plan_hash(plan) != detail.get("plan_hash"):
        raise OpsPlanRefused(f"{workflow}: the stored plan of run {run_id} does not match the planned hash")
    return {**plan, "artifact": detail.get("artifact")}


def verify_patch_approval(plan: Mapping[str, Any], run_id: str, *, requester: str | None = None) -> dict[str, Any]:
    """The recorded HITL answer that approves this run's prod install, or :class:`OpsPlanRefused`.

    Needs an ``ops.patch_install.asked`` entry (assigned users, plan hash) and an answer mirrored by
    the approval operator from Airflow's stored response: Approve, by an assigned user other than
    the requester, for this plan's hash. A task marked success by hand records no answer."""
    asked = _run_audit(run_id, "ops.patch_install.asked")
    answers = [e for e in _run_audit(run_id, "ops.patch_install.approve")
               if (e.get("detail") or {}).get("source") == "hitl"]
    if not asked or not answers:
        raise OpsPlanRefused("prod install: no recorded approval (a task marked success by hand is not one)")
    assigned = set((asked[-1]["detail"] or {}).get("assigned") or [])
    answer = answers[-1]
    user, detail = answer["actor"], answer["detail"] or {}
    if user not in assigned:
        raise OpsPlanRefused(f"prod install: {user} was not an assigned approver")
    if requester and user == requester:
        raise OpsPlanRefused(f"prod install: the requester {user} cannot approve their own change")
    if detail.get("plan_hash") != plan.get("plan_hash"):
        raise OpsPlanRefused("prod install: the approval was for another plan")
    return {"user": user, "plan_hash": plan.get("plan_hash")}


def run_changes(plan: Mapping[str, Any], *, run_id: str | None) -> dict[str, Any]:
    """Execute the plan's enforced changes (none on a first start); store ``result.json``; arm the
    workflow on the account (:func:`arm`). Raises when a change failed (after recording: a retry
    makes only what is not done yet)."""
    workflow = plan["workflow"]
    outcome = execute(plan, run_id=run_id)
    summary = {k: len(v) for k, v in outcome.items() if isinstance(v, list)}
    result = {"workflow": workflow, "interval": plan["interval"], "summary": summary,
              "first_start": bool(plan.get("first_start")), **outcome}
    result["artifact"] = store_result(workflow, plan["day"], plan["interval"], result)
    log.info("%s %s: %s", workflow, plan["interval"], summary)
    arm(plan, run_id=run_id)
    if outcome["failed"]:
        raise RuntimeError(f"{len(outcome['failed'])} change(s) failed: "
                           + "; ".join(f"{c['action']} {c['resource_id']}: {c['error']}" for c in outcome["failed"]))
    return result


def change_dicts(changes: list[Change]) -> list[dict[str, Any]]:
    return [asdict(c) for c in changes]


def install_patches(plan: Mapping[str, Any], *, requires_approval: bool, approval: Mapping[str, Any] | None,
                    run_id: str | None) -> dict[str, Any]:
    """Install batch by batch (see :func:`aiops.ops.patching.run_install`); raises when a batch
    failed or left an instance unhealthy (the remaining batches were not started)."""
    approved, approved_by = False, None
    if run_id:
        plan = approved_plan(plan["workflow"], run_id)  # the stored, hash-checked plan, never the XCom
    if requires_approval and run_id and not plan.get("first_start"):  # a first start installs nothing
        # never the XCom answer: the recorded HITL response for this run's stored plan
        try:
            approved_by = verify_patch_approval(plan, run_id)["user"]
            approved = True
        except OpsPlanRefused as exc:
            log.warning("%s", exc)
    report = patching.run_install(dict(plan), requires_approval=requires_approval, approved=approved, run_id=run_id,
                                  approved_by=approved_by, command_wait_seconds=get_settings().ops_command_wait_seconds)
    name = "install-approved" if requires_approval else "install"
    store_result(plan["workflow"], plan["day"], plan["interval"] + f"-{name}", report)
    if report.get("failed"):
        raise RuntimeError("patching stopped: " + "; ".join(
            f"{p['policy']}: {p['status']}" for p in report["policies"] if p.get("status", "").startswith("stopped")))
    return report


def compliance_report(plan: Mapping[str, Any] | None, scan_command_id: str | None,
                      installs: list[Mapping[str, Any] | None], *, run_id: str | None) -> dict[str, Any]:
    """Patch compliance of every instance the run scanned or patched; stored next to the plan. The
    run's last step: it arms ``ops_patching`` on the account (:func:`arm`)."""
    if not plan:
        return {"rows": [], "markdown": "no plan"}
    commands: list[tuple[str, str]] = [(scan_command_id, "Scan")] if scan_command_id else []
    instance_ids = list(plan["scan"]["instance_ids"])
    for report in installs:
        for policy in (report or {}).get("policies", []):
            for batch in policy.get("batches", []):
                instance_ids += [i for i in batch["instances"] if i not in instance_ids]
                if batch.get("command_id"):
                    commands.append((batch["command_id"], "Install"))
    rows = patching.patch_compliance(instance_ids, commands) if instance_ids else []
    markdown = patching.render_compliance(rows)
    store = ArtifactStore()
    suffix = "" if plan["interval"] == plan["day"] else "-" + plan["interval"].replace(":", "")
    key = store.put_json(store.key("ops", plan["workflow"], plan["day"], f"compliance{suffix}.json"),
                         {"interval": plan["interval"], "rows": rows})
    non_compliant = [r["instance_id"] for r in rows if r.get("compliant") is False]
    StateStore().audit(actor=plan["workflow"], action="ops.patch_compliance", subject=f"ops_patching/{plan['interval']}",
                       detail={"instances": len(rows), "non_compliant": non_compliant, "artifact": key}, run_id=run_id)
    log.info("%s", markdown)
    arm(plan, run_id=run_id)
    return {"rows": rows, "markdown": markdown, "artifact": key, "non_compliant": non_compliant}
