"""Patching with SSM Run Command ``AWS-RunPatchBaseline``.

* **Scan** (``Operation=Scan``, changes nothing) on every run, over every instance a patch policy
  selects (``include/ops``, ``patching:``), in one command.
* **Install** (``Operation=Install``) only while the policy's maintenance window is open at the
  run's time, batch by batch (``batch_size``): after each batch the command's invocations must have
  succeeded and the instances must pass their health check (EC2 instance/system status, and the
  load-balancer target health of target groups they are registered in) before the next batch
  starts; the first failure stops the policy's remaining batches. Installing on prod (a target
  tagged ``env=prod``, or ``approval: required``) waits for an approval in the Airflow UI.
* **Compliance report** from ``DescribeInstancePatchStates``. Where the account cannot answer it
  (the emulator: moto lacks the API and answers ``UnsupportedOperation``) the report is built from
  the RunPatchBaseline command invocations this run sent — status per instance, counts unknown —
  and says so in every row (``source``).

Protected instances (``aiops:protected=true``) are neither scanned nor patched. The writes are the
change engine's actions ``ssm.patch_scan`` (sent by the DAG's ``SsmRunCommandOperator``) and
``ssm.patch_install`` (:func:`patch_install`; every instance of a batch passes the action's live
guard — still there, running, not protected — right before the batch is sent).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from aiops.account.connections import executor_client
from aiops.account.permissions import permissions
from aiops.core import aws
from aiops.core.settings import get_settings
from aiops.core.state import StateStore
from aiops.ops.plan import FIRST_START, Change, Skip, change_key, is_protected, tag_dict
from aiops.ops.policy import DAYS, MaintenanceWindow, PatchPolicy, parse_hhmm
from aiops.remediation import engine, records
from aiops.remediation.actions import action, get_action, operator_action
from aiops.remediation.guards import TargetInfo

PERMISSIONS = permissions(
    "patching through SSM Run Command (AWS-RunPatchBaseline)",
    reader=(
        "ec2:DescribeInstanceStatus",
        "ec2:DescribeInstances",
        "elasticloadbalancing:DescribeTargetGroups",
        "elasticloadbalancing:DescribeTargetHealth",
        "ssm:DescribeInstancePatchStates",
        "ssm:GetCommandInvocation",
        "ssm:DescribeInstanceInformation",
    ),
    executor=(
        "ssm:SendCommand @ arn:${AWS::Partition}:ssm:${AWS::Region}::document/AWS-RunPatchBaseline",
        "ssm:SendCommand @ arn:${AWS::Partition}:ec2:${AWS::Region}:${AWS::AccountId}:instance/*",
        "ssm:GetCommandInvocation",
        "ssm:ListCommands",
        "ssm:ListCommandInvocations",
    ),
)

log = logging.getLogger(__name__)

WORKFLOW = "ops_patching"
DOCUMENT = "AWS-RunPatchBaseline"
PROD_ENVS = frozenset({"prod", "production"})
INSTALL = "ssm.patch_install"

operator_action(
    "ssm.patch_scan", kind="ssm-command", resource_type="ec2:instance", approval="policy", destructive=False,
    permissions=("ssm:SendCommand", "ssm:GetCommandInvocation", "ssm:ListCommands", "ssm:ListCommandInvocations"),
    source=__name__,
    description="AWS-RunPatchBaseline Operation=Scan over the plan's instances: reports missing patches, "
                "installs nothing (sent and awaited by the ops_patching DAG's SsmRunCommandOperator).")


@dataclass(frozen=True)
class Instance:
    id: str
    state: str
    tags: dict[str, str] = field(default_factory=dict)


def collect(policies: list[PatchPolicy], region: str | None = None) -> dict[str, list[Instance]]:
    """Instances each policy selects (every state: the plan reports the ones not running)."""
    ec2 = aws.client("ec2", region=region)
    out: dict[str, list[Instance]] = {}
    for policy in policies:
        filters = [{"Name": f"tag:{k}", "Values": [v]} for k, v in policy.selector.items()]
        out[policy.id] = [Instance(i["InstanceId"], i["State"]["Name"], tag_dict(i.get("Tags")))
                          for page in ec2.get_paginator("describe_instances").paginate(Filters=filters)
                          for r in page["Reservations"] for i in r["Instances"]
                          if i["State"]["Name"] not in {"terminated", "shutting-down"}]
    return out


def window_bounds(window: MaintenanceWindow, at: datetime) -> tuple[datetime, datetime] | None:
    """The window occurrence that contains ``at`` (start, end), or None when closed at ``at``."""
    tz = ZoneInfo(window.timezone)
    local = at.astimezone(tz)
    t = parse_hhmm(window.start)
    for back in (0, 1):  # a window may run past midnight
        day = (local - timedelta(days=back)).date()
        if DAYS[day.weekday()] not in window.days:
            continue
        start = datetime(day.year, day.month, day.day, t.hour, t.minute, tzinfo=tz)
        end = start + timedelta(minutes=window.duration_minutes)
        if start <= local < end:
            return start, end
    return None


def batches(ids: list[str], size: int) -> list[list[str]]:
    return [ids[i:i + size] for i in range(0, len(ids), size)]


def plan_patching(policies: list[PatchPolicy], targets: dict[str, list[Instance]], at: datetime, *,
                  default_batch_size: int, operation: str = "auto", scan: bool = True
                  ) -> tuple[list[Change], list[Skip], dict[str, Any]]:
    """(install changes, skipped, extra) where extra holds ``scan`` and ``install`` sections.

    ``operation``: ``auto`` (scan; install where the window is open), ``scan`` (scan only),
    ``install`` (as auto, the window still required). ``scan=False``: no scan this run (scheduled
    runs scan once a day).
    """
    changes: list[Change] = []
    skipped: list[Skip] = []
    scan_ids: list[str] = []
    installs: list[dict[str, Any]] = []
    seen: set[str] = set()
    for policy in policies:
        eligible: list[Instance] = []
        for inst in sorted(targets.get(policy.id, []), key=lambda i: i.tags.get("Name", i.id)):
            if inst.id in seen:
                skipped.append(Skip(inst.id, policy.id, "already selected by an earlier patch policy"))
            elif is_protected(inst.tags):
                skipped.append(Skip(inst.id, policy.id, "protected (aiops:protected=true)"))
            elif inst.state != "running":
                skipped.append(Skip(inst.id, policy.id, f"is {inst.state}: patched when running"))
            else:
                eligible.append(inst)
                seen.add(inst.id)
        if scan or operation == "scan":
            scan_ids += [i.id for i in eligible]
        if not eligible or operation == "scan":
            continue
        bounds = window_bounds(policy.maintenance_window, at)
        if bounds is None:
            skipped += [Skip(i.id, policy.id, "install: maintenance window closed") for i in eligible]
            continue
        prod = any(i.tags.get("env", "").lower() in PROD_ENVS for i in eligible)
        needs_approval = policy.approval == "required" or prod
        groups = batches([i.id for i in eligible], policy.batch_size or default_batch_size)
        names = {i.id: i.tags.get("Name", "") for i in eligible}
        installs.append({
            "policy": policy.id, "mode": policy.mode, "batches": groups, "requires_approval": needs_approval,
            "approvers": list(policy.approvers) or _default_approvers(), "reboot": policy.reboot, "health_check": policy.health_check,
            "window": {"start": bounds[0].isoformat(), "end": bounds[1].isoformat()},
            "seconds_left": (bounds[1] - at).total_seconds()})
        for n, group in enumerate(groups, 1):
            for instance_id in group:
                changes.append(Change(
                    INSTALL, instance_id, policy.id, policy.mode,
                    f"batch {n}/{len(groups)} in window until {bounds[1]:%a %H:%M %Z}"
                    + ("; needs approval (prod)" if needs_approval else ""),
                    {"name": names[instance_id], "batch": n, "reboot": policy.reboot,
                     "requires_approval": needs_approval}))
    extra = {"scan": {"instance_ids": scan_ids, "document": DOCUMENT},
             "install": installs,
             "needs_approval": any(i["requires_approval"] and i["mode"] == "enforce" for i in installs),
             "approvers": sorted({u for i in installs if i["requires_approval"] for u in i["approvers"]})}
    return changes, skipped, extra


def _default_approvers() -> list[str]:
    """Who approves an install whose policy names nobody: every approval has assigned users."""
    return list(get_settings().ops_patch_approvers)


def scan_command(plan: dict[str, Any]) -> dict[str, Any]:
    """``run_command_kwargs`` of the scan's ``SsmRunCommandOperator``."""
    return {"InstanceIds": plan["scan"]["instance_ids"], "Parameters": {"Operation": ["Scan"]},
            "Comment": f"aiops {WORKFLOW} scan {plan['interval']}"[:100]}


