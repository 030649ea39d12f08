"""What incidents hand on: the incident record the store returns and what incident_response's tasks
pass between them (XCom carries these models' JSON; the receiving task validates it).

- :class:`Incident` — one row of ``aiops_incidents`` (:mod:`aiops.incidents.store` validates every
  row it reads; a column the model does not know is an error, so the two cannot drift apart).
- :class:`TriageDecision` — ``triage`` -> ``start_remediations`` / ``check_recovery``.
- :class:`RecoveryResult` — ``check_recovery`` -> ``postmortem``: the decision plus its outcome.

Decisions dump only the fields that were set (``exclude_unset``), so their JSON has exactly the
keys it had before the models (a ``skip`` carries ``state``, an ``escalate`` its ``reason`` ...).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from aiops.core.alerts import Severity

IncidentState = Literal["detected", "triaged", "remediating", "resolved", "escalated"]


class Incident(BaseModel):
    """An incident as stored: one per (account, alert group), with its alerts and timestamps."""

    model_config = ConfigDict(extra="forbid")

    incident_id: str
    account_id: str = ""  # of its alerts; '' unknown
    group_key: str
    title: str
    service: str | None = None
    env: str | None = None
    team: str | None = None
    severity: Severity
    root_resource: str | None = None
    state: IncidentState
    first_seen: datetime
    last_seen: datetime
    detected_at: datetime
    triaged_at: datetime | None = None
    remediation_started_at: datetime | None = None
    resolved_at: datetime | None = None
    escalated_at: datetime | None = None
    alerts: list[dict[str, Any]]  # Alert.model_dump(mode="json"), de-duplicated by event_id
    routed_to: list[str]
    links: dict[str, Any]  # {"evidence": key, "postmortem_md": key, "remediate_run": ...}
    time_to_detect_seconds: float | None = None
    mttr_seconds: float | None = None
    created_at: datetime
    updated_at: datetime


class TriageDecision(BaseModel):
    """What ``triage`` decided for one incident in one run: skip it, escalate it or remediate it."""

    model_config = ConfigDict(extra="forbid")

    incident_id: str
    action: Literal["skip", "escalate", "remediate"]
    # set by triage; a decision written by hand (a test, a manual re-run) may leave them out
    title: str | None = None
    run_id: str | None = None
    state: IncidentState | None = None  # skip: the state that made triage skip it
    reason: str | None = None  # escalate: why no runbook
    evidence: str | None = None  # artifact key of the evidence
    match: dict[str, Any] | None = None  # remediate: the runbook rule that matched (runbook_rules)
    primary_signal: dict[str, Any] | None = None  # the alert signal remediation is verified against

    def to_xcom(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_unset=True)


class RecoveryResult(TriageDecision):
    """The decision with what became of it (``resolved``, ``escalated``, ``handled_elsewhere``, the
    action itself when there was nothing to remediate)."""

    outcome: str | None
    verification: dict[str, Any] | None = None  # back_in_band's verdict
