"""CloudWatch Logs retention: every log group gets the retention its policy says (first policy
whose glob matches the name). Groups no policy matches are reported; those that keep logs forever
get ``settings.ops_log_retention_default_days`` (applied only when
``AIOPS_OPS_LOG_RETENTION_DEFAULT_MODE=enforce``). Shortening an existing retention deletes old
logs, so a policy does it only with ``allow_decrease: true``. Groups tagged
``aiops:protected=true`` are never changed (checked again, live, right before the write).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import Any

from aiops.account.connections import executor_client
from aiops.account.permissions import permissions
from aiops.core import aws
from aiops.ops.plan import Change, Skip, is_protected
from aiops.ops.policy import LogRetentionPolicy
from aiops.remediation.actions import action

PERMISSIONS = permissions(
    "log group retention",
    reader=(
        "logs:DescribeLogGroups",
        "logs:ListTagsLogGroup",
    ),
    executor=(
        "logs:PutRetentionPolicy",
    ),
)

WORKFLOW = "ops_log_retention"
DEFAULT_POLICY = "(default)"


@dataclass(frozen=True)
class LogGroup:
    name: str
    retention_days: int | None
    tags: dict[str, str] = field(default_factory=dict)


def collect(region: str | None = None) -> list[LogGroup]:
    logs = aws.client("logs", region=region)
    groups = []
    for page in logs.get_paginator("describe_log_groups").paginate():
        for g in page["logGroups"]:
            try:
                tags = logs.list_tags_log_group(logGroupName=g["logGroupName"]).get("tags", {})
            except Exception:  # tags are only needed for the protected check; unreadable = not protected
                tags = {}
            groups.append(LogGroup(g["logGroupName"], g.get("retentionInDays"), dict(tags)))
    return groups


def policy_for(policies: list[LogRetentionPolicy], name: str) -> LogRetentionPolicy | None:
    return next((p for p in policies if any(fnmatchcase(name, pat) for pat in p.patterns)), None)


def plan_retention(policies: list[LogRetentionPolicy], groups: list[LogGroup], *, default_days: int,
                   default_mode: str) -> tuple[list[Change], list[Skip], list[dict[str, Any]]]:
    """(changes, skipped, findings): findings list the groups no policy matches."""
    changes: list[Change] = []
    skipped: list[Skip] = []
    findings: list[dict[str, Any]] = []
    for group in sorted(groups, key=lambda g: g.name):
        policy = policy_for(policies, group.name)
        current = group.retention_days
        shown = f"{current} days" if current else "never expire"
        if policy is None:
            findings.append({"kind": "no_policy", "log_group": group.name, "retention_days": current,
                             "message": f"{group.name}: no policy matches ({shown})"
                             + (f"; default {default_days} days proposed" if current is None else "")})
            if current is None:
                target = Change("logs.put_retention", group.name, DEFAULT_POLICY, default_mode,
                                f"no policy and logs never expire: default {default_days} days",
                                {"retention_days": default_days, "previous": None})
                if is_protected(group.tags):
                    skipped.append(Skip(group.name, DEFAULT_POLICY, "protected (aiops:protected=true)"))
                else:
                    changes.append(target)
            continue
        want = policy.retention_days
        if current == want:
            continue
        if is_protected(group.tags):
            skipped.append(Skip(group.name, policy.id, f"protected (aiops:protected=true); {shown}, policy {want}"))
        elif current is not None and current > want and not policy.allow_decrease:
            skipped.append(Skip(group.name, policy.id,
                                f"keeps {current} days; shortening to {want} deletes logs (allow_decrease: false)"))
        else:
            changes.append(Change("logs.put_retention", group.name, policy.id, policy.mode,
                                  f"{shown} -> {want} days", {"retention_days": want, "previous": current}))
    return changes, skipped, findings


@action("logs.put_retention", resource_type="logs:log-group", permissions=("logs:PutRetentionPolicy",),
        destructive=False)
def put_retention(change: Change) -> dict[str, Any]:
    """Set a log group's retention (shortening it deletes old logs: only with ``allow_decrease``)."""
    logs = executor_client("logs")
    logs.put_retention_policy(logGroupName=change.resource_id, retentionInDays=int(change.params["retention_days"]))
    return {"retention_days": change.params["retention_days"], "previous": change.params["previous"]}