# -- install ---------------------------------------------------------------------------------------


def _running(target: TargetInfo, change: Change) -> str | None:
    return None if target.state == "running" else f"{change.resource_id} is {target.state}, not running"


@action(INSTALL, kind="ssm-command", resource_type="ec2:instance", approval="human-for-prod", destructive=False,
        permissions=("ssm:SendCommand", "ssm:GetCommandInvocation"), checks=(_running,))
def patch_install(change: Change) -> dict[str, Any]:
    """Send AWS-RunPatchBaseline ``Operation=Install`` to one batch (``params.instance_ids``;
    :func:`run_install` guards each instance first, then waits on the command's invocations)."""
    p = change.params
    command = executor_client("ssm").send_command(  # SendCommand: the executor (aws_executor)
        DocumentName=DOCUMENT, InstanceIds=list(p["instance_ids"]),
        Parameters={"Operation": ["Install"], "RebootOption": [p["reboot"]]}, Comment=p["comment"][:100])
    return {"command_id": command["Command"]["CommandId"]}


def instance_health(instance_ids: list[str], check: str) -> dict[str, str]:
    """``{instance_id: problem}`` for the instances that fail their health check (empty: healthy)."""
    problems: dict[str, str] = {}
    if check in {"instance-status", "both"}:
        ec2 = aws.client("ec2")
        statuses = ec2.describe_instance_status(InstanceIds=instance_ids, IncludeAllInstances=True)["InstanceStatuses"]
        found = {s["InstanceId"]: s for s in statuses}
        for iid in instance_ids:
            s = found.get(iid)
            if s is None:
                problems[iid] = "no status"
                continue
            state = s["InstanceState"]["Name"]
            inst, system = s.get("InstanceStatus", {}).get("Status"), s.get("SystemStatus", {}).get("Status")
            if state != "running" or inst not in {"ok", "initializing"} or system not in {"ok", "initializing"}:
                problems[iid] = f"state {state}, instance status {inst}, system status {system}"
    if check in {"target-health", "both"}:
        elb = aws.client("elbv2")
        wanted = set(instance_ids)
        for page in elb.get_paginator("describe_target_groups").paginate():
            for tg in page["TargetGroups"]:
                health = elb.describe_target_health(TargetGroupArn=tg["TargetGroupArn"])["TargetHealthDescriptions"]
                for d in health:
                    iid, state = d["Target"]["Id"], d["TargetHealth"]["State"]
                    if iid in wanted and state not in {"healthy", "initial"}:
                        problems.setdefault(iid, f"target {state} in {tg['TargetGroupName']}")
    return problems


