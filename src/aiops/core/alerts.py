"""The one alert model every operational event is normalised to, and the incident candidate the
alerting engine hands to the incident lifecycle.

Contract between ``aiops.alerting`` (intake, normalisation, enrichment, dedup/grouping/
suppression/routing) and ``aiops.incidents`` (lifecycle, triage, remediation, post-mortem):

* intake normalises each SQS message to an :class:`Alert` (or dead-letters it with a reason);
* the engine groups alerts into :class:`IncidentCandidate` objects;
* for each candidate it calls ``aiops.incidents.store.open_or_update(candidate, actor=..., run_id=...)``
  which returns ``(incident_id, created)`` and is idempotent on ``candidate.group_key``
  (re-deliveries and retries never create a second incident or lose a transition).

Both travel through XCom as ``model_dump(mode="json")``.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

Severity = Literal["info", "low", "medium", "high", "critical"]
SEVERITY_ORDER: dict[str, int] = {"info": 0, "low": 1, "medium": 2, "high": 3, "critical": 4}


def fingerprint(*parts: Any) -> str:
    """Stable short hash of the identifying parts of an alert (dedup key)."""
    return hashlib.sha256("|".join("" if p is None else str(p) for p in parts).encode()).hexdigest()[:32]


class Alert(BaseModel):
    source: str = Field(description="Event family: cloudwatch_alarm, aiops_anomaly, aiops_slo, securityhub, "
                                    "guardduty, ec2_state, rds_event, asg_event, health, security_event ...")
    event_id: str = Field(description="The event's own id (EventBridge `id`), for re-delivery dedup")
    time: datetime = Field(description="When it happened (event time, UTC)")
    received_at: datetime | None = None
    resource: str | None = Field(None, description="ARN or id of the affected resource")
    resource_type: str | None = None
    region: str | None = None
    account: str | None = None
    service: str | None = Field(None, description="Application service (from tags/enrichment)")
    env: str | None = None
    team: str | None = None
    owner: str | None = None
    metric: str | None = Field(None, description="series_id (ns|metric|dims|stat) where the alert is about a metric")
    title: str
    summary: str = ""
    state: Literal["firing", "resolved"] = "firing"
    severity: Severity = "medium"
    fingerprint: str = Field(description="Dedup key: same condition on the same resource")
    labels: dict[str, Any] = Field(default_factory=dict, description="Source-specific fields worth keeping")
    enrichment: dict[str, Any] = Field(default_factory=dict,
                                       description="recent_changes, slo_impact, severity_rule ... (added later)")
    raw: dict[str, Any] = Field(description="The original payload, unchanged")


class IncidentCandidate(BaseModel):
    group_key: str = Field(description="Idempotency key of the incident (same group -> same incident)")
    title: str
    service: str | None = None
    env: str | None = None
    team: str | None = None
    severity: Severity
    root_resource: str | None = None
    first_seen: datetime
    last_seen: datetime
    alerts: list[Alert]
    routed_to: list[str] = Field(default_factory=list, description="SNS topic ARNs notified")
