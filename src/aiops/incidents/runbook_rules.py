"""Choosing the runbook for an incident and judging whether the fix held.

* :func:`matching_runbooks` walks ``include/incidents/runbooks.yaml`` in order against the
  incident's signals and returns every rule that matches with its parameters resolved from the
  account (dimension values, the service's Auto Scaling group, a target group's instance). Only
  runbooks present in the catalog are offered; the catalog's metadata (title, risk, approval
  policy, ``verify``) travels with the match so the plan and the post-mortem can show it.
* :func:`remediate_conf` is the ``remediate`` DAG conf for the chosen match.
* :func:`back_in_band` is the ``metric_back_in_band`` check of a runbook's ``verify``: the newest
  value of the signal after the remediation is inside its forecast band.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from aiops.account.permissions import permissions
from aiops.core import aws
from aiops.core.state import StateStore, remediation_requests
from aiops.incidents import series
from aiops.incidents.config import PLACEHOLDER, check_against_catalog, load_rules
from aiops.remediation.catalog import load_catalog
from aiops.remediation.preapproval import signal_direction

PERMISSIONS = permissions(
    "runbook choice: ASG and target health",
    reader=(
        "autoscaling:DescribeAutoScalingGroups",
        "elasticloadbalancing:DescribeTargetGroups",
        "elasticloadbalancing:DescribeTargetHealth",
    ),
)

log = logging.getLogger(__name__)


class Unresolvable(LookupError):
    """A rule's parameter cannot be resolved for this incident (the rule is skipped)."""


def _resolve(template: str, signal: dict[str, Any], incident: dict[str, Any]) -> str:
    match = PLACEHOLDER.match(template)
    if not match:
        return template
    kind, name = match.groups()
    if kind == "dim":
        value = signal["dimensions"].get(name)
        if not value:
            raise Unresolvable(f"signal {signal['series_id']} has no dimension {name}")
        return str(value)
    if kind == "asg":
        return _asg_of(incident.get("service"), incident.get("env"))
    return _instance_in_target_group(signal["dimensions"].get("TargetGroup"))


def _asg_of(service: str | None, env: str | None) -> str:
    if not service:
        raise Unresolvable("the incident names no service")
    client = aws.client("autoscaling")
    for page in client.get_paginator("describe_auto_scaling_groups").paginate():
        for group in page.get("AutoScalingGroups", []):
            tags = {t["Key"]: t["Value"] for t in group.get("Tags", [])}
            if tags.get("service") == service and (not env or tags.get("env", env) == env):
                return str(group["AutoScalingGroupName"])
    raise Unresolvable(f"no Auto Scaling group tagged service={service}")


def _instance_in_target_group(dimension: str | None) -> str:
    if not dimension:
        raise Unresolvable("the signal has no TargetGroup dimension")
    elbv2 = aws.client("elbv2")
    name = dimension.split("/")[1]
    arn = elbv2.describe_target_groups(Names=[name])["TargetGroups"][0]["TargetGroupArn"]
    for desc in elbv2.describe_target_health(TargetGroupArn=arn).get("TargetHealthDescriptions", []):
        return str(desc["Target"]["Id"])
    raise Unresolvable(f"target group {name} has no registered targets")


def matching_runbooks(incident: dict[str, Any], signals: list[dict[str, Any]]) -> list[dict[str, Any]]:
    config = load_rules()
    catalog = load_catalog()
    for problem in check_against_catalog(config, catalog.ids):
        log.warning("incident runbook rules: %s", problem)
    out: list[dict[str, Any]] = []
    for rule in config.rules:
        if rule.runbook not in catalog:
            continue
        for signal in signals:
            direction = signal_direction(signal, incident)
            if not rule.matches(signal, direction):
                if rule.matches(signal):
                    log.info("rule %s: %s is %s, the rule fixes %s", rule.id, signal["series_id"], direction,
                             rule.when.direction)
                continue
            try:
                params = {k: _resolve(v, signal, incident) for k, v in rule.parameters.items()}
            except Unresolvable as exc:
                log.info("rule %s matches %s but %s", rule.id, signal["series_id"], exc)
                continue
            meta = catalog.get(rule.runbook).metadata
            verify = meta.verify
            out.append({
                "rule": rule.id, "runbook": rule.runbook, "title": meta.title, "risk": meta.risk,
                "approval": meta.approval, "parameters": params, "signal": signal["series_id"], "note": rule.note,
                "direction": rule.when.direction, "signal_direction": direction,
                "verify": {"metric_back_in_band": bool(verify and verify.metric_back_in_band),
                           "within_minutes": verify.within_minutes if verify else 30},
            })
            break
    return out


def remediate_conf(incident: dict[str, Any], match: dict[str, Any], *, run_id: str) -> dict[str, Any]:
    return {"runbook": match["runbook"], "parameters": match["parameters"], "requested_by": "incident_response",
            "reason": f"incident {incident['incident_id']}: {incident['title']} (rule {match['rule']}; "
                      f"triaged by incident_response run {run_id})",
            "incident_id": incident["incident_id"], "dry_run": False}


def latest_request(incident_id: str) -> dict[str, Any] | None:
    """The newest remediate request made for the incident (remediate records ``incident_id``)."""
    from sqlalchemy import select

    store = StateStore()
    store._ready()
    with store.engine.connect() as conn:
        row = conn.execute(select(remediation_requests).where(remediation_requests.c.incident_id == incident_id)
                           .order_by(remediation_requests.c.created_at.desc())).first()
    return dict(row._mapping) if row else None


def baseline_band(points: list[tuple[datetime, float]], before: datetime, *, hours: float = 3.0,
                  k: float = 3.0) -> tuple[float, float, float] | None:
    """median +- k MAD (>= 10% of the median) of the values in the ``hours`` before ``before``."""
    import numpy as np

    values = [v for ts, v in points if before - timedelta(hours=hours) <= ts < before]
    if len(values) < 3:
        return None
    arr = np.asarray(values, dtype=float)
    med = float(np.median(arr))
    half = max(k * float(np.median(np.abs(arr - med))) * 1.4826, 0.1 * abs(med), 1e-9)
    return med, med - half, med + half


def back_in_band(signal: dict[str, Any], *, since: datetime, incident_start: datetime,
                 now: datetime | None = None) -> dict[str, Any]:
    """Is the newest datapoint after ``since`` inside the band? The band is the seasonal baseline
    at that time where history allows, else the pre-incident baseline (the 3 h before the incident)."""
    now = now or datetime.now(UTC)
    recent = [(ts, v) for ts, v in series.get_series(signal, since - timedelta(minutes=5), now + timedelta(minutes=1), 60)
              if ts >= since]
    if not recent:
        return {"ok": False, "reason": f"no datapoint of {signal['series_id']} since {since.isoformat()}"}
    ts, value = recent[-1]
    history = series.get_series(signal, incident_start - timedelta(days=7), incident_start, 300)
    band = series.seasonal_band(history, [ts])[0]
    source = "seasonal_baseline"
    if band is None:
        band, source = baseline_band(history, incident_start), "pre_incident_baseline"
    if band is None:
        return {"ok": False, "reason": "no history to build a band from", "value": value, "t": ts.isoformat()}
    ok = band[1] <= value <= band[2]
    return {"ok": ok, "value": value, "t": ts.isoformat(), "forecast": band[0], "lower": band[1], "upper": band[2],
            "band_source": source,
            "reason": f"{signal['metric']} = {value:.3g} at {ts:%H:%M} UTC is {'inside' if ok else 'outside'} "
                      f"its band [{band[1]:.3g}, {band[2]:.3g}]"}