def _invocation_status(ssm: Any, command_id: str, instance_id: str, delay: int, attempts: int) -> dict[str, Any]:
    from botocore.exceptions import ClientError

    last: dict[str, Any] = {}
    for _ in range(attempts):
        try:
            last = ssm.get_command_invocation(CommandId=command_id, InstanceId=instance_id)
        except ClientError as exc:  # InvocationDoesNotExist right after SendCommand
            if exc.response.get("Error", {}).get("Code") != "InvocationDoesNotExist":
                raise
            time.sleep(min(delay, 2))
            continue
        if last.get("Status") not in {"Pending", "InProgress", "Delayed"}:
            return last
        time.sleep(delay)
    return {**last, "Status": last.get("Status", "TimedOut")}


def run_install(plan: dict[str, Any], *, requires_approval: bool, approved: bool, run_id: str | None,
                approved_by: str | None = None, command_wait_seconds: int = 15, max_polls: int = 240) -> dict[str, Any]:
    """Install the plan's ``requires_approval`` (or not) policies batch by batch through the action
    ``ssm.patch_install``; stop a policy at its first refused, failed or unhealthy batch (and every
    batch after it, of any policy). ``approved_by``: the verified approver of a prod install (the
    others are approved by their enforce-mode policy). A ``first_start`` plan installs nothing: each
    enforced policy reports :data:`~aiops.ops.plan.FIRST_START`. Idempotent: a batch whose
    instances are recorded done is not sent again; a batch sent by an earlier attempt is waited
    on, not re-sent."""
    store = StateStore()
    act = get_action(INSTALL)
    if act is None or act.run is None:
        raise RuntimeError(f"{INSTALL} is not registered")  # it is, below: a broken import otherwise
    ssm = executor_client("ssm")  # waits on the action's command (GetCommandInvocation: the executor)
    started = time.monotonic()
    report: dict[str, Any] = {"policies": [], "failed": False}
    if plan.get("refused"):
        return {**report, "refused": plan["refused"]}
    for install in plan["install"]:
        if install["requires_approval"] != requires_approval:
            continue
        entry: dict[str, Any] = {"policy": install["policy"], "mode": install["mode"], "batches": []}
        report["policies"].append(entry)
        if install["mode"] != "enforce":
            entry["status"] = "dry-run"
            continue
        if plan.get("first_start"):  # the workflow's first run on the account: report, never install
            entry["status"] = FIRST_START
            entry["batches"] = [{"batch": n, "instances": b, "status": FIRST_START}
                                for n, b in enumerate(install["batches"], 1)]
            continue
        if requires_approval and not approved:
            entry["status"] = "not approved"
            store.audit(actor=WORKFLOW, action="ops.patch_install.not_approved", subject=install["policy"],
                        detail={"batches": install["batches"]}, run_id=run_id)
            continue
        entry["status"] = "done"
        for n, batch in enumerate(install["batches"], 1):
            if time.monotonic() - started > install["seconds_left"]:
                entry["status"] = "window closed"
                entry["batches"].append({"batch": n, "instances": batch, "status": "not started: window closed"})
                continue
            if entry["status"] != "done" or report["failed"]:  # the first failure stops the whole run
                entry["status"] = entry["status"] if entry["status"] != "done" else "not started: earlier batch failed"
                entry["batches"].append({"batch": n, "instances": batch, "status": "not started: earlier batch failed"})
                continue
            keys = {iid: change_key(WORKFLOW, plan["interval"], INSTALL, iid) for iid in batch}
            if all(records.is_done(k) for k in keys.values()):
                entry["batches"].append({"batch": n, "instances": batch, "status": "already done"})
                continue
            command_id = next((r["detail"].get("command_id") for k in keys.values()
                               for r in [records.get(k)] if r and r["status"] == "sent"), None)
            changes = {iid: Change(INSTALL, iid, install["policy"], "enforce", f"batch {n}",
                                   {"batch": n, "requires_approval": requires_approval}, keys[iid]) for iid in batch}
            # prod: the verified approver (none named = refused by the engine); otherwise the policy
            who = ([approved_by] if approved_by else []) if requires_approval else [f"policy:{install['policy']}"]
            batch_change = Change(INSTALL, ",".join(batch), install["policy"], "enforce", f"batch {n}",
                                  {"instance_ids": batch, "reboot": install["reboot"], "requires_approval": requires_approval,
                                   "comment": f"aiops {WORKFLOW} {install['policy']} batch {n} {plan['interval']}"})
            trail: dict[str, Any] = {"workflow": WORKFLOW, "plan_hash": plan.get("plan_hash"), "approved_by": who,
                                     "run_id": run_id}
            if command_id is None:
                refused = {iid: reason for iid in batch
                           if (reason := engine.approval_problem(act, changes[iid], who) or act.guard(changes[iid]))}
                if refused:  # a target changed since the plan: nothing of this batch is sent, the run stops
                    for iid, reason in refused.items():
                        engine.refuse(act, changes[iid], reason, **trail)
                    status = "refused: " + "; ".join(refused.values())
                    entry["batches"].append({"batch": n, "instances": batch, "status": status})
                    entry["status"] = f"stopped after batch {n}"
                    report["failed"] = True
                    continue
                command_id = act.run(batch_change)["command_id"]
                for iid in batch:
                    records.record(changes[iid], workflow=WORKFLOW, status="sent",
                                   detail={"command_id": command_id}, run_id=run_id)
            log.info("Policy %s batch %d/%d: command %s on %s", install["policy"], n, len(install["batches"]),
                     command_id, ", ".join(batch))
            statuses = {iid: _invocation_status(ssm, command_id, iid, command_wait_seconds, max_polls)["Status"]
                        for iid in batch}
            failed = {iid: s for iid, s in statuses.items() if s != "Success"}
            unhealthy = {} if failed else instance_health(batch, install["health_check"])
            status = ("failed: " + ", ".join(f"{i} {s}" for i, s in failed.items()) if failed
                      else "unhealthy: " + "; ".join(f"{i} {p}" for i, p in unhealthy.items()) if unhealthy
                      else "succeeded")
            for iid in batch:
                ok = iid not in failed and iid not in unhealthy
                records.record(changes[iid], workflow=WORKFLOW, status="done" if ok else "failed",
                               detail={"command_id": command_id, "status": statuses[iid],
                                       "health": unhealthy.get(iid, "ok")}, run_id=run_id)
            outcome = ({"result": {"command_id": command_id, "status": status}} if status == "succeeded"
                       else {"error": status, "command_id": command_id})
            engine.audit(act, batch_change, resource=",".join(batch), **trail, **outcome)
            entry["batches"].append({"batch": n, "instances": batch, "command_id": command_id, "status": status})
            log.info("Policy %s batch %d: %s", install["policy"], n, status)
            if failed or unhealthy:
                entry["status"] = f"stopped after batch {n}"
                report["failed"] = True
    return report


