"""Noise-reduction replay: a realistic operational event stream for the simulated account, pushed
through the same intake chain (``aiops.alerting.pipeline.process``: normalise -> rules -> dedup ->
suppression -> grouping -> notification decisions) with an in-memory ledger, a fake incident store
and a counting publisher. Nothing is sent; AWS is not called (tags come from the topology).

The stream is generated from the ground-truth manifest (deterministic from the seed), over the
``days`` before its anchor:

* every injected incident (manifest ``anomalies``): CloudWatch alarms on its metrics that flap at
  onset, the anomaly detector's onsets (repeats included), SLO burn alerts for the 5xx surges, an
  AWS Health event for the instance that lost its network, Auto Scaling replacements;
* background: a flapping staging CPU alarm, batch/CI hosts whose CPU alarms fire by design, staging
  office-hours stop/start, Sunday staging patching, Auto Scaling scale-out/in, Security Hub findings
  re-imported every day, a GuardDuty finding updated every few hours, a scheduled-retirement Health
  event, nightly RDS backups, a few detector false positives, issue 7's security detections;
* transport: ~2% SQS re-deliveries (same event id) and a few malformed / unknown events.

``aiops alerting replay [--days N]`` prints the funnel.
"""

from __future__ import annotations

import json
import random
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from aiops.alerting.engine import MemoryLedger
from aiops.alerting.rules import AlertingRules, load_rules
from aiops.core.alerts import SEVERITY_ORDER, Alert, IncidentCandidate
from aiops_sandbox import events as ev

STAGES = ("raw_events", "dead_letters", "alerts", "redeliveries", "duplicates", "resolved", "suppressed",
          "informational", "accepted", "incident_candidates", "notifications")


def _parse(t: str) -> datetime:
    return datetime.fromisoformat(t.replace("Z", "+00:00"))


def _uid(rng: random.Random) -> str:
    a, b, c, d, e = (rng.getrandbits(32), rng.getrandbits(16), 0x4000 | rng.getrandbits(12),
                     0x8000 | rng.getrandbits(14), rng.getrandbits(48))
    return f"{a:08x}-{b:04x}-{c:04x}-{d:04x}-{e:012x}"


def tag_index_from_manifest(manifest: dict[str, Any]) -> tuple[dict[str, dict[str, str]], dict[str, dict[str, str]]]:
    """The tags the seeder put on the account's resources, keyed like ``enrich.tag_index`` (no AWS)."""
    from aiops_sandbox.topology import default_topology

    topo = default_topology()
    res = manifest["resources"]
    index: dict[str, dict[str, str]] = {}

    def tags(service: str, env: str, name: str) -> dict[str, str]:
        svc = topo.services[service]
        return {"Name": name, "service": service, "env": env, "team": svc.team, "owner": svc.owner}

    for spec in topo.instances:
        iid = res["instances"].get(spec.name)
        if iid:
            index[iid] = tags(spec.service, spec.env, spec.name) | (
                {"aws:autoscaling:groupName": spec.asg} if spec.asg else {})
    for db in topo.databases:
        index[db.identifier] = tags(db.service, db.env, db.identifier)
    for key, tg in res.get("target_groups", {}).items():
        service, env = key.split("/")
        index[tg["dimension"].split("/")[-1]] = tags(service, env, tg["dimension"].split("/")[1])
    asgs = {}
    for spec in topo.instances:
        if spec.asg:
            asgs[spec.asg] = tags(spec.service, spec.env, spec.asg)
    return index, asgs


@dataclass
class Stream:
    events: list[tuple[datetime, Any]] = field(default_factory=list)  # (delivery time, body)
    truth: list[dict[str, Any]] = field(default_factory=list)  # injected incidents in the window

    def add(self, t: datetime, event: Any) -> None:
        self.events.append((t, event))


def _alarm_name(resource: str, metric: str) -> str:
    return f"{resource.replace('/', '-')}-{metric}-high"


