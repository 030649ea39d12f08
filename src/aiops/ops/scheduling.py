"""Off-hours scheduling: non-prod instances tagged ``aiops:schedule=<schedule id>`` run during the
schedule's hours and are stopped outside them; Auto Scaling groups get scheduled capacity
(min / max / desired) changes. Prod instances and anything tagged ``aiops:protected=true`` are never
stopped or started.

A run covers the data interval ``(start, end]``. By default an instance is acted on only when one
of its schedule's start/stop times falls in that interval (someone who starts a staging box at
night keeps it); ``enforce_state: true`` reconciles on every run. A capacity step applies when its
time falls in the interval. The writes are the actions ``ec2.stop_instance``, ``ec2.start_instance``
and ``autoscaling.set_capacity``; their guards check again, live, that the target is neither
protected nor (instances) prod.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from aiops.account.connections import executor_client
from aiops.account.permissions import permissions
from aiops.core import aws
from aiops.ops.plan import Change, Skip, is_protected, tag_dict
from aiops.ops.policy import DAYS, AsgSchedule, CapacityStep, InstanceSchedule, parse_hhmm
from aiops.remediation.actions import action
from aiops.remediation.guards import TargetInfo

PERMISSIONS = permissions(
    "office-hours scheduling: stop/start instances, resize ASGs",
    reader=(
        "ec2:DescribeInstances",
        "autoscaling:DescribeAutoScalingGroups",
    ),
    executor=(
        "ec2:StopInstances",
        "ec2:StartInstances",
        "autoscaling:UpdateAutoScalingGroup",
    ),
)

WORKFLOW = "ops_scheduling"
SCHEDULE_TAG = "aiops:schedule"
PROD_ENVS = frozenset({"prod", "production"})


@dataclass(frozen=True)
class Instance:
    id: str
    state: str
    tags: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Group:
    name: str
    min: int
    max: int
    desired: int
    tags: dict[str, str] = field(default_factory=dict)


def collect(asg_names: list[str], region: str | None = None) -> tuple[list[Instance], list[Group]]:
    ec2 = aws.client("ec2", region=region)
    instances = [Instance(i["InstanceId"], i["State"]["Name"], tag_dict(i.get("Tags")))
                 for page in ec2.get_paginator("describe_instances").paginate(
                     Filters=[{"Name": "tag-key", "Values": [SCHEDULE_TAG]}])
                 for r in page["Reservations"] for i in r["Instances"]]
    groups: list[Group] = []
    if asg_names:
        asg = aws.client("autoscaling", region=region)
        for page in asg.get_paginator("describe_auto_scaling_groups").paginate(AutoScalingGroupNames=asg_names):
            groups += [Group(g["AutoScalingGroupName"], g["MinSize"], g["MaxSize"], g["DesiredCapacity"],
                             tag_dict(g.get("Tags"))) for g in page["AutoScalingGroups"]]
    return instances, groups


def _local_days(start: datetime, end: datetime, tz: ZoneInfo) -> list[datetime]:
    """Local midnights of every day the interval touches (plus the day before, for safety)."""
    first = (start.astimezone(tz) - timedelta(days=1)).date()
    last = end.astimezone(tz).date()
    out = []
    while first <= last:
        out.append(datetime(first.year, first.month, first.day, tzinfo=tz))
        first += timedelta(days=1)
    return out


def _at(day: datetime, hhmm: str) -> datetime:
    t = parse_hhmm(hhmm)
    return day.replace(hour=t.hour, minute=t.minute)


def should_run(schedule: InstanceSchedule, moment: datetime) -> bool:
    """Is ``moment`` inside the schedule's hours?"""
    tz = ZoneInfo(schedule.timezone)
    local = moment.astimezone(tz)
    if DAYS[local.weekday()] not in schedule.days:
        return False
    day = datetime(local.year, local.month, local.day, tzinfo=tz)
    return _at(day, schedule.start) <= local < _at(day, schedule.stop)


def boundaries(schedule: InstanceSchedule, start: datetime, end: datetime) -> list[tuple[datetime, str]]:
    """Start/stop times of the schedule in ``(start, end]``, as (UTC-aware time, "start"|"stop")."""
    tz = ZoneInfo(schedule.timezone)
    out = []
    for day in _local_days(start, end, tz):
        if DAYS[day.weekday()] not in schedule.days:
            continue
        for hhmm, what in ((schedule.start, "start"), (schedule.stop, "stop")):
            moment = _at(day, hhmm)
            if start < moment <= end:
                out.append((moment, what))
    return sorted(out)


def step_times(schedule: AsgSchedule, step: CapacityStep, start: datetime, end: datetime) -> list[datetime]:
    tz = ZoneInfo(schedule.timezone)
    return [m for day in _local_days(start, end, tz) if DAYS[day.weekday()] in step.days
            for m in [_at(day, step.at)] if start < m <= end]


