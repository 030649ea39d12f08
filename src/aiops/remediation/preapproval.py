"""Pre-approved means pre-approved *for a verified, current cause*.

A runbook whose policy is ``pre-approved`` runs without a human only when the platform's own
incident path asks for it, for an incident opened from signals that check out against the account
right now. Everything else falls back to one approval round, with the reasons recorded.

Two call sites, one rule set (:func:`verify_cause`):

* ``incident_response`` (:func:`decide_for_incident`, from ``aiops.incidents.pipeline``) verifies the
  incident's cause when it picks a pre-approved runbook, and records a *grant* in the audit log
  (``preapproval_granted``: incident, runbook, parameters, the remediate run it triggers);
* ``remediate``'s plan step (:func:`gate_plan`, from ``aiops.remediation.pipeline.make_plan``)
  never trusts its conf: it looks the grant up in the state store (same incident, runbook and
  parameters, unclaimed, younger than ``preapproval_grant_ttl_minutes``), re-runs every check
  against live AWS state and claims the grant (``preapproval_claimed``). A manual trigger has no
  grant, so it always needs an approval.

The checks (each a :class:`Check` with its reason):

* **source** - the primary signal is a CloudWatch alarm or the platform's own anomaly detector
  (other event families cannot justify an unattended change);
* **account / region** - the event's account and region are the platform's own (STS);
* **alarm** - a CloudWatch alarm event names an alarm that exists in that account and region
  (``DescribeAlarms``), watches the same metric and dimensions, and is in ``ALARM`` now;
* **resource** - the runbook's target exists in the account (described, not taken from the event);
* **fresh** - the signal is younger than ``preapproval_signal_horizon_minutes``;
* **direction** - the signal's direction (the live alarm's comparison operator; the anomaly's
  value against its band) is the one the rule fixes (``when.direction`` in
  ``include/incidents/runbooks.yaml``);
* **corroborated** - a detector-only anomaly needs an alarm in ``ALARM`` on the same resource, an
  SLO burn the SLO tracker recorded, or a second independent fresh signal in the incident;
* **rate limit** - at most ``preapproval_max_per_runbook`` unattended runs of the runbook and
  ``preapproval_max_per_resource`` on one resource within ``preapproval_rate_window_minutes``,
  counted from the ``preapproval_claimed`` audit entries (across runs and processes).
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, Protocol

from pydantic import BaseModel, Field

from aiops.account.permissions import permissions
from aiops.core import aws
from aiops.core.settings import get_settings
from aiops.core.state import StateStore, audit_log, incidents, slo_history
from aiops.core.times import lenient_utc as _utc
from aiops.metrics.model import series_id
from aiops.remediation.catalog import load_catalog
from aiops.remediation.model import APPROVAL_ROUNDS
from aiops.remediation.targets import describe_targets

log = logging.getLogger(__name__)

PERMISSIONS = permissions(
    "verifying a pre-approved runbook's cause (the alarm exists and fires in this account)",
    reader=("cloudwatch:DescribeAlarms",),
)

Direction = Literal["above", "below"]
GRANTED = "preapproval_granted"
CLAIMED = "preapproval_claimed"
REFUSED = "preapproval_refused"
VERIFIABLE_SOURCES = ("cloudwatch_alarm", "aiops_anomaly")
_ABOVE_OPS = {"GreaterThanThreshold", "GreaterThanOrEqualToThreshold", "GreaterThanUpperThreshold"}
_BELOW_OPS = {"LessThanThreshold", "LessThanOrEqualToThreshold", "LessThanLowerThreshold"}


class Check(BaseModel):
    name: str
    ok: bool
    detail: str


class PreapprovalDecision(BaseModel):
    """Whether a pre-approved runbook may run without a human for this cause, and why (not)."""

    runbook: str
    incident_id: str | None = None
    resource: str | None = None
    preapproved: bool
    reasons: list[str] = Field(default_factory=list, description="Why an approval is required (empty if not)")
    checks: list[Check] = Field(default_factory=list)
    decided_at: datetime
    grant_id: int | None = Field(None, description="audit_log id of the grant this decision rests on")

    @property
    def summary(self) -> str:
        if self.preapproved:
            return f"pre-approved: verified, current cause ({', '.join(c.name for c in self.checks)})"
        return "approval required: " + "; ".join(self.reasons)


# -- the reads ------------------------------------------------------------------------------------
class CauseReads(Protocol):
    def account_id(self) -> str: ...
    def region(self) -> str: ...
    def describe_alarm(self, name: str) -> dict[str, Any] | None: ...
    def alarms_in_alarm_on(self, dimension: str, value: str) -> list[str]: ...
    def resource_exists(self, kind: str, resource_id: str) -> bool: ...
    def slo_burning(self, slo_id: str, since: datetime) -> bool: ...
    def preapproved_runs(self, runbook: str, resource: str | None, since: datetime) -> tuple[int, int]: ...


class AwsCauseReads:
    """The live reads: STS, CloudWatch DescribeAlarms, a describe of the target, the state store."""

    def account_id(self) -> str:
        return aws.account_id()

    def region(self) -> str:
        return aws.region_of()

    def describe_alarm(self, name: str) -> dict[str, Any] | None:
        resp = aws.client("cloudwatch").describe_alarms(AlarmNames=[name])
        alarms = list(resp.get("MetricAlarms") or []) + list(resp.get("CompositeAlarms") or [])
        return alarms[0] if alarms else None

    def alarms_in_alarm_on(self, dimension: str, value: str) -> list[str]:
        out = []
        for page in aws.client("cloudwatch").get_paginator("describe_alarms").paginate(StateValue="ALARM"):
            for alarm in page.get("MetricAlarms") or []:
                dims = {d["Name"]: d["Value"] for d in alarm.get("Dimensions") or []}
                if dims.get(dimension) == value:
                    out.append(str(alarm["AlarmName"]))
        return out

    def resource_exists(self, kind: str, resource_id: str) -> bool:
        return all(t.exists for t in describe_targets(kind, [resource_id]))

    def slo_burning(self, slo_id: str, since: datetime) -> bool:
        from sqlalchemy import select

        store = StateStore()
        store._ready()
        with store.engine.connect() as conn:
            rows = conn.execute(select(slo_history.c.severity).where(
                slo_history.c.slo_id == slo_id, slo_history.c.evaluated_at >= since)).scalars().all()
        return any(s in ("page", "ticket") for s in rows)

    def preapproved_runs(self, runbook: str, resource: str | None, since: datetime) -> tuple[int, int]:
        return count_claims(runbook, resource, since)


def count_claims(runbook: str, resource: str | None, since: datetime) -> tuple[int, int]:
    """(runs of ``runbook``, runs on ``resource``) that went ahead unattended since ``since``."""
    from sqlalchemy import select

    store = StateStore()
    store._ready()
    with store.engine.connect() as conn:
        details = conn.execute(select(audit_log.c.detail).where(
            audit_log.c.action == CLAIMED, audit_log.c.at >= since)).scalars().all()
    same_runbook = [d for d in details if (d or {}).get("runbook") == runbook]
    same_resource = [d for d in details if resource and (d or {}).get("resource") == resource]
    return len(same_runbook), len(same_resource)


# -- helpers ---------------------------------------------------------------------------------------
def _settings() -> Any:
    return get_settings()




def _series_of(alert: dict[str, Any]) -> str | None:
    """The series an alert is about (as triage's ``signal_of`` names it: ``alert.metric`` or the
    alarm's metric). Kept here: remediation sits below incidents in the package layers."""
    sid = alert.get("metric")
    if sid and str(sid).count("|") == 3:
        return str(sid)
    detail = (alert.get("raw") or {}).get("detail") or {}
    for query in (detail.get("configuration") or {}).get("metrics") or []:
        stat_block: dict[str, Any] = query.get("metricStat") or {}
        metric: dict[str, Any] = stat_block.get("metric") or {}
        if metric.get("name"):
            dims = {str(k): str(v) for k, v in (metric.get("dimensions") or {}).items()}
            return series_id(metric.get("namespace", ""), metric["name"], dims, stat_block.get("stat", "Average"))
    return None


def _num(value: Any) -> float | None:
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return None if out != out else out


def direction_of_alert(alert: dict[str, Any], alarm: dict[str, Any] | None = None) -> Direction | None:
    """above / below / unknown. Alarms: the comparison operator (the live alarm's when given);
    anomalies: the value against its band, else the detector's '(above)' / '(below)' reason."""
    if alert.get("source") == "cloudwatch_alarm":
        op = (alarm or {}).get("ComparisonOperator") or (
            ((alert.get("raw") or {}).get("detail") or {}).get("configuration") or {}).get("comparisonOperator")
        return "above" if op in _ABOVE_OPS else "below" if op in _BELOW_OPS else None
    labels = alert.get("labels") or {}
    value, lower, upper = _num(labels.get("value")), _num(labels.get("lower")), _num(labels.get("upper"))
    if value is not None and upper is not None and value > upper:
        return "above"
    if value is not None and lower is not None and value < lower:
        return "below"
    reason = str(labels.get("reason") or "")
    return "above" if "(above)" in reason else "below" if "(below)" in reason else None


def signal_direction(signal: dict[str, Any], incident: dict[str, Any]) -> Direction | None:
    """The direction of ``signal`` (a triage signal) from the incident's alerts about it."""
    for alert in incident.get("alerts") or []:
        if alert.get("event_id") == signal.get("event_id") or _series_of(alert) == signal.get("series_id"):
            found = direction_of_alert(alert)
            if found:
                return found
    return None


def _target(match: dict[str, Any]) -> tuple[str | None, str | None]:
    """(target kind, target id) of the match's runbook from the catalog metadata."""
    meta = load_catalog().get(match["runbook"]).metadata
    param = meta.targets_parameter
    if not param:
        return None, None
    value = (match.get("parameters") or {}).get(param)
    return meta.parameters[param].target, (str(value) if value else None)


def _rule_direction(match: dict[str, Any]) -> str | None:
    """``when.direction`` of the matched rule (``matching_runbooks`` and the grant carry it)."""
    value = match.get("direction")
    return str(value) if value else None


# -- the rule set ----------------------------------------------------------------------------------
def verify_cause(incident: dict[str, Any], match: dict[str, Any], *, now: datetime | None = None,
                 reads: CauseReads | None = None) -> PreapprovalDecision:
    """Do the incident's signals justify running ``match``'s pre-approved runbook unattended now?"""
    settings = _settings()
    now = now or datetime.now(UTC)
    reads = reads or AwsCauseReads()
    horizon = timedelta(minutes=settings.preapproval_signal_horizon_minutes)
    checks: list[Check] = []

    def check(name: str, ok: bool, detail: str) -> bool:
        checks.append(Check(name=name, ok=ok, detail=detail))
        return ok

    kind, resource = _target(match)
    decision = {"runbook": match["runbook"], "incident_id": incident.get("incident_id"), "resource": resource}
    series = match.get("signal")
    alerts = [a for a in incident.get("alerts") or []
              if a.get("state", "firing") == "firing" and _series_of(a) == series]
    if not check("signal", bool(alerts), f"{len(alerts)} firing alert(s) on {series}" if alerts
                 else f"no firing alert of the incident is about {series}"):
        return _decide(decision, checks, now)
    try:
        account, region = reads.account_id(), reads.region()
    except Exception as exc:  # cannot verify: fail closed
        check("account", False, f"could not read the platform's account/region: {type(exc).__name__}: {exc}")
        return _decide(decision, checks, now)

    alert = max(alerts, key=lambda a: _utc(a.get("time")) or datetime.min.replace(tzinfo=UTC))
    source = str(alert.get("source"))
    check("source", source in VERIFIABLE_SOURCES,
          f"{source} " + ("can justify a pre-approved runbook" if source in VERIFIABLE_SOURCES else
                          f"is not one of {', '.join(VERIFIABLE_SOURCES)}: it cannot justify an unattended change"))
    check("account", str(alert.get("account") or "") == account,
          f"event account {alert.get('account')!r} " + ("is" if alert.get("account") == account else "is not")
          + f" the platform's account {account}")
    check("region", str(alert.get("region") or "") == region,
          f"event region {alert.get('region')!r} " + ("is" if alert.get("region") == region else "is not")
          + f" the platform's region {region}")
    at = _utc(alert.get("time"))
    age = (now - at) if at else None
    check("fresh", age is not None and timedelta(0) - timedelta(minutes=5) <= age <= horizon,
          f"signal at {at.isoformat() if at else '?'} is {age.total_seconds() / 60:.1f} min old (horizon "
          f"{horizon.total_seconds() / 60:g} min)" if age is not None else "the signal has no time")

    live_alarm: dict[str, Any] | None = None
    if source == "cloudwatch_alarm":
        live_alarm = _check_alarm(alert, account, region, reads, check)
    wanted = _rule_direction(match)
    direction = direction_of_alert(alert, live_alarm)
    if wanted:
        check("direction", direction == wanted,
              f"the signal is {direction or 'of unknown direction'}; rule {match.get('rule')} fixes {wanted}")
    else:
        check("direction", False, f"rule {match.get('rule')} names no direction (when.direction): a pre-approved "
                                  "runbook needs one")

    if kind and resource:
        try:
            exists = reads.resource_exists(kind, resource)
        except Exception as exc:
            exists = False
            check("resource", False, f"could not describe {kind} {resource}: {type(exc).__name__}: {exc}")
        else:
            check("resource", exists, f"{kind} {resource} " + ("exists in" if exists else "does not exist in")
                  + f" account {account}")
    else:
        check("resource", False, "the runbook names no target resource to verify")

    if source == "aiops_anomaly":
        _check_corroboration(incident, alert, resource, now, horizon, reads, check)

    window = timedelta(minutes=settings.preapproval_rate_window_minutes)
    n_runbook, n_resource = reads.preapproved_runs(match["runbook"], resource, now - window)
    check("rate_limit", n_runbook < settings.preapproval_max_per_runbook
          and n_resource < settings.preapproval_max_per_resource,
          f"{n_runbook} unattended {match['runbook']} run(s) (limit {settings.preapproval_max_per_runbook}) and "
          f"{n_resource} on {resource} (limit {settings.preapproval_max_per_resource}) in the last "
          f"{window.total_seconds() / 60:g} min")
    return _decide(decision, checks, now)


def _check_alarm(alert: dict[str, Any], account: str, region: str, reads: CauseReads,
                 check: Any) -> dict[str, Any] | None:
    labels = alert.get("labels") or {}
    name = labels.get("alarm_name")
    arn = str(labels.get("alarm_arn") or "")
    if arn:
        parts = arn.split(":")
        claimed = (parts[3], parts[4]) if len(parts) > 5 else ("?", "?")
        check("alarm_arn", claimed == (region, account),
              f"alarm ARN names region/account {claimed[0]}/{claimed[1]}, the platform's is {region}/{account}")
    if not name:
        check("alarm", False, "the alarm event names no alarm")
        return None
    try:
        alarm = reads.describe_alarm(str(name))
    except Exception as exc:
        check("alarm", False, f"DescribeAlarms({name}) failed: {type(exc).__name__}: {exc}")
        return None
    if not check("alarm", alarm is not None, f"alarm {name} " + ("exists" if alarm else "does not exist")
                 + f" in {account}/{region}"):
        return None
    assert alarm is not None
    dims = {d["Name"]: d["Value"] for d in alarm.get("Dimensions") or []}
    same = (alarm.get("MetricName") == labels.get("metric_name")
            and dims == {str(k): str(v) for k, v in (labels.get("dimensions") or {}).items()})
    check("alarm_metric", same, f"alarm {name} watches {alarm.get('Namespace')}/{alarm.get('MetricName')} {dims}"
          + ("" if same else f", the event claims {labels.get('metric_name')} {labels.get('dimensions')}"))
    check("alarm_state", alarm.get("StateValue") == "ALARM", f"alarm {name} is {alarm.get('StateValue')} now")
    return alarm


_RESOURCE_DIMENSIONS = ("InstanceId", "DBInstanceIdentifier", "AutoScalingGroupName", "VolumeId")


def _check_corroboration(incident: dict[str, Any], alert: dict[str, Any], resource: str | None, now: datetime,
                         horizon: timedelta, reads: CauseReads, check: Any) -> None:
    """A detector-only anomaly needs a second opinion the event itself cannot forge."""
    dims = (alert.get("labels") or {}).get("dimensions") or {}
    found: list[str] = []
    for dim in _RESOURCE_DIMENSIONS:
        value = dims.get(dim) or (resource if dim == "InstanceId" and str(resource or "").startswith("i-") else None)
        if value:
            try:
                found += [f"alarm {n} in ALARM" for n in reads.alarms_in_alarm_on(dim, str(value))]
            except Exception as exc:
                log.info("corroboration: DescribeAlarms failed: %s", exc)
            break
    primary_series = _series_of(alert)
    for other in incident.get("alerts") or []:
        at = _utc(other.get("time"))
        if other is alert or other.get("state", "firing") != "firing" or at is None or now - at > horizon:
            continue
        if other.get("source") == "aiops_slo":
            slo_id = str((other.get("labels") or {}).get("slo_id") or "")
            if slo_id and reads.slo_burning(slo_id, now - horizon):
                found.append(f"SLO {slo_id} burning (recorded by the SLO tracker)")
        elif other.get("source") in VERIFIABLE_SOURCES and _series_of(other) not in (None, primary_series) \
                and other.get("account") == alert.get("account"):
            found.append(f"second signal {_series_of(other)} ({other.get('source')})")
    check("corroborated", bool(found), "; ".join(found) if found else
          "a detector-only anomaly with no alarm in ALARM on the resource, no SLO burn and no second signal")


def _decide(decision: dict[str, Any], checks: list[Check], now: datetime) -> PreapprovalDecision:
    reasons = [f"{c.name}: {c.detail}" for c in checks if not c.ok]
    return PreapprovalDecision(**decision, preapproved=not reasons, reasons=reasons, checks=checks, decided_at=now)


# -- incident_response side ------------------------------------------------------------------------
def decide_for_incident(incident: dict[str, Any], match: dict[str, Any], *, now: datetime | None = None,
                        reads: CauseReads | None = None) -> PreapprovalDecision | None:
    """None for a runbook that needs approval anyway; else the verified decision."""
    if match.get("approval") != "pre-approved":
        return None
    try:
        return verify_cause(incident, match, now=now, reads=reads)
    except Exception as exc:  # any failure to verify is a refusal, never a pass
        log.warning("pre-approval check for %s failed: %s", incident.get("incident_id"), exc)
        return PreapprovalDecision(runbook=match["runbook"], incident_id=incident.get("incident_id"),
                                   preapproved=False, reasons=[f"verification failed: {type(exc).__name__}: {exc}"],
                                   decided_at=now or datetime.now(UTC))


def record_grant(decision: PreapprovalDecision, match: dict[str, Any], *, remediate_run: str,
                 run_id: str | None) -> int:
    """The platform's grant (or refusal) in the audit log; ``remediate`` looks it up, never its conf."""
    detail = {"runbook": match["runbook"], "parameters": match.get("parameters") or {},
              "rule": match.get("rule"), "signal": match.get("signal"), "direction": match.get("direction"),
              "resource": decision.resource, "remediate_run": remediate_run,
              "decision": decision.model_dump(mode="json")}
    return StateStore().audit(actor="incident_response", action=GRANTED if decision.preapproved else REFUSED,
                              subject=f"incident:{decision.incident_id}", detail=detail, run_id=run_id,
                              note=decision.summary)


# -- remediate side --------------------------------------------------------------------------------
class PlanGate(BaseModel):
    """What ``make_plan`` needs: the rounds, who approves when it falls back, and the decision."""

    rounds: int
    approver_users: list[str]
    approver_roles: list[str]
    decision: PreapprovalDecision

    fell_back: bool = False

    @property
    def notes(self) -> list[str]:
        """Shown to the approver: why a pre-approved runbook asks for an approval this time."""
        return ["pre-approval not granted (" + "; ".join(self.decision.reasons) + ")"] if self.fell_back else []


def _find_grant(incident_id: str, runbook: str, parameters: dict[str, Any], now: datetime) -> dict[str, Any] | None:
    from sqlalchemy import select

    ttl = timedelta(minutes=_settings().preapproval_grant_ttl_minutes)
    store = StateStore()
    store._ready()
    with store.engine.connect() as conn:
        rows = [dict(r._mapping) for r in conn.execute(select(audit_log).where(
            audit_log.c.action.in_([GRANTED, REFUSED, CLAIMED]), audit_log.c.at >= now - ttl))]
    claimed = {(r["detail"] or {}).get("grant_id") for r in rows if r["action"] == CLAIMED}
    wanted = json.dumps(parameters, sort_keys=True, default=str)
    for row in sorted(rows, key=lambda r: r["id"], reverse=True):
        detail = row["detail"] or {}
        if (row["action"] in (GRANTED, REFUSED) and row["subject"] == f"incident:{incident_id}"
                and row["id"] not in claimed and detail.get("runbook") == runbook
                and json.dumps(detail.get("parameters") or {}, sort_keys=True, default=str) == wanted):
            return row  # the platform's newest word on this incident, runbook and parameters
    return None


def _incident(incident_id: str) -> dict[str, Any] | None:
    """The incident row as the platform stored it (read directly: remediation is below incidents)."""
    from sqlalchemy import select

    store = StateStore()
    store._ready()
    with store.engine.connect() as conn:
        row = conn.execute(select(incidents).where(incidents.c.incident_id == incident_id)).first()
    return dict(row._mapping) if row else None


def gate_plan(conf: dict[str, Any], *, runbook: Any, parameters: dict[str, Any], request_id: str, run_id: str,
              now: datetime | None = None, reads: CauseReads | None = None) -> PlanGate:
    """Approval rounds for a remediate request; for a pre-approved runbook only a platform grant
    for this incident, runbook and parameters, re-verified now, lets it run without a human."""

    meta = runbook.metadata
    now = now or datetime.now(UTC)
    users, roles = list(meta.approvers.users), list(meta.approvers.roles)
    base = {"runbook": runbook.id, "incident_id": conf.get("incident_id"), "decided_at": now}
    if meta.approval != "pre-approved":
        return PlanGate(rounds=APPROVAL_ROUNDS[meta.approval], approver_users=users, approver_roles=roles,
                        decision=PreapprovalDecision(**base, preapproved=False,
                                                     reasons=[f"runbook policy is {meta.approval}"]))

    def fallback(reasons: list[str], decision: PreapprovalDecision | None = None) -> PlanGate:
        decision = decision or PreapprovalDecision(**base, preapproved=False, reasons=reasons)
        StateStore().audit(actor="aiops", action=REFUSED, subject=f"remediation:{request_id}", run_id=run_id,
                           detail=decision.model_dump(mode="json"), note=decision.summary)
        return PlanGate(rounds=1, approver_users=users,
                        approver_roles=roles or list(_settings().preapproval_fallback_approver_roles),
                        decision=decision, fell_back=True)

    incident_id = conf.get("incident_id")
    if not incident_id:
        return fallback(["not started by the platform's incident path (a manual or scheduled request); "
                         "a pre-approved runbook runs unattended only for a verified incident cause"])
    grant = _find_grant(str(incident_id), runbook.id, parameters, now)
    if grant is None:
        return fallback([f"no unclaimed platform grant for incident {incident_id}, runbook {runbook.id} and these "
                         f"parameters in the last {_settings().preapproval_grant_ttl_minutes:g} min"])
    incident = _incident(str(incident_id))
    if incident is None:
        return fallback([f"incident {incident_id} not found in the state store"])
    detail = grant["detail"] or {}
    if grant["action"] == REFUSED:
        refused = PreapprovalDecision.model_validate(detail.get("decision") or {**base, "preapproved": False})
        return fallback(refused.reasons or ["the platform refused pre-approval"], refused)
    if incident["state"] != "remediating" or (incident.get("links") or {}).get("remediate_run") != \
            f"remediate/{detail.get('remediate_run')}":
        return fallback([f"incident {incident_id} is {incident['state']} and its remediation is "
                         f"{(incident.get('links') or {}).get('remediate_run')}, not the granted run"])
    match = {"runbook": runbook.id, "parameters": parameters, "approval": meta.approval,
             "rule": detail.get("rule"), "signal": detail.get("signal"), "direction": detail.get("direction")}
    decision = decide_for_incident(incident, match, now=now, reads=reads)
    assert decision is not None
    decision.grant_id = int(grant["id"])
    if not decision.preapproved:
        return fallback(decision.reasons, decision)
    StateStore().audit(actor="aiops", action=CLAIMED, subject=f"remediation:{request_id}", run_id=run_id,
                       detail={"grant_id": grant["id"], "runbook": runbook.id, "resource": decision.resource,
                               "incident_id": incident_id, "decision": decision.model_dump(mode="json")},
                       note=decision.summary)
    return PlanGate(rounds=0, approver_users=users, approver_roles=roles, decision=decision)
