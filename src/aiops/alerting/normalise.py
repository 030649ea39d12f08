"""Normalise EventBridge events (SQS message bodies) to :class:`~aiops.core.alerts.Alert`.

One normaliser per event family, registered by ``(source, detail-type)`` in :data:`NORMALISERS`
(a new family is one decorated function). :func:`normalise_message` never raises: malformed JSON,
an envelope without ``detail``, an unknown detail-type or a normaliser failing on a payload it did
not expect all become a :class:`DeadLetter` with the reason, so one bad message never blocks the
batch behind it.

Severity set here is a *guess* from the payload; the YAML severity rules (``aiops.alerting.rules``)
decide the final value. Fingerprints identify "the same condition on the same resource" so the
engine can de-duplicate repeats; ``event_id`` identifies one delivery (re-deliveries share it).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

from pydantic import ValidationError

from aiops.anomaly.model import AnomalyEvent
from aiops.core.alerts import Alert, Severity, fingerprint

Normaliser = Callable[[dict[str, Any]], Alert]
NORMALISERS: dict[tuple[str, str], Normaliser] = {}
SECURITY_SOURCES = frozenset({"securityhub", "guardduty", "security_event"})


@dataclass
class DeadLetter:
    reason: str
    body: str
    message_id: str | None = None
    source: str | None = None
    detail_type: str | None = None
    received_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    @property
    def key(self) -> str:
        """Idempotency key: the same bad message re-delivered is recorded once."""
        return hashlib.sha256(f"{self.reason}|{self.body}".encode()).hexdigest()[:32]


class MalformedEvent(ValueError):
    """The payload lacks a field its family always carries."""


def normaliser(source: str, *detail_types: str) -> Callable[[Normaliser], Normaliser]:
    def register(fn: Normaliser) -> Normaliser:
        for dt in detail_types:
            if (source, dt) in NORMALISERS:
                raise ValueError(f"normaliser for {source!r} / {dt!r} registered twice")
            NORMALISERS[(source, dt)] = fn
        return fn
    return register


# --- helpers --------------------------------------------------------------------------------------
def parse_time(value: Any) -> datetime:
    """ISO 8601 (``Z``, ``+0000``, fractional seconds) or RFC 1123 (AWS Health) to aware UTC."""
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if not isinstance(value, str) or not value:
        raise MalformedEvent(f"time {value!r} is not a timestamp")
    text = value.strip()
    try:
        if re.match(r"^[A-Z][a-z]{2}, ", text):
            return parsedate_to_datetime(text).astimezone(UTC)
        text = text.replace("Z", "+00:00")
        text = re.sub(r"([+-]\d{2})(\d{2})$", r"\1:\2", text)
        parsed = datetime.fromisoformat(text)
    except (ValueError, TypeError) as exc:
        raise MalformedEvent(f"time {value!r} is not a timestamp") from exc
    return parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _require(detail: dict[str, Any], *keys: str) -> None:
    missing = [k for k in keys if k not in detail or detail[k] in (None, "")]
    if missing:
        raise MalformedEvent(f"detail lacks {', '.join(missing)}")


def _validation_problems(exc: ValidationError) -> str:
    """``detail.<field>: <problem>`` for each error pydantic found (unknown keys included)."""
    return "; ".join(f"detail.{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors())


def _tail(arn: str | None) -> str | None:
    """Resource id from an ARN (``...:instance/i-1`` -> ``i-1``, ``...:db:name`` -> ``name``)."""
    if not arn:
        return arn
    return re.split(r"[:/]", arn)[-1]


def _series_id(namespace: str, metric: str, dimensions: dict[str, str], stat: str) -> str:
    dims = ",".join(f"{k}={dimensions[k]}" for k in sorted(dimensions))
    return f"{namespace}|{metric}|{dims}|{stat}"


def _resource_from_dimensions(dimensions: dict[str, str]) -> tuple[str | None, str | None]:
    for key, rtype in (("InstanceId", "ec2:instance"), ("DBInstanceIdentifier", "rds:db"),
                       ("TargetGroup", "elasticloadbalancing:targetgroup"),
                       ("LoadBalancer", "elasticloadbalancing:loadbalancer"),
                       ("AutoScalingGroupName", "autoscaling:autoScalingGroup"), ("VolumeId", "ec2:volume")):
        if dimensions.get(key):
            return dimensions[key], rtype
    return None, None


def _base(event: dict[str, Any], **kw: Any) -> dict[str, Any]:
    return {"event_id": str(event["id"]), "time": parse_time(event["time"]), "region": event.get("region"),
            "account": event.get("account"), "raw": event, **kw}


# --- AWS families ---------------------------------------------------------------------------------
@normaliser("aws.cloudwatch", "CloudWatch Alarm State Change")
def cloudwatch_alarm(event: dict[str, Any]) -> Alert:
    d = event["detail"]
    _require(d, "alarmName", "state")
    state = d["state"].get("value")
    if state not in ("ALARM", "OK", "INSUFFICIENT_DATA"):
        raise MalformedEvent(f"detail.state.value {state!r} is not an alarm state")
    metrics = (d.get("configuration") or {}).get("metrics") or []
    stat = next((m["metricStat"] for m in metrics if "metricStat" in m), None)
    metric = resource = rtype = None
    dims: dict[str, str] = {}
    if stat:
        m = stat["metric"]
        dims = dict(m.get("dimensions") or {})
        metric = _series_id(m["namespace"], m["name"], dims, stat.get("stat", "Average"))
        resource, rtype = _resource_from_dimensions(dims)
    arn = (event.get("resources") or [None])[0]
    when = parse_time(d["state"].get("timestamp") or event["time"])
    return Alert(**_base(event, time=when), source="cloudwatch_alarm", resource=resource or arn,
                 resource_type=rtype or "cloudwatch:alarm", metric=metric,
                 title=f"{d['alarmName']} is {state}", summary=d["state"].get("reason", ""),
                 state="firing" if state == "ALARM" else "resolved",
                 severity="high" if state == "ALARM" else "info",
                 fingerprint=fingerprint("cloudwatch_alarm", arn or d["alarmName"]),
                 labels={"alarm_name": d["alarmName"], "alarm_arn": arn, "state": state,
                         "previous_state": (d.get("previousState") or {}).get("value"),
                         "metric_name": stat["metric"]["name"] if stat else None, "dimensions": dims,
                         "description": (d.get("configuration") or {}).get("description", "")})


_EC2_SEVERITY: dict[str, Severity] = {"pending": "info", "running": "info", "stopping": "low", "stopped": "medium",
                                      "shutting-down": "medium", "terminated": "medium"}


@normaliser("aws.ec2", "EC2 Instance State-change Notification")
def ec2_state(event: dict[str, Any]) -> Alert:
    d = event["detail"]
    _require(d, "instance-id", "state")
    iid, state = d["instance-id"], d["state"]
    return Alert(**_base(event), source="ec2_state", resource=iid, resource_type="ec2:instance",
                 title=f"EC2 instance {iid} is {state}", summary=f"{iid} changed state to {state}",
                 state="resolved" if state == "running" else "firing", severity=_EC2_SEVERITY.get(state, "low"),
                 fingerprint=fingerprint("ec2_state", iid), labels={"instance_state": state})


_RDS_CATEGORY_SEVERITY: dict[str, Severity] = {"failure": "critical", "failover": "high", "low storage": "high",
                                               "availability": "high", "recovery": "medium", "maintenance": "low",
                                               "notification": "info", "configuration change": "info",
                                               "backup": "info"}


@normaliser("aws.rds", "RDS DB Instance Event")
def rds_event(event: dict[str, Any]) -> Alert:
    d = event["detail"]
    _require(d, "SourceIdentifier", "EventID", "Message")
    cats = [str(c).lower() for c in d.get("EventCategories") or []]
    order = ["info", "low", "medium", "high", "critical"]
    sev: Severity = max((_RDS_CATEGORY_SEVERITY.get(c, "medium") for c in cats), key=order.index, default="medium")
    db = _tail(d["SourceIdentifier"]) or d["SourceIdentifier"]
    return Alert(**_base(event, time=parse_time(d.get("Date") or event["time"])), source="rds_event",
                 resource=d.get("SourceArn") or db, resource_type="rds:db",
                 title=f"RDS {db}: {d['Message']}"[:200], summary=d["Message"], severity=sev,
                 fingerprint=fingerprint("rds_event", db, d["EventID"]),
                 labels={"db_instance": db, "rds_event_id": d["EventID"], "categories": cats})


@normaliser("aws.autoscaling", "EC2 Instance Launch Successful", "EC2 Instance Launch Unsuccessful",
            "EC2 Instance Terminate Successful", "EC2 Instance Terminate Unsuccessful")
def asg_event(event: dict[str, Any]) -> Alert:
    d = event["detail"]
    _require(d, "AutoScalingGroupName")
    dt = event["detail-type"]
    failed = "Unsuccessful" in dt
    asg = d["AutoScalingGroupName"]
    iid = d.get("EC2InstanceId") or None
    return Alert(**_base(event), source="asg_event", resource=asg, resource_type="autoscaling:autoScalingGroup",
                 title=f"{asg}: {dt}" + (f" ({iid})" if iid else ""), summary=d.get("Cause") or d.get("Description", ""),
                 severity="high" if failed else "info", state="firing",
                 fingerprint=fingerprint("asg_event", asg, dt, iid),
                 labels={"asg": asg, "instance_id": iid, "activity": dt, "status_code": d.get("StatusCode"),
                         "status_message": d.get("StatusMessage", "")})


_ASFF_SEVERITY: dict[str, Severity] = {"INFORMATIONAL": "info", "LOW": "low", "MEDIUM": "medium", "HIGH": "high",
                                       "CRITICAL": "critical"}
_ASFF_RESOURCE_TYPES = {"AwsEc2Instance": "ec2:instance", "AwsEc2SecurityGroup": "ec2:security-group",
                        "AwsS3Bucket": "s3:bucket", "AwsRdsDbInstance": "rds:db", "AwsIamUser": "iam:user",
                        "AwsIamAccessKey": "iam:access-key", "AwsEc2Volume": "ec2:volume",
                        "AwsIamPolicy": "iam:policy"}


@normaliser("aws.securityhub", "Security Hub Findings - Imported")
def securityhub(event: dict[str, Any]) -> Alert:
    d = event["detail"]
    findings = d.get("findings")
    if not isinstance(findings, list) or not findings:
        raise MalformedEvent("detail lacks findings")
    # EventBridge delivers one finding per event; a batch would be split by the intake (see split_event)
    f = findings[0]
    _require(f, "Id", "Title", "Resources")
    res = f["Resources"][0]
    label = (f.get("Severity") or {}).get("Label", "MEDIUM")
    resolved = f.get("RecordState") == "ARCHIVED" or (f.get("Workflow") or {}).get("Status") in ("RESOLVED", "SUPPRESSED") \
        or (f.get("Compliance") or {}).get("Status") == "PASSED"
    return Alert(**_base(event, time=parse_time(f.get("UpdatedAt") or event["time"])), source="securityhub",
                 resource=_tail(res["Id"]) if res["Id"].startswith("arn:") else res["Id"],
                 resource_type=_ASFF_RESOURCE_TYPES.get(res.get("Type", ""), res.get("Type")),
                 title=f["Title"][:200], summary=f.get("Description", ""),
                 severity=_ASFF_SEVERITY.get(label, "medium"), state="resolved" if resolved else "firing",
                 fingerprint=fingerprint("securityhub", f["Id"]),
                 labels={"finding_id": f["Id"], "generator_id": f.get("GeneratorId"),
                         "control_id": (f.get("ProductFields") or {}).get("ControlId"), "severity_label": label,
                         "resource_arn": res["Id"], "product": f.get("ProductName") or f.get("ProductArn")})


@normaliser("aws.guardduty", "GuardDuty Finding")
def guardduty(event: dict[str, Any]) -> Alert:
    d = event["detail"]
    _require(d, "id", "type", "severity", "resource")
    sev_num = float(d["severity"])
    # GuardDuty bands: 1.0-3.9 low, 4.0-6.9 medium, 7.0-8.9 high, 9.0-10.0 critical
    sev: Severity = "critical" if sev_num >= 9 else "high" if sev_num >= 7 else "medium" if sev_num >= 4 else "low"
    r = d["resource"]
    rtype = r.get("resourceType")
    resource = None
    if rtype == "Instance":
        resource = (r.get("instanceDetails") or {}).get("instanceId")
    elif rtype == "AccessKey":
        resource = (r.get("accessKeyDetails") or {}).get("userName")
    elif rtype == "S3Bucket":
        resource = ((r.get("s3BucketDetails") or [{}])[0]).get("name")
    service = d.get("service") or {}
    return Alert(**_base(event, time=parse_time(service.get("eventLastSeen") or d.get("updatedAt") or event["time"])),
                 source="guardduty", resource=resource,
                 resource_type={"Instance": "ec2:instance", "AccessKey": "iam:user", "S3Bucket": "s3:bucket"}.get(
                     rtype or "", rtype),
                 title=(d.get("title") or d["type"])[:200], summary=d.get("description", ""), severity=sev,
                 fingerprint=fingerprint("guardduty", d["id"]),
                 labels={"finding_type": d["type"], "finding_id": d["id"], "guardduty_severity": sev_num,
                         "count": service.get("count"), "archived": service.get("archived")})


@normaliser("aws.health", "AWS Health Event")
def health(event: dict[str, Any]) -> Alert:
    d = event["detail"]
    _require(d, "eventArn", "service", "eventTypeCode")
    entities = [e.get("entityValue") for e in d.get("affectedEntities") or [] if e.get("entityValue")]
    entities = entities or list(event.get("resources") or [])
    desc = next((x.get("latestDescription", "") for x in d.get("eventDescription") or []), "")
    category = d.get("eventTypeCategory", "issue")
    sev: Severity = "high" if category == "issue" else "medium" if category == "scheduledChange" else "info"
    status = d.get("statusCode", "open")
    resource = entities[0] if entities else None
    return Alert(**_base(event, time=parse_time(d.get("startTime") or event["time"])), source="health",
                 resource=resource, resource_type="ec2:instance" if (resource or "").startswith("i-") else None,
                 title=f"AWS Health: {d['service']} {d['eventTypeCode']}"[:200], summary=desc[:2000], severity=sev,
                 state="resolved" if status == "closed" else "firing",
                 fingerprint=fingerprint("health", d["eventArn"], resource),
                 labels={"event_arn": d["eventArn"], "event_type": d["eventTypeCode"], "category": category,
                         "aws_service": d["service"], "entities": entities, "status": status})


# --- our own events -------------------------------------------------------------------------------
#: An anomaly this far outside its band (in band half-widths) with this much evidence (-log10 p) is
#: a clear departure (a pinned CPU, a 5xx surge), paged at medium even where the bounded score sits
#: just under 0.9 — the score saturates slowly (surprise 31 -> 0.896), the evidence does not.
CLEAR_DEPARTURE_BANDS = 3.0
CLEAR_DEPARTURE_SURPRISE = 20.0


def anomaly_severity(score: float, evidence: dict[str, Any]) -> Severity:
    """The initial severity of a detector anomaly (severity rules may still change it).

    ``high`` at score >= 0.99; ``medium`` at score >= 0.9 or for a clear departure (residual at least
    :data:`CLEAR_DEPARTURE_BANDS` band half-widths out, surprise at least
    :data:`CLEAR_DEPARTURE_SURPRISE`); otherwise ``low`` (a ticket, nobody paged)."""
    if score >= 0.99:
        return "high"
    try:
        bands = float(evidence.get("residual_vs_band") or 0.0)
        surprise = float(evidence.get("surprise") or 0.0)
    except (TypeError, ValueError):
        bands = surprise = 0.0
    if score >= 0.9 or (bands >= CLEAR_DEPARTURE_BANDS and surprise >= CLEAR_DEPARTURE_SURPRISE):
        return "medium"
    return "low"


@normaliser("matcarv.aiops", "AIOps Anomaly Detected")
def aiops_anomaly(event: dict[str, Any]) -> Alert:
    try:  # the detail is the anomaly_detection publish task's AnomalyEvent: the same model reads it
        e = AnomalyEvent.model_validate(event["detail"])
    except ValidationError as exc:
        raise MalformedEvent(_validation_problems(exc)) from exc
    d = e.model_dump(mode="json")
    sev = anomaly_severity(e.anomaly_score, d["evidence"] or {})
    return Alert(**_base(event, time=e.onset), source="aiops_anomaly",
                 resource=e.resource_id, resource_type=_resource_from_dimensions(e.dimensions)[1],
                 service=e.service, env=e.env, team=e.team, metric=e.series_id,
                 title=f"Anomaly: {e.metric} on {e.resource_id or '?'} ({e.reason})",
                 summary=(f"value {e.value} vs forecast {e.forecast} "
                          f"[{e.lower}, {e.upper}], score {e.anomaly_score:.3f}"),
                 severity=sev, fingerprint=fingerprint("aiops_anomaly", e.series_id),
                 labels={k: d[k] for k in ("namespace", "metric", "dimensions", "stat", "value", "forecast",
                                           "lower", "upper", "anomaly_score", "reason", "run_id",
                                           "calibrated_score", "p_value", "evidence")}
                 | {"anomaly_fingerprint": e.fingerprint, "observed_at": d["observed_at"] or d["onset"],
                    "data_age_seconds": e.data_age_seconds})


@normaliser("matcarv.aiops", "AIOps SLO Burn Rate")
def aiops_slo(event: dict[str, Any]) -> Alert:
    d = event["detail"]
    _require(d, "slo_id", "severity", "service")
    slo_severity: dict[str, Severity] = {"page": "critical", "ticket": "medium"}
    sev = slo_severity.get(d["severity"], "low")
    budget = d.get("budget_remaining")
    return Alert(**_base(event, time=parse_time(d.get("evaluated_at") or event["time"])), source="aiops_slo",
                 resource=f"slo:{d['slo_id']}", resource_type="aiops:slo", service=d["service"], env=d.get("env"),
                 team=d.get("team"), title=f"SLO {d['slo_id']} burning error budget ({d['severity']})",
                 summary=(d.get("description") or "") + (f"; budget remaining {budget:.1%}" if isinstance(budget, float)
                                                         else ""),
                 severity=sev, fingerprint=fingerprint("aiops_slo", d["slo_id"], d["severity"]),
                 labels={"slo_id": d["slo_id"], "slo_severity": d["severity"], "objective": d.get("objective"),
                         "sli": d.get("sli"), "budget_remaining": budget, "burn_rates": d.get("burn_rates"),
                         "slo_fingerprint": d.get("fingerprint"),
                         "observed_at": d.get("observed_at") or d.get("evaluated_at") or event["time"],
                         "data_age_seconds": d.get("data_age_seconds")})


@normaliser("matcarv.aiops", "AIOps Config Error")
def aiops_config_error(event: dict[str, Any]) -> Alert:
    """A broken file under include/ (see :func:`aiops.core.config.config_error_event`)."""
    d = event["detail"]
    _require(d, "file", "problems")
    problems = [str(p) for p in d["problems"]]
    return Alert(**_base(event), source="aiops_config", resource=f"config:{d['file']}", resource_type="aiops:config",
                 service="aiops", title=f"Config error in {d['file']} ({d.get('action', 'not applied')})"[:200],
                 summary="; ".join(problems)[:2000], severity="high",
                 fingerprint=fingerprint("aiops_config", d["file"]),
                 labels={"file": d["file"], "component": d.get("component"), "action": d.get("action"),
                         "problems": problems})


_SEVERITIES: dict[str, Severity] = {"info": "info", "informational": "info", "low": "low", "medium": "medium",
                                     "high": "high", "critical": "critical"}


@normaliser("matcarv.aiops", "AIOps Security Event")
def aiops_security(event: dict[str, Any]) -> Alert:
    d = event["detail"]
    _require(d, "detection", "severity", "title")
    severity: Severity = _SEVERITIES.get(str(d["severity"]).lower(), "medium")
    resource = d.get("resource") or d.get("actor")
    return Alert(**_base(event, time=parse_time(d.get("event_time") or event["time"])), source="security_event",
                 resource=resource, resource_type=None, title=str(d["title"])[:200],
                 summary=f"{d['detection']} by {d.get('actor') or 'unknown'}", severity=severity,
                 fingerprint=fingerprint("security_event", d["detection"], resource),
                 labels={"detection": d["detection"], "actor": d.get("actor"), "event_ids": d.get("event_ids") or [],
                         "log_keys": d.get("log_keys") or [], "evidence": d.get("evidence") or {}})


# --- entry point ----------------------------------------------------------------------------------
_ENVELOPE = ("id", "detail-type", "source", "time", "detail")


def split_event(event: dict[str, Any]) -> list[dict[str, Any]]:
    """A Security Hub event carrying several findings becomes one event per finding (ids suffixed)."""
    findings = (event.get("detail") or {}).get("findings") if event.get("source") == "aws.securityhub" else None
    if not isinstance(findings, list) or len(findings) <= 1:
        return [event]
    return [{**event, "id": f"{event['id']}#{i}", "detail": {**event["detail"], "findings": [f]}}
            for i, f in enumerate(findings)]


def normalise_message(body: str | bytes | dict[str, Any], *, message_id: str | None = None,
                      received_at: datetime | None = None) -> list[Alert | DeadLetter]:
    """One SQS message body (an EventBridge event) -> alerts, or a dead letter naming the reason."""
    raw = body if isinstance(body, str) else body.decode("utf-8", "replace") if isinstance(body, bytes) \
        else json.dumps(body, default=str)

    def dead(reason: str, event: dict[str, Any] | None = None) -> list[Alert | DeadLetter]:
        return [DeadLetter(reason=reason, body=raw, message_id=message_id,
                           source=(event or {}).get("source"), detail_type=(event or {}).get("detail-type"))]

    if isinstance(body, dict):
        event: Any = body
    else:
        try:
            event = json.loads(raw)
        except ValueError as exc:
            return dead(f"bad JSON: {exc}")
    if not isinstance(event, dict):
        return dead(f"not an EventBridge event: a JSON {type(event).__name__}")
    missing = [k for k in _ENVELOPE if k not in event]
    if missing:
        return dead(f"envelope lacks {', '.join(missing)}", event)
    if not isinstance(event["detail"], dict):
        return dead("detail is not an object", event)
    fn = NORMALISERS.get((event["source"], event["detail-type"]))
    if fn is None:
        return dead(f"unknown event type: source {event['source']!r}, detail-type {event['detail-type']!r}", event)
    out: list[Alert | DeadLetter] = []
    for part in split_event(event):
        try:
            alert = fn(part)
        except (MalformedEvent, KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:
            reason = str(exc) if isinstance(exc, MalformedEvent) else f"{type(exc).__name__}: {exc}"
            out.extend(dead(f"malformed {event['detail-type']}: {reason}", event))
            continue
        alert.received_at = received_at or datetime.now(UTC)
        out.append(alert)
    return out


def normalise_batch(bodies: list[Any]) -> tuple[list[Alert], list[DeadLetter]]:
    """Bodies are strings/dicts, or ``{"Body": ..., "MessageId": ...}`` SQS messages."""
    alerts: list[Alert] = []
    dead: list[DeadLetter] = []
    for item in bodies:
        message_id = None
        if isinstance(item, dict) and "Body" in item and "detail-type" not in item:
            message_id, item = item.get("MessageId"), item["Body"]
        for result in normalise_message(item, message_id=message_id):
            (alerts if isinstance(result, Alert) else dead).append(result)  # type: ignore[arg-type]
    return alerts, dead


def category(alert: Alert) -> str:
    """``security`` or ``ops``: security findings are grouped and routed apart from operational alerts."""
    return "security" if alert.source in SECURITY_SOURCES else "ops"