def _dims(series_id: str) -> tuple[str, str, dict[str, str], str]:
    namespace, metric, dims, stat = series_id.split("|")
    return namespace, metric, dict(d.split("=", 1) for d in dims.split(",") if d), stat


def generate(manifest: dict[str, Any], days: float = 7, seed: int = 7) -> Stream:
    """The event stream of the ``days`` before the manifest's anchor (deterministic)."""
    rng = random.Random(seed + 5001)
    end = _parse(manifest["anchor"])
    start = end - timedelta(days=days)
    res = manifest["resources"]
    inst = res["instances"]
    stream = Stream()
    index = tag_index_from_manifest(manifest)[0]

    def within(t: datetime) -> bool:
        return start <= t < end

    def alarm(name: str, series_id: str, t: datetime, state: str) -> None:
        if within(t):
            namespace, metric, dims, stat = _dims(series_id)
            stream.add(t, ev.cloudwatch_alarm(name, namespace=namespace, metric=metric, dimensions=dims, stat=stat,
                                              state=state, previous_state="OK" if state == "ALARM" else "ALARM",
                                              time=t, event_id=_uid(rng)))

    # --- injected incidents ----------------------------------------------------------------------
    for a in manifest.get("anomalies", []):
        if not a.get("detectable") or a.get("kind") == "derived":
            continue
        onset = _parse(a["start"])
        finish = _parse(a["end"]) if a.get("end") else end
        if not (start <= onset < end or start < finish <= end or onset < start < finish):
            continue
        stream.truth.append({"id": a["id"], "resource": a["resource"], "start": onset, "end": finish,
                             "description": a["description"]})
        name = _alarm_name(a["resource"], a["metric"])
        t = onset + timedelta(minutes=5)  # the alarm evaluates a few periods
        # noisy onset: ALARM / OK / ALARM before it settles
        for i, state in enumerate(["ALARM", "OK", "ALARM"]):
            alarm(name, a["series_id"], t + timedelta(minutes=3 * i), state)
        if finish < end and finish - onset < timedelta(days=1):
            alarm(name, a["series_id"], finish + timedelta(minutes=5), "OK")
        _, metric, dims, _ = _dims(a["series_id"])
        rid = dims.get("InstanceId") or dims.get("DBInstanceIdentifier") or dims.get("TargetGroup", "").split("/")[-1]
        tags = index.get(rid, {})
        # the detector: an onset, and re-onsets while the anomaly lasts (every ~40 min, at most 6)
        for k in range(min(6, max(1, int((finish - onset) / timedelta(minutes=40))))):
            o = onset + timedelta(minutes=40 * k + rng.randint(0, 4))
            if within(o):
                detail = ev.anomaly_detail(series_id=a["series_id"], resource_id=rid, service=tags.get("service", ""),
                                           env=tags.get("env", ""), team=tags.get("team", ""), onset=o,
                                           value=float(a.get("magnitude") or 1), forecast=1.0, lower=0.5, upper=2.0,
                                           score=0.999)
                stream.add(o + timedelta(minutes=2), ev.anomaly_detected(detail, event_id=_uid(rng)))
        if metric == "HTTPCode_Target_5XX_Count":
            service, env = a["resource"].split("/")
            team = tags.get("team", "")
            for minutes, sev in ((10, "ticket"), (15, "page")):
                t2 = onset + timedelta(minutes=minutes)
                if within(t2) and (sev == "ticket" or finish - onset < timedelta(days=1)):
                    stream.add(t2, ev.slo_burn_rate(ev.slo_detail(
                        slo_id=f"{service}-availability", service=service, env=env, team=team, severity=sev,
                        evaluated_at=t2), event_id=_uid(rng)))
        if metric == "StatusCheckFailed" and within(onset + timedelta(minutes=8)):
            stream.add(onset + timedelta(minutes=8), ev.health_event(
                "EC2", "AWS_EC2_OPERATIONAL_ISSUE", entities=[rid], time=onset + timedelta(minutes=8),
                description="Elevated network packet loss for an instance in us-east-1a.", event_id=_uid(rng)))
        if metric == "CPUUtilization" and tags.get("aws:autoscaling:groupName"):
            asg = tags["aws:autoscaling:groupName"]
            t3 = onset + timedelta(minutes=12)
            if within(t3):
                stream.add(t3, ev.asg_event(asg, rid, detail_type="EC2 Instance Terminate Successful", time=t3,
                                            event_id=_uid(rng)))
                stream.add(t3 + timedelta(minutes=2), ev.asg_event(asg, "i-0" + f"{rng.getrandbits(64):016x}",
                                                                   time=t3 + timedelta(minutes=2), event_id=_uid(rng)))

    # --- background --------------------------------------------------------------------------------
    day0 = start.replace(hour=0, minute=0, second=0, microsecond=0)
    cpu = "AWS/EC2|CPUUtilization|InstanceId={}|Average"
    d = day0
    while d < end:
        weekday = d.weekday() < 5
        # a staging web alarm that flaps twice a day around its threshold
        for hour in (rng.uniform(9, 12), rng.uniform(14, 17)):
            t = d + timedelta(hours=hour)
            for i in range(rng.randint(6, 10)):
                alarm("checkout-staging-web-cpu-high", cpu.format(inst["checkout-staging-web"]),
                      t + timedelta(minutes=4 * i), "ALARM" if i % 2 == 0 else "OK")
        # batch and CI hosts: CPU alarms by design (noisy)
        alarm("catalog-staging-batch-cpu-high", cpu.format(inst["catalog-staging-batch"]), d + timedelta(hours=1),
              "ALARM")
        alarm("catalog-staging-batch-cpu-high", cpu.format(inst["catalog-staging-batch"]), d + timedelta(hours=3),
              "OK")
        if weekday:
            for _ in range(rng.randint(4, 8)):
                t = d + timedelta(hours=rng.uniform(8, 18))
                alarm("platform-staging-ci-runner-cpu-high", cpu.format(inst["platform-staging-ci-runner"]), t, "ALARM")
                alarm("platform-staging-ci-runner-cpu-high", cpu.format(inst["platform-staging-ci-runner"]),
                      t + timedelta(minutes=rng.randint(10, 25)), "OK")
            # office-hours schedule for staging
            for name in ("checkout-staging-web", "payments-staging-api", "platform-staging-ci-runner"):
                for hour, states in ((7, ("pending", "running")), (19, ("stopping", "stopped"))):
                    for k, state in enumerate(states):
                        t = d + timedelta(hours=hour, minutes=k)
                        if within(t):
                            stream.add(t, ev.ec2_state_change(inst[name], state, time=t, event_id=_uid(rng)))
        # Sunday staging patching: reboots and a status-check alarm in the window
        if d.weekday() == 6:
            for name in ("catalog-staging-batch", "checkout-staging-web"):
                t = d + timedelta(hours=2, minutes=rng.randint(5, 50))
                alarm(f"{name}-status-check", f"AWS/EC2|StatusCheckFailed|InstanceId={inst[name]}|Maximum", t, "ALARM")
                alarm(f"{name}-status-check", f"AWS/EC2|StatusCheckFailed|InstanceId={inst[name]}|Maximum",
                      t + timedelta(minutes=6), "OK")
            t = d + timedelta(hours=2, minutes=20)
            if within(t):
                stream.add(t, ev.rds_instance_event("catalog-staging-db", event_id_code="RDS-EVENT-0004",
                                                    message="DB instance shutdown.", categories=("availability",),
                                                    time=t, event_id=_uid(rng)))
        # Auto Scaling scale-out at the evening peak, scale-in at night
        for hour, dt in ((18.5, "EC2 Instance Launch Successful"), (23.5, "EC2 Instance Terminate Successful")):
            t = d + timedelta(hours=hour)
            if within(t):
                stream.add(t, ev.asg_event("checkout-prod-asg", "i-0" + f"{rng.getrandbits(64):016x}", detail_type=dt,
                                           time=t, event_id=_uid(rng)))
        # nightly RDS backups
        for db in ("checkout-prod-db", "payments-prod-db"):
            t = d + timedelta(hours=4, minutes=rng.randint(0, 30))
            if within(t):
                stream.add(t, ev.rds_instance_event(db, event_id_code="RDS-EVENT-0002",
                                                    message="Finished DB Instance backup", categories=("backup",),
                                                    time=t, event_id=_uid(rng)))
        # Security Hub re-imports every failed control daily (same finding ids)
        t = d + timedelta(hours=6, minutes=rng.randint(0, 20))
        if within(t):
            for m in manifest.get("misconfigurations", []):
                resource = m["resource"] if isinstance(m["resource"], str) else m["resource"][0]
                stream.add(t, ev.securityhub_findings([ev.asff_finding(
                    title=m["id"].replace("_", " "), resource_type="AwsEc2SecurityGroup" if resource.startswith("sg-")
                    else "Other", resource_id=resource, control_id=m["id"],
                    severity_label="HIGH" if "world" in m["id"] or "public" in m["id"] else "MEDIUM", time=t,
                    finding_id=f"arn:aws:securityhub:us-east-1:{manifest['account_id']}:finding/{m['id']}")], time=t,
                    event_id=_uid(rng)))
        # GuardDuty: SSH brute force against the bastion, updated every ~6 h (same finding)
        for h in (3, 9, 15, 21):
            t = d + timedelta(hours=h, minutes=rng.randint(0, 50))
            if within(t):
                stream.add(t, ev.guardduty_finding(inst["platform-prod-bastion"], severity=5.0, time=t,
                                                   event_id=_uid(rng)))
        # the detector's false positives: about one a day, on a random production CPU series
        if rng.random() < 0.9:
            name = rng.choice(["catalog-prod-api-1", "payments-prod-worker", "checkout-prod-web-2"])
            tags = index.get(inst[name], {})
            t = d + timedelta(hours=rng.uniform(0, 24))
            if within(t):
                stream.add(t + timedelta(minutes=2), ev.anomaly_detected(ev.anomaly_detail(
                    series_id=cpu.format(inst[name]), resource_id=inst[name], service=tags["service"],
                    env=tags["env"], team=tags["team"], onset=t, value=71.0, forecast=40.0, lower=20.0, upper=62.0,
                    score=rng.uniform(0.9, 0.97)), event_id=_uid(rng)))
        d += timedelta(days=1)
    # a scheduled-retirement Health event, updated daily until the window ends
    retire = inst["catalog-prod-api-2"]
    arn_time = start + timedelta(hours=30)
    for k in range(int(days)):
        t = arn_time + timedelta(days=k)
        if within(t):
            e = ev.health_event("EC2", "AWS_EC2_INSTANCE_RETIREMENT_SCHEDULED", entities=[retire], category="scheduledChange",
                                description="catalog-prod-api-2 is scheduled for retirement.", time=arn_time,
                                event_id=_uid(rng))
            stream.add(t, e)
    # issue 7's security detections (from the manifest's injected CloudTrail events)
    for s in manifest.get("security_events", []):
        t = _parse(s["event_time"])
        if within(t):
            sev = "critical" if s["detection"] in ("root_account_usage", "cloudtrail_tampering") else "high"
            stream.add(t + timedelta(minutes=15), ev.security_event(
                detection=s["detection"], severity=sev, title=f"{s['detection'].replace('_', ' ')}: {s['event_name']}",
                resource=s["detail"].get("group_id") or s["detail"].get("target_user") or s["detail"].get("actor_name"),
                actor=s["actor"], event_time=t,
                event_ids=s["detail"].get("event_ids", [])[:5], log_keys=s["detail"].get("log_keys", []),
                evidence={"event_name": s["event_name"]}, event_id=_uid(rng)))
    # transport: re-deliveries and malformed events
    stream.events.sort(key=lambda x: x[0])
    transport = random.Random(seed + 5002)
    for t, e in list(stream.events):
        if transport.random() < 0.02:
            stream.add(t + timedelta(seconds=transport.randint(30, 600)), e)
    for k in range(max(1, int(days / 2))):
        t = start + timedelta(days=2 * k + 1, hours=rng.uniform(0, 24))
        if within(t):
            stream.add(t, json.dumps(ev.ec2_state_change(inst["catalog-prod-api-1"], "running", time=t,
                                                          event_id=_uid(rng)))[:120])  # truncated body
            spot = ev.envelope("aws.ec2", "EC2 Spot Instance Interruption Warning",
                               {"instance-id": inst["catalog-staging-batch"], "instance-action": "terminate"}, time=t,
                               event_id=_uid(rng))
            stream.add(t, spot)
    stream.events.sort(key=lambda x: x[0])
    return stream