# -- compliance ------------------------------------------------------------------------------------


def patch_compliance(instance_ids: list[str], commands: list[tuple[str, str]]) -> list[dict[str, Any]]:
    """One row per instance: from ``DescribeInstancePatchStates``; where the API is unavailable
    (``UnsupportedOperation``), from the invocations of ``commands`` — ``(command_id, operation)``
    in the order sent — (the substitute)."""
    from botocore.exceptions import ClientError

    ssm = aws.client("ssm")
    rows: list[dict[str, Any]] = []
    try:
        for i in range(0, len(instance_ids), 50):
            pages = ssm.get_paginator("describe_instance_patch_states").paginate(InstanceIds=instance_ids[i:i + 50])
            for page in pages:
                rows += [_row_from_patch_state(s) for s in page.get("InstancePatchStates", [])]
        return rows
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") not in {"UnsupportedOperation", "NotImplemented"}:
            raise
        log.info("DescribeInstancePatchStates unavailable (%s): compliance from command invocations",
                 exc.response["Error"]["Code"])
    return compliance_from_invocations(ssm, instance_ids, commands)


def _row_from_patch_state(s: dict[str, Any]) -> dict[str, Any]:
    missing, failed = int(s.get("MissingCount", 0)), int(s.get("FailedCount", 0))
    critical = int(s.get("CriticalNonCompliantCount", 0) or 0)
    return {"instance_id": s["InstanceId"], "patch_group": s.get("PatchGroup"), "baseline_id": s.get("BaselineId"),
            "operation": s.get("Operation"), "operation_end": str(s.get("OperationEndTime", "")),
            "installed": int(s.get("InstalledCount", 0)), "missing": missing, "failed": failed,
            "critical_non_compliant": critical, "compliant": missing == 0 and failed == 0,
            "source": "DescribeInstancePatchStates"}


