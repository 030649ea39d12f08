"""Game day: inject a live incident into the running simulated account (``aiops sandbox incident``).

An injection does what the failure would do on AWS, through the real APIs:

* **metric overlay** - the affected series get the failure's values through PutMetricData at
  one-minute resolution (the live feeder's own points for those series are held back meanwhile,
  so a 5-minute statistic is not a blend of the failure and the normal curve);
* **events** - the CloudWatch alarm state changes AWS would deliver to EventBridge (built with
  :mod:`aiops_sandbox.events` and sent with ``put_ops_events``: moto does not emit them itself),
  which the ``aiops-ops-events`` rule routes to the queue ``alert_intake`` watches.

The overlay is a record in the emulator itself (SSM parameter ``/matcarv/sandbox/gameday/<scenario>``),
so the command returns at once and the live feeder of ``make run`` (:class:`GameDayOverlay`,
ticking with :class:`~aiops_sandbox.live.LiveFeeder`) keeps the failure going **until the
remediation acts**: a successful SSM Automation execution of one of the scenario's fixing runbooks
on the affected resource. Then the overlay publishes the series' pre-incident baseline for a
while (recovery), emits the alarms' ``OK`` transitions, and hands the series back to the feeder.

Scenarios (:data:`SCENARIOS`, a registry): ``cpu-pinned``, ``rds-connection-storm``, ``5xx-surge``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import statistics
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from aiops.metrics.model import series_id

log = logging.getLogger(__name__)

PARAM_PREFIX = "/matcarv/sandbox/gameday/"
RECOVERY_MINUTES = 15
ClientFactory = Callable[[str], Any]


@dataclass
class OverlaySeries:
    namespace: str
    metric: str
    dimensions: dict[str, str]
    stat: str
    unit: str
    value: float  # per minute while the failure lasts
    default_baseline: float
    alarm: str  # CloudWatch alarm name whose state change is emitted
    threshold: float
    baseline: float | None = None

    @property
    def series_id(self) -> str:
        return series_id(self.namespace, self.metric, self.dimensions, self.stat)


@dataclass
class Injection:
    scenario: str
    description: str
    target: str
    service: str
    env: str
    series: list[OverlaySeries]
    fixed_by: list[str]  # SSM documents whose successful execution on the target ends the failure
    target_parameter: str
    runbook_hint: str
    log_messages: list[str] = field(default_factory=list)  # ERROR lines the failing service writes
    state: str = "active"
    started_at: str = ""
    ended_at: str | None = None
    fixed_by_execution: str | None = None
    events_sent: list[str] = field(default_factory=list)

    def to_json(self) -> str:
        from dataclasses import asdict

        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> Injection:
        raw = json.loads(text)
        raw["series"] = [OverlaySeries(**s) for s in raw["series"]]
        return cls(**raw)


# -- scenarios (registry) ----------------------------------------------------------------------
SCENARIOS: dict[str, tuple[str, Callable[[ClientFactory], Injection]]] = {}


def scenario(name: str, description: str) -> Callable[[Callable[[ClientFactory], Injection]], Callable[[ClientFactory], Injection]]:
    def register(fn: Callable[[ClientFactory], Injection]) -> Callable[[ClientFactory], Injection]:
        if name in SCENARIOS:
            raise ValueError(f"scenario {name!r} registered twice")
        SCENARIOS[name] = (description, fn)
        return fn
    return register


def _tags(items: list[dict[str, str]]) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in items or []}


def _target_group(clients: ClientFactory, service: str, env: str) -> dict[str, str]:
    elbv2 = clients("elbv2")
    for tg in elbv2.describe_target_groups()["TargetGroups"]:
        tags = _tags(elbv2.describe_tags(ResourceArns=[tg["TargetGroupArn"]])["TagDescriptions"][0]["Tags"])
        if tags.get("service") == service and tags.get("env") == env and tg.get("LoadBalancerArns"):
            lb_dim = tg["LoadBalancerArns"][0].split(":loadbalancer/", 1)[1]
            tg_dim = tg["TargetGroupArn"].split(":", 5)[5]
            return {"arn": tg["TargetGroupArn"], "TargetGroup": tg_dim, "LoadBalancer": lb_dim,
                    "name": tg["TargetGroupName"]}
    raise LookupError(f"no target group tagged service={service} env={env} behind a load balancer")


def _protected(tags: dict[str, str]) -> bool:
    return tags.get("aiops:protected", "").lower() == "true"


@scenario("cpu-pinned", "an instance's CPU pinned at ~98% and its target group reporting it unhealthy")
def _cpu_pinned(clients: ClientFactory, service: str = "checkout", env: str = "prod") -> Injection:
    ec2 = clients("ec2")
    tg = _target_group(clients, service, env)
    registered = [d["Target"]["Id"] for d in clients("elbv2").describe_target_health(
        TargetGroupArn=tg["arn"])["TargetHealthDescriptions"]]
    candidates = []
    for res in ec2.describe_instances(Filters=[{"Name": "instance-state-name", "Values": ["running"]},
                                               {"Name": "tag:service", "Values": [service]},
                                               {"Name": "tag:env", "Values": [env]}])["Reservations"]:
        for inst in res["Instances"]:
            if not _protected(_tags(inst.get("Tags", []))):
                candidates.append(inst["InstanceId"])
    preferred = [i for i in candidates if i in registered] or candidates
    if not preferred:
        raise LookupError(f"no running, unprotected {service}/{env} instance")
    instance = sorted(preferred)[0]
    name = _tags(next(i for r in ec2.describe_instances(InstanceIds=[instance])["Reservations"]
                      for i in r["Instances"]).get("Tags", [])).get("Name", instance)
    return Injection(
        scenario="cpu-pinned", description=f"CPU of {name} ({instance}) pinned; {tg['name']} sees it unhealthy",
        target=instance, service=service, env=env, target_parameter="InstanceId",
        fixed_by=["MatCarv-reboot-ec2-instance", "MatCarv-restart-ec2-instance"], runbook_hint="reboot-ec2-instance",
        log_messages=[f"request timed out after 30000ms on {instance}: worker pool exhausted",
                      f"health check /healthz failed on {instance}: timeout"],
        series=[
            OverlaySeries("AWS/EC2", "CPUUtilization", {"InstanceId": instance}, "Average", "Percent", 98.5, 35.0,
                          alarm=f"{name}-cpu-high", threshold=90.0),
            OverlaySeries("AWS/ApplicationELB", "UnHealthyHostCount",
                          {"LoadBalancer": tg["LoadBalancer"], "TargetGroup": tg["TargetGroup"]}, "Maximum", "Count",
                          1.0, 0.0, alarm=f"{tg['name']}-unhealthy-hosts", threshold=0.0),
        ])


@scenario("rds-connection-storm", "an RDS instance's connections climbing to its limit")
def _rds_storm(clients: ClientFactory, service: str = "checkout", env: str = "prod") -> Injection:
    rds = clients("rds")
    for db in rds.describe_db_instances()["DBInstances"]:
        tags = _tags(rds.list_tags_for_resource(ResourceName=db["DBInstanceArn"]).get("TagList", []))
        if tags.get("service") == service and tags.get("env") == env and not _protected(tags):
            ident = db["DBInstanceIdentifier"]
            return Injection(
                scenario="rds-connection-storm", description=f"connection storm on {ident}", target=ident,
                service=service, env=env, target_parameter="DBInstanceIdentifier",
                fixed_by=["MatCarv-reboot-rds-instance"], runbook_hint="reboot-rds-instance",
                log_messages=[f"could not obtain a connection to {ident}: remaining connection slots are reserved",
                              "connection pool exhausted after 5000ms"],
                series=[OverlaySeries("AWS/RDS", "DatabaseConnections", {"DBInstanceIdentifier": ident}, "Average",
                                      "Count", 495.0, 60.0, alarm=f"{ident}-connections-high", threshold=400.0)])
    raise LookupError(f"no unprotected RDS instance tagged service={service} env={env}")


@scenario("5xx-surge", "a service's targets answering HTTP 5xx")
def _5xx_surge(clients: ClientFactory, service: str = "checkout", env: str = "prod") -> Injection:
    tg = _target_group(clients, service, env)
    asg = None
    for group in clients("autoscaling").describe_auto_scaling_groups()["AutoScalingGroups"]:
        tags = {t["Key"]: t["Value"] for t in group.get("Tags", [])}
        if tags.get("service") == service:
            asg = group["AutoScalingGroupName"]
    if asg is None:
        raise LookupError(f"no Auto Scaling group tagged service={service}")
    return Injection(
        scenario="5xx-surge", description=f"{tg['name']} targets answering 5xx", target=asg, service=service,
        env=env, target_parameter="AutoScalingGroupName", fixed_by=["MatCarv-scale-out-asg"],
        runbook_hint="scale-out-asg",
        log_messages=["upstream payment-gateway timeout after 3000ms", "HTTP 503 returned to client: circuit open"],
        series=[OverlaySeries("AWS/ApplicationELB", "HTTPCode_Target_5XX_Count",
                              {"LoadBalancer": tg["LoadBalancer"], "TargetGroup": tg["TargetGroup"]}, "Sum", "Count",
                              90.0, 1.0, alarm=f"{tg['name']}-5xx-surge", threshold=50.0)])


# -- the overlay ------------------------------------------------------------------------------
def _minute(now: datetime) -> datetime:
    return now.replace(second=0, microsecond=0)


def _baseline(cloudwatch: Any, s: OverlaySeries, now: datetime) -> float:
    """Median per-minute value over the last 3 hours (5-minute Sums spread over 5 minutes)."""
    resp = cloudwatch.get_metric_statistics(
        Namespace=s.namespace, MetricName=s.metric, Dimensions=[{"Name": k, "Value": v} for k, v in s.dimensions.items()],
        StartTime=now - timedelta(hours=3), EndTime=now, Period=300, Statistics=[s.stat])
    values = [p[s.stat] for p in resp.get("Datapoints", [])]
    if not values:
        return s.default_baseline
    median = float(statistics.median(values))
    return median / 5 if s.stat in ("Sum", "SampleCount") else median


def _put(cloudwatch: Any, series: list[OverlaySeries], at: datetime, *, failing: bool) -> int:
    by_ns: dict[str, list[dict[str, Any]]] = {}
    for s in series:
        value = s.value if failing else (s.baseline if s.baseline is not None else s.default_baseline)
        by_ns.setdefault(s.namespace, []).append({
            "MetricName": s.metric, "Dimensions": [{"Name": k, "Value": v} for k, v in s.dimensions.items()],
            "Timestamp": at, "Value": float(value), "Unit": s.unit, "StorageResolution": 60})
    for ns, data in by_ns.items():
        cloudwatch.put_metric_data(Namespace=ns, MetricData=data)
    return sum(len(d) for d in by_ns.values())


def log_group(injection: Injection) -> str:
    return f"/matcarv/{injection.service}/{injection.env}/application"


def _put_errors(clients: ClientFactory, injection: Injection, times: list[datetime]) -> int:
    """ERROR lines (the application's JSON log format) the failing service writes at ``times``."""
    if not injection.log_messages:
        return 0
    logs = clients("logs")
    group, stream = log_group(injection), f"gameday-{injection.scenario}"
    with contextlib.suppress(logs.exceptions.ResourceAlreadyExistsException):
        logs.create_log_group(logGroupName=group)
    with contextlib.suppress(logs.exceptions.ResourceAlreadyExistsException):
        logs.create_log_stream(logGroupName=group, logStreamName=stream)
    events = []
    for i, at in enumerate(sorted(times)):
        record = {"ts": at.strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.microsecond // 1000:03d}Z", "level": "ERROR",
                  "service": injection.service, "env": injection.env,
                  "msg": injection.log_messages[i % len(injection.log_messages)]}
        events.append({"timestamp": int(at.timestamp() * 1000), "message": json.dumps(record, separators=(", ", ": "))})
    logs.put_log_events(logGroupName=group, logStreamName=stream, logEvents=events)
    return len(events)


def _set_alarms(clients: ClientFactory, injection: Injection, *, firing: bool) -> None:
    """The alarms the events name exist in the account, in the state the events report (AWS would
    have them: the platform verifies an alarm event against DescribeAlarms before it acts unattended)."""
    cloudwatch = clients("cloudwatch")
    for s in injection.series:
        if firing:
            cloudwatch.put_metric_alarm(
                AlarmName=s.alarm, Namespace=s.namespace, MetricName=s.metric, Statistic=s.stat, Period=60,
                Dimensions=[{"Name": k, "Value": v} for k, v in s.dimensions.items()], EvaluationPeriods=1,
                Threshold=s.threshold, ComparisonOperator="GreaterThanThreshold",
                AlarmDescription=f"game day {injection.scenario}: {injection.description}")
        cloudwatch.set_alarm_state(AlarmName=s.alarm, StateValue="ALARM" if firing else "OK",
                                   StateReason=f"game day {injection.scenario} " + ("started" if firing else "fixed"))


def _alarm_events(injection: Injection, *, firing: bool, at: datetime) -> list[dict[str, Any]]:
    from aiops_sandbox import events

    out = []
    for s in injection.series:
        value = s.value if firing else (s.baseline if s.baseline is not None else s.default_baseline)
        out.append(events.cloudwatch_alarm(
            s.alarm, namespace=s.namespace, metric=s.metric, dimensions=s.dimensions, stat=s.stat,
            state="ALARM" if firing else "OK", previous_state="OK" if firing else "ALARM", threshold=s.threshold,
            value=round(value * (5 if s.stat in ("Sum", "SampleCount") else 1), 3), time=at,
            description=f"game day {injection.scenario}: {injection.description}"))
    return out


def inject(name: str, clients: ClientFactory, *, now: datetime | None = None) -> Injection:
    """Start scenario ``name``: record the overlay, publish the failure's first points, emit the events."""
    from aiops_sandbox.events import put_ops_events

    if name not in SCENARIOS:
        raise KeyError(f"unknown scenario {name!r}; scenarios: {', '.join(sorted(SCENARIOS))}")
    now = now or datetime.now(UTC)
    injection = SCENARIOS[name][1](clients)
    cloudwatch = clients("cloudwatch")
    for s in injection.series:
        s.baseline = _baseline(cloudwatch, s, now)
    injection.started_at = now.isoformat()
    # the failure began a couple of minutes ago: the alarm fires on datapoints that already exist
    for back in (2, 1, 0):
        _put(cloudwatch, injection.series, _minute(now) - timedelta(minutes=back), failing=True)
    _put_errors(clients, injection, [now - timedelta(seconds=s) for s in range(150, 0, -10)])
    _set_alarms(clients, injection, firing=True)
    fired = _alarm_events(injection, firing=True, at=now)
    sent = put_ops_events(fired, client=clients("events"))
    injection.events_sent = [e["id"] for e in fired]
    if sent["failed"]:
        log.warning("game day: %d event(s) were not accepted by EventBridge", sent["failed"])
    save(clients, injection)
    return injection


def save(clients: ClientFactory, injection: Injection) -> None:
    clients("ssm").put_parameter(Name=PARAM_PREFIX + injection.scenario, Value=injection.to_json(), Type="String",
                                 Overwrite=True)


def active(clients: ClientFactory) -> list[Injection]:
    out = []
    resp = clients("ssm").get_parameters_by_path(Path=PARAM_PREFIX, Recursive=True)
    for p in resp.get("Parameters", []):
        try:
            out.append(Injection.from_json(p["Value"]))
        except (ValueError, TypeError, KeyError) as exc:
            log.warning("game day: ignoring unreadable overlay %s: %s", p["Name"], exc)
    return [i for i in out if i.state in ("active", "recovering")]


def fixed_by(clients: ClientFactory, injection: Injection) -> str | None:
    """Id of a successful execution of a fixing document on the target since the injection."""
    ssm = clients("ssm")
    started = datetime.fromisoformat(injection.started_at)
    for document in injection.fixed_by:
        resp = ssm.describe_automation_executions(Filters=[{"Key": "DocumentNamePrefix", "Values": [document]}])
        for meta in resp.get("AutomationExecutionMetadataList", []):
            start = meta.get("ExecutionStartTime")
            if meta.get("AutomationExecutionStatus") != "Success" or (start and start < started - timedelta(seconds=5)):
                continue
            execution = ssm.get_automation_execution(AutomationExecutionId=meta["AutomationExecutionId"])
            values = execution["AutomationExecution"].get("Parameters", {}).get(injection.target_parameter, [])
            if injection.target in values:
                return str(meta["AutomationExecutionId"])
    return None


class GameDayOverlay:
    """Ticks with the live feeder: keeps active failures going, ends them when fixed."""

    def __init__(self, clients: ClientFactory) -> None:
        self.clients = clients
        self._overlaid: set[str] = set()

    def overlaid(self) -> set[str]:
        """Series ids the feeder must not publish (the overlay owns them right now)."""
        return set(self._overlaid)

    def tick(self, now: datetime | None = None) -> int:
        from aiops_sandbox.events import put_ops_events

        now = now or datetime.now(UTC)
        published = 0
        overlaid: set[str] = set()
        for injection in active(self.clients):
            if injection.state == "active":
                execution = fixed_by(self.clients, injection)
                if execution:
                    injection.state, injection.ended_at, injection.fixed_by_execution = "recovering", now.isoformat(), execution
                    _set_alarms(self.clients, injection, firing=False)
                    put_ops_events(_alarm_events(injection, firing=False, at=now), client=self.clients("events"))
                    save(self.clients, injection)
                    log.info("game day %s: fixed by %s; recovering", injection.scenario, execution)
            elif injection.ended_at and now > datetime.fromisoformat(injection.ended_at) + timedelta(minutes=RECOVERY_MINUTES):
                injection.state = "done"
                save(self.clients, injection)
                continue
            published += _put(self.clients("cloudwatch"), injection.series, _minute(now),
                              failing=injection.state == "active")
            if injection.state == "active":
                _put_errors(self.clients, injection, [now])
            overlaid.update(s.series_id for s in injection.series)
        self._overlaid = overlaid
        return published
