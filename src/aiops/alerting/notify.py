"""Notifications: one SNS message per new or escalated incident candidate, to its routed topics.

Topic names from ``routing.yaml`` are resolved to ARNs at run time (``ListTopics``, once per run);
a name that does not exist is recorded as a failed notification naming the topic, and the others
still go out. IAM: ``sns:ListTopics``, ``sns:Publish`` on ``aiops-alerts-*``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from aiops.account.permissions import permissions
from aiops.core import aws
from aiops.core.alerts import SEVERITY_ORDER, IncidentCandidate

PERMISSIONS = permissions(
    "SNS notifications to the team topics",
    reader=(
        "sns:ListTopics",
    ),
    notifier=(
        "sns:Publish @ arn:${AWS::Partition}:sns:${AWS::Region}:${AWS::AccountId}:aiops-alerts-*",
    ),
)

log = logging.getLogger(__name__)

SUBJECT_MAX = 100  # SNS Subject limit


def resolve_topics(names: list[str], *, client: Any = None) -> dict[str, str | None]:
    """``{name: arn or None}``; ARNs given as names pass through."""
    if client is None:
        client = aws.client("sns")
    arns: dict[str, str] = {}
    if any(not n.startswith("arn:") for n in names):
        for page in client.get_paginator("list_topics").paginate():
            for t in page.get("Topics", []):
                arns[t["TopicArn"].rsplit(":", 1)[-1]] = t["TopicArn"]
    return {n: (n if n.startswith("arn:") else arns.get(n)) for n in names}


def subject(candidate: IncidentCandidate, incident_id: str | None, escalated: bool) -> str:
    """``[HIGH] INC-1A2B checkout/prod: <worst alert> (+2 related)``, at most 100 characters."""
    where = f"{candidate.service}/{candidate.env or '-'}" if candidate.service else (candidate.root_resource or "")
    worst = max(candidate.alerts, key=lambda a: SEVERITY_ORDER[a.severity])
    more = f" (+{len(candidate.alerts) - 1} related)" if len(candidate.alerts) > 1 else ""
    head = f"[{candidate.severity.upper()}]{' ESCALATED' if escalated else ''} {incident_id or ''} {where}:"
    head = " ".join(head.split())
    room = SUBJECT_MAX - len(head) - len(more) - 1
    title = " ".join(worst.title.split())  # SNS subjects: no line breaks
    if len(title) > room:
        title = title[:max(room - 1, 0)] + "\u2026"
    return f"{head} {title}{more}"[:SUBJECT_MAX]


def body(candidate: IncidentCandidate, incident_id: str | None, escalated: bool, *, ui_url: str | None = None) -> str:
    lines = [
        f"{'Escalated' if escalated else 'New'} incident {incident_id or '(not opened)'}: {candidate.title}",
        "",
        f"Severity:  {candidate.severity}",
        f"Service:   {candidate.service or '-'} ({candidate.env or '-'}), team {candidate.team or '-'}",
        f"Resource:  {candidate.root_resource or '-'}",
        f"Window:    {candidate.first_seen:%Y-%m-%d %H:%M:%S} - {candidate.last_seen:%H:%M:%S} UTC",
        f"Alerts:    {len(candidate.alerts)}",
        "",
    ]
    for a in candidate.alerts[:10]:
        lines.append(f"- {a.time:%H:%M:%S} [{a.severity}] {a.source}: {a.title}")
        if a.summary:
            lines.append(f"    {a.summary[:300]}")
        rule = a.enrichment.get("severity_rule") or {}
        if rule.get("rule"):
            lines.append(f"    severity rule {rule['rule']}: {rule.get('reason', '')}")
        for c in (a.enrichment.get("recent_changes") or [])[-3:]:
            lines.append(f"    recent change: {c['time']} {c['event_name']} by {c['actor']}")
        for s in a.enrichment.get("slo_impact") or []:
            budget = s.get("budget_remaining")
            lines.append(f"    SLO {s['slo_id']}: budget remaining "
                         f"{f'{budget:.1%}' if isinstance(budget, float) else '-'}, {s.get('severity')}")
    if len(candidate.alerts) > 10:
        lines.append(f"... and {len(candidate.alerts) - 10} more")
    lines += ["", f"Group key: {candidate.group_key}"]
    if ui_url and incident_id:
        lines.append(f"Incident response runs: {ui_url}/dags/incident_response")
    lines.append("Sent by MatCarv AIOps alert_intake.")
    return "\n".join(lines)


Publisher = Callable[[str, str, str], str]  # (topic_arn, subject, message) -> message id


def sns_publisher(client: Any = None) -> Publisher:
    if client is None:
        client = aws.client("sns")

    def publish(topic_arn: str, subj: str, message: str) -> str:
        return str(client.publish(TopicArn=topic_arn, Subject=subj, Message=message)["MessageId"])
    return publish
