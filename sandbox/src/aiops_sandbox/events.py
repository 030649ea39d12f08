"""Real-shaped EventBridge events for the simulated account, and a way to send them.

Each builder returns the exact envelope EventBridge delivers to a target (``version``, ``id``,
``detail-type``, ``source``, ``account``, ``time``, ``region``, ``resources``, ``detail``), with the
``detail`` shaped as the AWS documentation shows for that event family:

* ``aws.cloudwatch``  "CloudWatch Alarm State Change"
* ``aws.ec2``         "EC2 Instance State-change Notification"
* ``aws.rds``         "RDS DB Instance Event"
* ``aws.autoscaling`` "EC2 Instance Launch Successful" / "... Unsuccessful" / "EC2 Instance Terminate ..."
* ``aws.securityhub`` "Security Hub Findings - Imported" (ASFF findings inside)
* ``aws.guardduty``   "GuardDuty Finding"
* ``aws.health``      "AWS Health Event"
* ``matcarv.aiops``   "AIOps Anomaly Detected", "AIOps SLO Burn Rate", "AIOps Security Event"

The emulator cannot produce most of these itself (a CloudWatch alarm changing state does not emit
an event in moto), so the simulator builds them and :func:`put_ops_events` sends them through
EventBridge ``PutEvents``; the ``aiops-ops-events`` rule routes them to the SQS queue the
``alert_intake`` DAG watches, exactly as on AWS. Builders are pure (no AWS calls); pass ``event_id``
and ``time`` for deterministic output.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

ACCOUNT = "123456789012"
REGION = "us-east-1"

AIOPS_SOURCE = "matcarv.aiops"
ANOMALY_DETAIL_TYPE = "AIOps Anomaly Detected"  # = aiops.anomaly.pipeline.ALERT_DETAIL_TYPE
SLO_DETAIL_TYPE = "AIOps SLO Burn Rate"  # = aiops.slo.pipeline.ALERT_DETAIL_TYPE
SECURITY_DETAIL_TYPE = "AIOps Security Event"  # emitted by the security-events pipeline (issue 7)

ASG_DETAIL_TYPES = ("EC2 Instance Launch Successful", "EC2 Instance Launch Unsuccessful",
                    "EC2 Instance Terminate Successful", "EC2 Instance Terminate Unsuccessful")


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def _iso(t: datetime) -> str:
    """EventBridge envelope time: second precision, ``Z``."""
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _iso_ms(t: datetime) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


def envelope(source: str, detail_type: str, detail: dict[str, Any], *, resources: list[str] | None = None,
             time: datetime | None = None, event_id: str | None = None, account: str = ACCOUNT,
             region: str = REGION) -> dict[str, Any]:
    """The EventBridge event envelope as delivered to targets (SQS message body)."""
    return {"version": "0", "id": event_id or str(uuid.uuid4()), "detail-type": detail_type, "source": source,
            "account": account, "time": _iso(time or _now()), "region": region,
            "resources": list(resources or []), "detail": detail}


# --- AWS services ---------------------------------------------------------------------------------
def cloudwatch_alarm(alarm_name: str, *, namespace: str, metric: str, dimensions: dict[str, str],
                     state: str = "ALARM", previous_state: str = "OK", stat: str = "Average", period: int = 300,
                     threshold: float = 80.0, value: float = 95.0, description: str = "",
                     time: datetime | None = None, event_id: str | None = None, account: str = ACCOUNT,
                     region: str = REGION) -> dict[str, Any]:
    """"CloudWatch Alarm State Change" (single-metric alarm)."""
    t = time or _now()
    stamp = t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}+0000"
    op = "GreaterThanThreshold"
    reason_data = {"version": "1.0", "queryDate": stamp, "startDate": stamp, "statistic": stat,
                   "period": period, "recentDatapoints": [value], "threshold": threshold,
                   "evaluatedDatapoints": [{"timestamp": stamp, "sampleCount": 1.0, "value": value}]}
    if state == "ALARM":
        reason = (f"Threshold Crossed: 1 out of the last 1 datapoints [{value} ({stamp})] was greater than the "
                  f"threshold ({threshold}) (minimum 1 datapoint for OK -> ALARM transition).")
    else:
        reason = (f"Threshold Crossed: 1 out of the last 1 datapoints [{value} ({stamp})] was not greater than "
                  f"the threshold ({threshold}) (minimum 1 datapoint for ALARM -> OK transition).")
    detail = {
        "alarmName": alarm_name,
        "state": {"value": state, "reason": reason, "reasonData": json.dumps(reason_data), "timestamp": stamp},
        "previousState": {"value": previous_state, "reason": "Threshold Crossed", "timestamp": stamp},
        "configuration": {
            "description": description,
            "metrics": [{"id": "m1", "returnData": True, "metricStat": {
                "metric": {"namespace": namespace, "name": metric, "dimensions": dict(dimensions)},
                "period": period, "stat": stat}}],
            "threshold": threshold, "comparisonOperator": op,
        },
    }
    arn = f"arn:aws:cloudwatch:{region}:{account}:alarm:{alarm_name}"
    return envelope("aws.cloudwatch", "CloudWatch Alarm State Change", detail, resources=[arn], time=t,
                    event_id=event_id, account=account, region=region)


def ec2_state_change(instance_id: str, state: str, *, time: datetime | None = None, event_id: str | None = None,
                     account: str = ACCOUNT, region: str = REGION) -> dict[str, Any]:
    """"EC2 Instance State-change Notification" (pending, running, stopping, stopped, shutting-down, terminated)."""
    return envelope("aws.ec2", "EC2 Instance State-change Notification",
                    {"instance-id": instance_id, "state": state},
                    resources=[f"arn:aws:ec2:{region}:{account}:instance/{instance_id}"], time=time,
                    event_id=event_id, account=account, region=region)


def rds_instance_event(db_identifier: str, *, event_id_code: str = "RDS-EVENT-0049",
                       message: str = "Multi-AZ instance failover completed.",
                       categories: tuple[str, ...] = ("failover",), time: datetime | None = None,
                       event_id: str | None = None, account: str = ACCOUNT, region: str = REGION) -> dict[str, Any]:
    """"RDS DB Instance Event" (e.g. RDS-EVENT-0049 failover, RDS-EVENT-0004 shutdown, 0006 restarted)."""
    t = time or _now()
    arn = f"arn:aws:rds:{region}:{account}:db:{db_identifier}"
    detail = {"EventCategories": list(categories), "SourceType": "DB_INSTANCE", "SourceArn": arn,
              "Date": _iso_ms(t), "Message": message, "SourceIdentifier": db_identifier,
              "EventID": event_id_code}
    return envelope("aws.rds", "RDS DB Instance Event", detail, resources=[arn], time=t, event_id=event_id,
                    account=account, region=region)


def asg_event(asg_name: str, instance_id: str, *, detail_type: str = "EC2 Instance Launch Successful",
              cause: str = "", status_code: str | None = None, time: datetime | None = None,
              event_id: str | None = None, account: str = ACCOUNT, region: str = REGION) -> dict[str, Any]:
    """EC2 Auto Scaling launch/terminate (successful or unsuccessful) event."""
    if detail_type not in ASG_DETAIL_TYPES:
        raise ValueError(f"detail_type must be one of {ASG_DETAIL_TYPES}")
    t = time or _now()
    launching = "Launch" in detail_type
    failed = "Unsuccessful" in detail_type
    status = status_code or ("Failed" if failed else ("InProgress" if launching else "Successful"))
    verb = "Launching a new" if launching else "Terminating"
    detail = {
        "StatusCode": status,
        "Description": f"{verb} EC2 instance: {instance_id}",
        "AutoScalingGroupName": asg_name,
        "ActivityId": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{asg_name}/{instance_id}/{_iso(t)}")),
        "Details": {"Availability Zone": f"{region}a", "Subnet ID": "subnet-0a1b2c3d"},
        "RequestId": str(uuid.uuid5(uuid.NAMESPACE_DNS, f"{asg_name}/{instance_id}/{_iso(t)}")),
        "StatusMessage": "Instance failed to complete user's Lifecycle Action" if failed else "",
        "EndTime": _iso_ms(t),
        "EC2InstanceId": instance_id,
        "StartTime": _iso_ms(t),
        "Cause": cause or (f"At {_iso(t)} an instance was taken out of service in response to an EC2 health "
                           "check indicating it has been terminated or stopped." if not launching else
                           f"At {_iso(t)} an instance was started in response to a difference between desired "
                           "and actual capacity."),
    }
    resources = [f"arn:aws:autoscaling:{region}:{account}:autoScalingGroup:"
                 f"{uuid.uuid5(uuid.NAMESPACE_URL, asg_name)}:autoScalingGroupName/{asg_name}",
                 f"arn:aws:ec2:{region}:{account}:instance/{instance_id}"]
    return envelope("aws.autoscaling", detail_type, detail, resources=resources, time=t, event_id=event_id,
                    account=account, region=region)


def asff_finding(*, title: str, resource_type: str, resource_id: str, severity_label: str = "HIGH",
                 generator_id: str = "aws-foundational-security-best-practices/v/1.0.0/EC2.19",
                 control_id: str = "EC2.19", description: str = "", time: datetime | None = None,
                 finding_id: str | None = None, account: str = ACCOUNT, region: str = REGION) -> dict[str, Any]:
    """One AWS Security Finding Format (ASFF) finding as Security Hub emits it."""
    t = _iso_ms(time or _now())
    normalized = {"INFORMATIONAL": 0, "LOW": 1, "MEDIUM": 40, "HIGH": 70, "CRITICAL": 90}[severity_label]
    product_arn = f"arn:aws:securityhub:{region}::product/aws/securityhub"
    fid = finding_id or (f"arn:aws:securityhub:{region}:{account}:subscription/aws-foundational-security-best-"
                         f"practices/v/1.0.0/{control_id}/finding/{uuid.uuid5(uuid.NAMESPACE_URL, resource_id)}")
    return {
        "SchemaVersion": "2018-10-08", "Id": fid, "ProductArn": product_arn, "ProductName": "Security Hub",
        "CompanyName": "AWS", "Region": region, "GeneratorId": generator_id, "AwsAccountId": account,
        "Types": ["Software and Configuration Checks/Industry and Regulatory Standards/AWS-Foundational-Security-"
                  "Best-Practices"],
        "FirstObservedAt": t, "LastObservedAt": t, "CreatedAt": t, "UpdatedAt": t,
        "Severity": {"Product": normalized, "Label": severity_label, "Normalized": normalized,
                     "Original": severity_label},
        "Title": title, "Description": description or title,
        "Remediation": {"Recommendation": {
            "Text": "For information on how to correct this issue, consult the AWS Security Hub controls documentation.",
            "Url": f"https://docs.aws.amazon.com/console/securityhub/{control_id}/remediation"}},
        "ProductFields": {"ControlId": control_id, "StandardsArn": "arn:aws:securityhub:::standards/aws-foundational-"
                          "security-best-practices/v/1.0.0", "aws/securityhub/ProductName": "Security Hub",
                          "aws/securityhub/CompanyName": "AWS", "aws/securityhub/FindingId": fid},
        "Resources": [{"Type": resource_type, "Id": resource_id, "Partition": "aws", "Region": region}],
        "Compliance": {"Status": "FAILED"}, "WorkflowState": "NEW", "Workflow": {"Status": "NEW"},
        "RecordState": "ACTIVE", "FindingProviderFields": {"Severity": {"Label": severity_label,
                                                                        "Original": severity_label},
                                                           "Types": ["Software and Configuration Checks"]},
    }


def securityhub_findings(findings: list[dict[str, Any]], *, time: datetime | None = None,
                         event_id: str | None = None, account: str = ACCOUNT, region: str = REGION) -> dict[str, Any]:
    """"Security Hub Findings - Imported": ``detail.findings`` holds ASFF findings (one per event on AWS)."""
    return envelope("aws.securityhub", "Security Hub Findings - Imported", {"findings": findings},
                    resources=[f["Id"] for f in findings],
                    time=time, event_id=event_id, account=account, region=region)


def guardduty_finding(instance_id: str, *, finding_type: str = "UnauthorizedAccess:EC2/SSHBruteForce",
                      severity: float = 5.0, title: str | None = None, time: datetime | None = None,
                      event_id: str | None = None, account: str = ACCOUNT, region: str = REGION) -> dict[str, Any]:
    """"GuardDuty Finding" (detail = the finding, schemaVersion 2.0; severity is a number 1-8.9)."""
    t = _iso_ms(time or _now())
    detector = "12abc34d567e8fa901bc2d34e56789f0"
    fid = uuid.uuid5(uuid.NAMESPACE_URL, f"{finding_type}/{instance_id}").hex
    detail = {
        "schemaVersion": "2.0", "accountId": account, "region": region, "partition": "aws", "id": fid,
        "arn": f"arn:aws:guardduty:{region}:{account}:detector/{detector}/finding/{fid}", "type": finding_type,
        "resource": {"resourceType": "Instance", "instanceDetails": {
            "instanceId": instance_id, "instanceType": "m5.large", "instanceState": "running",
            "availabilityZone": f"{region}a", "imageId": "ami-0123456789abcdef0",
            "networkInterfaces": [{"networkInterfaceId": "eni-0a1b2c3d4e5f60718", "privateIpAddress": "10.0.1.24",
                                   "publicIp": "203.0.113.24", "subnetId": "subnet-0a1b2c3d",
                                   "vpcId": "vpc-0a1b2c3d", "securityGroups": []}],
            "tags": []}},
        "service": {"serviceName": "guardduty", "detectorId": detector, "action": {
            "actionType": "NETWORK_CONNECTION", "networkConnectionAction": {
                "connectionDirection": "INBOUND", "protocol": "TCP", "blocked": False,
                "remoteIpDetails": {"ipAddressV4": "198.51.100.7", "country": {"countryName": "Unknown"}},
                "localPortDetails": {"port": 22, "portName": "SSH"}}},
            "resourceRole": "TARGET", "additionalInfo": {}, "eventFirstSeen": t, "eventLastSeen": t,
            "archived": False, "count": 1},
        "severity": severity, "createdAt": t, "updatedAt": t,
        "title": title or f"{finding_type.split('/')[-1]} against {instance_id}.",
        "description": f"{instance_id} is the target of {finding_type}.",
    }
    return envelope("aws.guardduty", "GuardDuty Finding", detail, resources=[], time=time, event_id=event_id,
                    account=account, region=region)


def health_event(service: str, event_type_code: str, *, entities: list[str], description: str,
                 category: str = "issue", status: str = "open", time: datetime | None = None,
                 event_id: str | None = None, account: str = ACCOUNT, region: str = REGION) -> dict[str, Any]:
    """"AWS Health Event" (account-specific; times in RFC 1123 as Health sends them)."""
    t = time or _now()
    rfc1123 = t.astimezone(UTC).strftime("%a, %d %b %Y %H:%M:%S GMT")
    arn = f"arn:aws:health:{region}::event/{service}/{event_type_code}/{event_type_code}_{uuid.uuid5(uuid.NAMESPACE_URL, rfc1123).hex[:12]}"
    detail = {"eventArn": arn, "service": service, "eventTypeCode": event_type_code,
              "eventTypeCategory": category, "eventScopeCode": "ACCOUNT_SPECIFIC",
              "communicationId": uuid.uuid5(uuid.NAMESPACE_URL, arn).hex, "startTime": rfc1123,
              "lastUpdatedTime": rfc1123, "statusCode": status, "eventRegion": region,
              "eventDescription": [{"language": "en_US", "latestDescription": description}],
              "affectedEntities": [{"entityValue": e} for e in entities], "affectedAccount": account}
    return envelope("aws.health", "AWS Health Event", detail, resources=list(entities), time=t, event_id=event_id,
                    account=account, region=region)


# --- our own events -------------------------------------------------------------------------------
def anomaly_detected(detail: dict[str, Any], *, time: datetime | None = None, event_id: str | None = None,
                     account: str = ACCOUNT, region: str = REGION) -> dict[str, Any]:
    """"AIOps Anomaly Detected": ``detail`` as built by ``aiops.anomaly.pipeline`` (alert_type, fingerprint,
    series_id, namespace, metric, dimensions, stat, region, resource_id, service, env, team, onset, value,
    forecast, lower, upper, anomaly_score, reason, run_id)."""
    return envelope(AIOPS_SOURCE, ANOMALY_DETAIL_TYPE, detail, time=time or _parse(detail.get("onset")),
                    event_id=event_id, account=account, region=region)


def anomaly_detail(*, series_id: str, resource_id: str, service: str, env: str, team: str, onset: datetime,
                   value: float, forecast: float, lower: float, upper: float, score: float = 0.97,
                   reason: str = "above band", region: str = REGION) -> dict[str, Any]:
    """A detail dict shaped like ``aiops.anomaly.pipeline.detect``'s alerts."""
    from aiops.core.alerts import fingerprint

    namespace, metric, dims, stat = series_id.split("|")
    dimensions = dict(d.split("=", 1) for d in dims.split(",") if d)
    return {"alert_type": "anomaly", "fingerprint": fingerprint(series_id, onset), "series_id": series_id,
            "namespace": namespace, "metric": metric, "dimensions": dimensions, "stat": stat, "region": region,
            "resource_id": resource_id, "service": service, "env": env, "team": team,
            "onset": onset.astimezone(UTC).isoformat(), "value": value, "forecast": forecast, "lower": lower,
            "upper": upper, "anomaly_score": score, "reason": reason, "run_id": None}