@dataclass
class ReplayResult:
    days: float
    anchor: str
    funnel: dict[str, int]
    decisions: Counter[str]
    by_source: dict[str, Counter[str]]
    candidates: list[IncidentCandidate]
    detected: list[dict[str, Any]]
    notifications_by_topic: Counter[str]

    def text(self) -> str:
        f = self.funnel
        lines = [f"Alerting replay: {self.days:g} day(s) of the simulated account's operational events "
                 f"up to {self.anchor}", ""]
        width = max(len(s) for s in STAGES)
        for stage in STAGES:
            lines.append(f"  {stage.replace('_', ' '):<{width}}  {f[stage]:>6,}")
        sup = {k: v for k, v in self.decisions.items() if k.startswith("suppressed_")}
        if sup:
            lines.append("  suppressed by: " + ", ".join(f"{k.removeprefix('suppressed_')} {v}" for k, v in sorted(sup.items())))
        raw, notes = f["raw_events"], f["notifications"]
        if notes:
            lines.append(f"  noise reduction: {raw:,} raw events -> {notes:,} notifications ({raw / notes:.1f}x, "
                         f"{1 - notes / raw:.1%} fewer messages)")
        lines += ["", "  by source (alerts -> accepted):"]
        for src, c in sorted(self.by_source.items()):
            lines.append(f"    {src:<18} {sum(c.values()):>5} -> {c.get('accepted', 0):>3}")
        lines += ["", "  injected incidents:"]
        for d in self.detected:
            mark = "detected" if d["candidates"] else "MISSED"
            lines.append(f"    {d['id']:<45} {mark} ({d['candidates']} candidate(s))")
        lines += ["", "  notifications by topic: " + ", ".join(f"{k} {v}" for k, v in sorted(self.notifications_by_topic.items()))]
        return "\n".join(lines)