def plan_schedules(schedules: list[InstanceSchedule], asg_schedules: list[AsgSchedule], instances: list[Instance],
                   groups: list[Group], start: datetime, end: datetime, *, reconcile: bool = False
                   ) -> tuple[list[Change], list[Skip], list[dict[str, Any]]]:
    """Changes for the interval ``(start, end]``; ``reconcile``: every schedule as if
    ``enforce_state`` (a manual "apply the schedules now")."""
    by_id = {s.id: s for s in schedules}
    changes: list[Change] = []
    skipped: list[Skip] = []
    findings: list[dict[str, Any]] = []
    for inst in sorted(instances, key=lambda i: i.id):
        name = inst.tags.get(SCHEDULE_TAG, "")
        label = f"{inst.id} ({inst.tags.get('Name', '')})"
        schedule = by_id.get(name)
        if schedule is None:
            findings.append({"kind": "unknown_schedule", "instance": inst.id,
                             "message": f"{label}: {SCHEDULE_TAG}={name!r} names no schedule in include/ops"})
            continue
        if inst.tags.get("env", "").lower() in PROD_ENVS:
            skipped.append(Skip(inst.id, schedule.id, "env=prod: production is never scheduled off"))
            continue
        if is_protected(inst.tags):
            skipped.append(Skip(inst.id, schedule.id, "protected (aiops:protected=true)"))
            continue
        crossed = boundaries(schedule, start, end)
        if not crossed and not (schedule.enforce_state or reconcile):
            continue
        want = "running" if should_run(schedule, end) else "stopped"
        if inst.state == want:
            continue
        if inst.state not in {"running", "stopped"}:
            skipped.append(Skip(inst.id, schedule.id, f"is {inst.state}; acting on the next run"))
            continue
        why = (f"{crossed[-1][1]} time {crossed[-1][0].astimezone(ZoneInfo(schedule.timezone)):%a %H:%M %Z}"
               if crossed else "outside schedule hours (reconciled)" if want == "stopped"
               else "inside schedule hours (reconciled)")
        action = "ec2.start_instance" if want == "running" else "ec2.stop_instance"
        changes.append(Change(action, inst.id, schedule.id, schedule.mode, f"{schedule.id}: {why}",
                              {"name": inst.tags.get("Name", ""), "from": inst.state}))
    by_name = {g.name: g for g in groups}
    for sched in asg_schedules:
        group = by_name.get(sched.asg)
        if group is None:
            findings.append({"kind": "missing_asg", "asg": sched.asg,
                             "message": f"{sched.id}: Auto Scaling group {sched.asg} not found"})
            continue
        due = sorted((m, step) for step in sched.steps for m in step_times(sched, step, start, end))
        if not due:
            continue
        moment, step = due[-1]
        if is_protected(group.tags):
            skipped.append(Skip(group.name, sched.id, "protected (aiops:protected=true)"))
            continue
        if (group.min, group.max, group.desired) == (step.min, step.max, step.desired):
            continue
        changes.append(Change(
            "autoscaling.set_capacity", group.name, sched.id, sched.mode,
            f"step at {moment.astimezone(ZoneInfo(sched.timezone)):%a %H:%M %Z}",
            {"min": step.min, "max": step.max, "desired": step.desired,
             "previous": {"min": group.min, "max": group.max, "desired": group.desired}}))
    return changes, skipped, findings


def _not_prod(target: TargetInfo, change: Change) -> str | None:
    if target.tags.get("env", "").lower() in PROD_ENVS:
        return f"{change.resource_id} is tagged env={target.tags['env']}: production is never scheduled off"
    return None


@action("ec2.stop_instance", resource_type="ec2:instance", permissions=("ec2:StopInstances",),
        destructive=False, checks=(_not_prod,))
def stop_instance(change: Change) -> dict[str, Any]:
    """Stop a non-prod instance outside its schedule's hours."""
    resp = executor_client("ec2").stop_instances(InstanceIds=[change.resource_id])
    return {"state": resp["StoppingInstances"][0]["CurrentState"]["Name"]}


@action("ec2.start_instance", resource_type="ec2:instance", permissions=("ec2:StartInstances",),
        destructive=False, checks=(_not_prod,))
def start_instance(change: Change) -> dict[str, Any]:
    """Start a non-prod instance at its schedule's start time."""
    resp = executor_client("ec2").start_instances(InstanceIds=[change.resource_id])
    return {"state": resp["StartingInstances"][0]["CurrentState"]["Name"]}


@action("autoscaling.set_capacity", resource_type="autoscaling:group",
        permissions=("autoscaling:UpdateAutoScalingGroup",), destructive=False)
def set_capacity(change: Change) -> dict[str, Any]:
    """Set an Auto Scaling group's min / max / desired to a scheduled step's."""
    p = change.params
    executor_client("autoscaling").update_auto_scaling_group(
        AutoScalingGroupName=change.resource_id, MinSize=int(p["min"]), MaxSize=int(p["max"]),
        DesiredCapacity=int(p["desired"]))
    return {"min": p["min"], "max": p["max"], "desired": p["desired"]}