def slo_burn_rate(detail: dict[str, Any], *, time: datetime | None = None, event_id: str | None = None,
                  account: str = ACCOUNT, region: str = REGION) -> dict[str, Any]:
    """"AIOps SLO Burn Rate": ``detail`` as built by ``aiops.slo.pipeline.alert_detail`` (alert_type slo_burn,
    slo_id, service, env, team, severity page|ticket, objective, sli, budget_remaining, burn_rates, windows,
    fingerprint, evaluated_at, description, run_id)."""
    return envelope(AIOPS_SOURCE, SLO_DETAIL_TYPE, detail, time=time or _parse(detail.get("evaluated_at")),
                    event_id=event_id, account=account, region=region)


def slo_detail(*, slo_id: str, service: str, env: str, team: str, severity: str, evaluated_at: datetime,
               budget_remaining: float = 0.4, sli: float = 0.97, objective: float = 0.999,
               description: str = "") -> dict[str, Any]:
    """A detail dict shaped like ``aiops.slo.pipeline.alert_detail``."""
    import hashlib

    stamp = evaluated_at.astimezone(UTC).isoformat()
    fp = hashlib.sha1(f"slo_burn|{slo_id}|{severity}|{stamp}".encode()).hexdigest()[:16]
    burns = {"1h": 20.0, "5m": 24.0, "6h": 7.0, "30m": 8.0} if severity == "page" else {"3d": 1.5, "6h": 1.8}
    windows = ([{"rule": "fast_burn", "severity": "page", "long_window": "1h", "short_window": "5m",
                 "burn_rate_threshold": 14.4, "long_burn_rate": 20.0, "short_burn_rate": 24.0, "firing": True}]
               if severity == "page" else
               [{"rule": "slow_burn", "severity": "ticket", "long_window": "3d", "short_window": "6h",
                 "burn_rate_threshold": 1.0, "long_burn_rate": 1.5, "short_burn_rate": 1.8, "firing": True}])
    return {"alert_type": "slo_burn", "slo_id": slo_id, "service": service, "env": env, "team": team,
            "severity": severity, "objective": objective, "sli": sli, "budget_remaining": budget_remaining,
            "coverage": 1.0, "burn_rates": burns, "windows": windows, "fingerprint": fp, "evaluated_at": stamp,
            "description": description or f"{service} availability", "run_id": None}