def replay(manifest: dict[str, Any], days: float = 7, *, rules: AlertingRules | None = None,
           batch_minutes: float = 1.0, seed: int | None = None) -> ReplayResult:
    """Feed the generated stream through ``intake.process`` in delivery-time batches."""
    from aiops.alerting.enrich import enrich_tags
    from aiops.alerting.pipeline import process

    rules = rules or load_rules()
    stream = generate(manifest, days, seed=manifest.get("seed", 7) if seed is None else seed)
    index, asg_tags = tag_index_from_manifest(manifest)
    ledger = MemoryLedger()
    opened: dict[str, IncidentCandidate] = {}
    sent: Counter[str] = Counter()

    def hand_over(candidate: IncidentCandidate) -> tuple[str, bool]:
        new = candidate.group_key not in opened
        prev = opened.get(candidate.group_key)
        alerts = {a.event_id: a for a in (prev.alerts if prev else [])} | {a.event_id: a for a in candidate.alerts}
        merged = sorted(alerts.values(), key=lambda a: a.time)
        worst = max([candidate.severity, prev.severity] if prev else [candidate.severity], key=lambda x: SEVERITY_ORDER[x])
        opened[candidate.group_key] = candidate.model_copy(update={  # like the incident store: severity only rises
            "alerts": merged, "severity": worst, "first_seen": merged[0].time, "last_seen": merged[-1].time})
        return f"INC-{list(opened).index(candidate.group_key) + 1:04d}", new

    def publish(arn: str, subject: str, message: str) -> str:
        sent[arn.rsplit(":", 1)[-1]] += 1
        return f"m-{sum(sent.values())}"

    delivered: list[datetime] = []  # delivery time of the batch being processed

    def enricher(alerts: list[Alert]) -> None:
        for a in alerts:  # received when the replayed stream delivers it, not when the replay runs
            a.received_at = delivered[-1] if delivered else a.time
        enrich_tags(alerts, index=index, asg_tags=asg_tags)

    topics = {f"aiops-alerts-{t}": f"arn:aws:sns:us-east-1:{manifest['account_id']}:aiops-alerts-{t}"
              for t in ("storefront", "payments", "platform")}
    decisions: Counter[str] = Counter()
    funnel: Counter[str] = Counter()
    by_source: dict[str, Counter[str]] = {}
    batch: list[Any] = []
    batch_end: datetime | None = None

    def flush() -> None:
        if not batch:
            return
        delivered[:] = [batch_end] if batch_end is not None else []
        out = process(list(batch), run_id="replay", rules=rules, ledger=ledger, hand_over=hand_over, publish=publish,
                      enricher=enricher, notify=True, topic_arns=topics)
        funnel["raw_events"] += out["raw_events"]
        funnel["dead_letters"] += out["dead_letters"]
        funnel["alerts"] += out["alerts"]
        decisions.update(out["decisions"])
        batch.clear()

    for t, body in stream.events:
        if batch_end is not None and t >= batch_end:
            flush()
            batch_end = None
        if batch_end is None:
            batch_end = t + timedelta(minutes=batch_minutes)
        batch.append(body)
    flush()
    for row in ledger.rows.values():
        by_source.setdefault(row.source, Counter())[row.decision] += 1
    funnel["redeliveries"] = decisions.get("redelivery", 0)
    funnel["duplicates"] = decisions.get("duplicate", 0)
    funnel["resolved"] = decisions.get("resolved", 0)
    funnel["suppressed"] = decisions.get("suppressed", 0)
    funnel["informational"] = decisions.get("informational", 0)
    funnel["accepted"] = decisions.get("accepted", 0)
    funnel["incident_candidates"] = len(opened)
    funnel["notifications"] = sum(sent.values())
    detected = []
    for truth in stream.truth:
        rid = truth["resource"]
        ids = {rid, *(v for k, v in manifest["resources"]["instances"].items() if k == rid)}
        if "/" in rid:  # a target group key service/env
            ids.add(manifest["resources"]["target_groups"][rid]["dimension"].split("/")[-1])
            service, env = rid.split("/")
        else:
            service = env = None
        def about(a: Alert, ids: set[str] = ids, service: str | None = service, env: str | None = env) -> bool:
            if service and (a.service, a.env) == (service, env):
                return True
            return a.resource in ids or any(i in (a.metric or "") for i in ids)

        lo, hi = truth["start"] - timedelta(minutes=5), truth["start"] + timedelta(minutes=60)
        hits = [c for c in opened.values() if any(about(a) and lo <= a.time <= hi for a in c.alerts)]
        detected.append({"id": truth["id"], "candidates": len(hits)})
    return ReplayResult(days=days, anchor=manifest["anchor"], funnel={s: funnel.get(s, 0) for s in STAGES}, decisions=decisions,
                        by_source=by_source, candidates=list(opened.values()), detected=detected,
                        notifications_by_topic=sent)