def compliance_from_invocations(ssm: Any, instance_ids: list[str],
                                commands: list[tuple[str, str]]) -> list[dict[str, Any]]:
    from botocore.exceptions import ClientError

    rows = []
    for iid in instance_ids:
        row: dict[str, Any] = {"instance_id": iid, "operation": None, "status": "no command", "compliant": None,
                               "source": "command invocations (DescribeInstancePatchStates unavailable)"}
        for command_id, operation in commands:  # in order sent: the last one that ran on the instance wins
            try:
                inv = ssm.get_command_invocation(CommandId=command_id, InstanceId=iid)
            except ClientError:  # InvocationDoesNotExist: that command did not target this instance
                continue
            row.update({"command_id": command_id, "status": inv.get("Status"), "operation": operation,
                        "operation_end": str(inv.get("ExecutionEndDateTime", ""))})
        rows.append(row)
    return rows


def render_compliance(rows: list[dict[str, Any]]) -> str:
    lines = ["## Patch compliance", "", "| instance | compliant | missing | failed | last operation | status | source |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        compliant = {True: "yes", False: "**no**", None: "unknown"}[r.get("compliant")]
        lines.append(f"| {r['instance_id']} | {compliant} | {r.get('missing', '-')} | {r.get('failed', '-')} | "
                     f"{r.get('operation') or '-'} | {r.get('status', '-')} | {r['source']} |")
    return "\n".join(lines) + "\n"