def security_event(*, detection: str, severity: str, title: str, resource: str | None, actor: str | None,
                   event_time: datetime, event_ids: list[str], log_keys: list[str], evidence: dict[str, Any],
                   time: datetime | None = None, event_id: str | None = None, account: str = ACCOUNT,
                   region: str = REGION) -> dict[str, Any]:
    """"AIOps Security Event" (issue 7's detections): detail keys detection, severity, title, resource, actor,
    region, event_time, event_ids, log_keys, evidence."""
    detail = {"detection": detection, "severity": severity, "title": title, "resource": resource, "actor": actor,
              "region": region, "event_time": _iso(event_time), "event_ids": list(event_ids),
              "log_keys": list(log_keys), "evidence": evidence}
    return envelope(AIOPS_SOURCE, SECURITY_DETAIL_TYPE, detail, time=time or event_time, event_id=event_id,
                    account=account, region=region)


def _parse(value: Any) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None


# --- sending --------------------------------------------------------------------------------------
def to_put_events_entry(event: dict[str, Any], event_bus: str = "default") -> dict[str, Any]:
    """The ``PutEventsRequestEntry`` that makes EventBridge deliver ``event`` (it assigns a new ``id``)."""
    return {"Source": event["source"], "DetailType": event["detail-type"], "Detail": json.dumps(event["detail"]),
            "Resources": list(event.get("resources") or []), "Time": _parse(event["time"]) or _now(),
            "EventBusName": event_bus}


def put_ops_events(entries: list[dict[str, Any]], *, client: Any = None) -> dict[str, Any]:
    """Send envelopes (from the builders) through EventBridge ``PutEvents``, 10 per call. ``client`` defaults
    to ``aiops.core.aws.client("events")`` (the ``aws_default`` connection: the emulator, or a real account).

    Note: ``source`` values starting with ``aws.`` are reserved on real AWS (PutEvents rejects them); in
    the emulator they pass, which is what a simulator needs. Returns ``{"sent", "failed", "event_ids"}``.
    """
    if client is None:
        from aiops.core import aws

        client = aws.client("events")
    sent, failed, ids = 0, 0, []
    items = [to_put_events_entry(e) for e in entries]
    for i in range(0, len(items), 10):
        resp = client.put_events(Entries=items[i:i + 10])
        failed += int(resp.get("FailedEntryCount", 0))
        for r in resp.get("Entries", []):
            if r.get("EventId"):
                ids.append(r["EventId"])
                sent += 1
    return {"sent": sent, "failed": failed, "event_ids": ids}
