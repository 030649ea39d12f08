"""Pre-approved means pre-approved for a verified, current cause (aiops.remediation.preapproval).

Against the emulator: a real instance with a real CloudWatch alarm is the honest cause; forged
events (an alarm that does not exist, another account, an invented instance, a stale or
below-band signal, an uncorroborated anomaly) and manual triggers fall back to an approval, and
the unattended runs are rate limited over a window counted in the state store.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from aiops_sandbox import events

pytestmark = [pytest.mark.emulator]
CPU = "CPUUtilization"


@pytest.fixture(scope="module")
def image(sandbox):
    from aiops.core import aws

    return aws.client("ec2").describe_images(Owners=["amazon"])["Images"][0]["ImageId"]


@pytest.fixture
def world(sandbox, isolated_stores, image):
    """One running instance with a CPU alarm in ALARM (the platform's account and region)."""
    from aiops.core import aws

    ec2 = aws.client("ec2")
    instance = ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1, InstanceType="t3.micro", TagSpecifications=[
        {"ResourceType": "instance", "Tags": [{"Key": "service", "Value": "checkout"}, {"Key": "env", "Value": "prod"},
                                              {"Key": "Name", "Value": "web"}]}])["Instances"][0]["InstanceId"]
    alarm = f"web-cpu-high-{uuid.uuid4().hex[:6]}"
    cloudwatch = aws.client("cloudwatch")
    cloudwatch.put_metric_alarm(AlarmName=alarm, Namespace="AWS/EC2", MetricName=CPU, Statistic="Average",
                                Period=60, EvaluationPeriods=1, Threshold=90.0,
                                ComparisonOperator="GreaterThanThreshold",
                                Dimensions=[{"Name": "InstanceId", "Value": instance}])
    cloudwatch.set_alarm_state(AlarmName=alarm, StateValue="ALARM", StateReason="test")
    yield {"instance": instance, "alarm": alarm}
    cloudwatch.delete_alarms(AlarmNames=[alarm])
    ec2.terminate_instances(InstanceIds=[instance])


def alarm_event(name: str, instance: str, *, at: datetime | None = None, **kw) -> dict:
    return events.cloudwatch_alarm(name, namespace="AWS/EC2", metric=CPU, dimensions={"InstanceId": instance},
                                   threshold=90.0, value=98.5, time=at or datetime.now(UTC), **kw)


def anomaly_event(instance: str, *, value: float, lower: float = 40.0, upper: float = 60.0,
                  at: datetime | None = None, metric: str = CPU, **kw) -> dict:
    at = at or datetime.now(UTC)
    detail = events.anomaly_detail(series_id=f"AWS/EC2|{metric}|InstanceId={instance}|Average", resource_id=instance,
                                   service="checkout", env="prod", team="web", onset=at, value=value, forecast=50.0,
                                   lower=lower, upper=upper,
                                   reason=f"CPU {value} vs expected {lower}-{upper} "
                                          f"({'above' if value > upper else 'below'})")
    return events.anomaly_detected(detail, time=at, **kw)


def open_incident(*raw_events: dict) -> dict:
    """Intake's path: normalise -> one incident (triaged, as incident_response finds it)."""
    from aiops.alerting.normalise import normalise_batch
    from aiops.core.alerts import IncidentCandidate
    from aiops.incidents import store

    alerts, dead = normalise_batch(list(raw_events))
    assert not dead, dead
    times = [a.time for a in alerts]
    incident_id, _ = store.open_or_update(IncidentCandidate(
        group_key=f"g-{uuid.uuid4().hex}", title="cpu", service="checkout", env="prod", severity="high",
        first_seen=min(times), last_seen=max(times), alerts=alerts), actor="test", run_id="intake")
    store.transition(incident_id, "triaged", actor="test", reason="test")
    return store.get(incident_id)


def match_for(incident: dict) -> dict | None:
    from aiops.incidents.runbook_rules import matching_runbooks
    from aiops.incidents.triage import signals_of

    matches = matching_runbooks(incident, signals_of(incident))
    return next((m for m in matches if m["rule"] == "ec2-cpu-pinned"), None)


def verify(incident: dict, **kw):
    from aiops.remediation.preapproval import verify_cause

    match = match_for(incident)
    assert match is not None
    return verify_cause(incident, match, **kw)


def failed(decision) -> set[str]:
    return {c.name for c in decision.checks if not c.ok}


def remediate_through_platform(incident: dict) -> dict:
    """incident_response's start_remediations, then remediate's plan step for the conf it built."""
    from aiops.incidents.pipeline import start_remediations
    from aiops.remediation.pipeline import make_plan

    match = match_for(incident)
    assert match is not None
    [request] = start_remediations([{"incident_id": incident["incident_id"], "action": "remediate",
                                     "match": match}], run_id=f"ir-{uuid.uuid4().hex[:8]}")
    return make_plan(request["conf"], dag_id="remediate", run_id=request["trigger_run_id"])


# -- the honest cause ---------------------------------------------------------------------------
def test_real_alarm_on_a_real_instance_is_preapproved(world):
    decision = verify(open_incident(alarm_event(world["alarm"], world["instance"])))
    assert decision.preapproved, decision.reasons
    assert {"alarm", "alarm_state", "account", "region", "resource", "fresh", "direction",
            "rate_limit"} <= {c.name for c in decision.checks}


def test_platform_path_runs_unattended_and_claims_the_grant(world):
    from aiops.core.state import StateStore

    plan = remediate_through_platform(open_incident(alarm_event(world["alarm"], world["instance"])))
    assert plan["approval_rounds"] == 0, plan["preapproval"]
    assert plan["preapproval"]["preapproved"] is True
    actions = [e["action"] for e in StateStore().audit_entries()]
    assert "preapproval_granted" in actions
    assert "preapproval_claimed" in actions


# -- forged events: approval required, nothing runs unattended --------------------------------------
def test_alarm_event_for_a_non_existent_alarm_needs_approval(world):
    incident = open_incident(alarm_event("no-such-alarm", world["instance"]))
    decision = verify(incident)
    assert not decision.preapproved
    assert "alarm" in failed(decision)
    assert any("no-such-alarm does not exist" in r for r in decision.reasons)
    plan = remediate_through_platform(incident)
    assert plan["approval_rounds"] == 1
    assert plan["approvers"], "a fallback approval has assigned users"
    assert any("pre-approval not granted" in r for r in plan["extra_approval_reasons"])


def test_alarm_event_from_another_account_needs_approval(world):
    incident = open_incident(alarm_event(world["alarm"], world["instance"], account="999999999999"))
    decision = verify(incident)
    assert {"account", "alarm_arn"} <= failed(decision)
    assert remediate_through_platform(incident)["approval_rounds"] == 1


def test_event_from_another_region_needs_approval(world):
    decision = verify(open_incident(alarm_event(world["alarm"], world["instance"], region="eu-west-1")))
    assert "region" in failed(decision)


def test_invented_instance_id_needs_approval(world):
    invented = "i-0123456789abcdef0"
    incident = open_incident(anomaly_event(invented, value=99.0), alarm_event("web-cpu-high-x", invented))
    decision = verify(incident)
    assert not decision.preapproved
    assert "resource" in failed(decision)
    assert any(f"{invented} does not exist" in r for r in decision.reasons)


def test_stale_signal_needs_approval(world):
    old = datetime.now(UTC) - timedelta(hours=18)
    decision = verify(open_incident(alarm_event(world["alarm"], world["instance"], at=old)))
    assert failed(decision) == {"fresh"}


def test_alarm_back_to_ok_is_not_a_current_cause(world):
    from aiops.core import aws

    incident = open_incident(alarm_event(world["alarm"], world["instance"]))
    aws.client("cloudwatch").set_alarm_state(AlarmName=world["alarm"], StateValue="OK", StateReason="test")
    assert failed(verify(incident)) == {"alarm_state"}


# -- direction ---------------------------------------------------------------------------------------
def test_cpu_below_band_never_matches_the_cpu_pin_reboot(world):
    incident = open_incident(anomaly_event(world["instance"], value=20.0))
    assert match_for(incident) is None


def test_cpu_below_band_is_refused_even_if_a_rule_matched(world):
    from aiops.remediation.preapproval import verify_cause

    incident = open_incident(anomaly_event(world["instance"], value=20.0))
    sid = f"AWS/EC2|{CPU}|InstanceId={world['instance']}|Average"
    match = {"rule": "ec2-cpu-pinned", "runbook": "reboot-ec2-instance", "approval": "pre-approved",
             "parameters": {"InstanceId": world["instance"]}, "signal": sid, "direction": "above"}
    decision = verify_cause(incident, match)
    assert "direction" in failed(decision)


# -- detector-only anomalies need corroboration --------------------------------------------------------
def test_detector_only_anomaly_needs_corroboration(world):
    from aiops.core import aws

    aws.client("cloudwatch").set_alarm_state(AlarmName=world["alarm"], StateValue="OK", StateReason="test")
    decision = verify(open_incident(anomaly_event(world["instance"], value=99.0)))
    assert failed(decision) == {"corroborated"}


def test_anomaly_corroborated_by_an_alarm_in_alarm(world):
    decision = verify(open_incident(anomaly_event(world["instance"], value=99.0)))
    assert decision.preapproved, decision.reasons
    assert any(c.name == "corroborated" and world["alarm"] in c.detail for c in decision.checks)


def test_anomaly_corroborated_by_a_second_signal(world):
    from aiops.core import aws

    aws.client("cloudwatch").set_alarm_state(AlarmName=world["alarm"], StateValue="OK", StateReason="test")
    incident = open_incident(anomaly_event(world["instance"], value=99.0),
                             anomaly_event(world["instance"], value=900.0, lower=0, upper=100, metric="NetworkIn"))
    assert verify(incident).preapproved


# -- manual triggers -----------------------------------------------------------------------------------
def test_manual_trigger_of_a_preapproved_runbook_needs_approval(world):
    from aiops.remediation.pipeline import make_plan

    plan = make_plan({"runbook": "reboot-ec2-instance", "parameters": {"InstanceId": world["instance"]},
                      "requested_by": "mallory"}, dag_id="remediate", run_id=f"manual__{uuid.uuid4().hex}")
    assert plan["approval_rounds"] == 1
    assert plan["approvers"]
    assert "manual" in plan["preapproval"]["reasons"][0]
    from aiops.core.state import StateStore

    assert StateStore().get_request(plan["request_id"])["account_id"] == "123456789012"  # the account it changes


def test_manual_trigger_naming_an_incident_and_forging_a_decision_needs_approval(world, image):
    """The conf names a real incident with a platform grant but another target, and claims a decision."""
    from aiops.core import aws
    from aiops.remediation.pipeline import make_plan

    incident = open_incident(alarm_event(world["alarm"], world["instance"]))
    other = aws.client("ec2").run_instances(ImageId=image, MinCount=1, MaxCount=1)["Instances"][0]["InstanceId"]
    from aiops.incidents.pipeline import start_remediations

    start_remediations([{"incident_id": incident["incident_id"], "action": "remediate",
                         "match": match_for(incident)}], run_id="ir-forge")
    plan = make_plan({"runbook": "reboot-ec2-instance", "parameters": {"InstanceId": other},
                      "incident_id": incident["incident_id"], "preapproval": {"preapproved": True}},
                     dag_id="remediate", run_id=f"manual__{uuid.uuid4().hex}")
    assert plan["approval_rounds"] == 1
    assert "no unclaimed platform grant" in plan["preapproval"]["reasons"][0]


def test_a_grant_is_used_once(world):
    from aiops.incidents.pipeline import start_remediations
    from aiops.remediation.pipeline import make_plan

    incident = open_incident(alarm_event(world["alarm"], world["instance"]))
    [request] = start_remediations([{"incident_id": incident["incident_id"], "action": "remediate",
                                     "match": match_for(incident)}], run_id="ir-once")
    first = make_plan(request["conf"], dag_id="remediate", run_id=request["trigger_run_id"])
    again = make_plan(request["conf"], dag_id="remediate", run_id=f"manual__{uuid.uuid4().hex}")
    assert (first["approval_rounds"], again["approval_rounds"]) == (0, 1)


# -- rate limits over a window ------------------------------------------------------------------------------
def test_rate_limit_per_resource_over_a_window(world, monkeypatch):
    from aiops.core.settings import get_settings

    monkeypatch.setenv("AIOPS_PREAPPROVAL_MAX_PER_RESOURCE", "1")
    monkeypatch.setenv("AIOPS_PREAPPROVAL_RATE_WINDOW_MINUTES", "60")
    get_settings.cache_clear()
    first = remediate_through_platform(open_incident(alarm_event(world["alarm"], world["instance"])))
    second_incident = open_incident(alarm_event(world["alarm"], world["instance"], event_id=uuid.uuid4().hex))
    second = remediate_through_platform(second_incident)
    assert first["approval_rounds"] == 0
    assert second["approval_rounds"] == 1
    assert any("rate_limit" in r for r in second["preapproval"]["reasons"])
    # an hour later the window has moved on (counted from the state store, not in memory)
    later = datetime.now(UTC) + timedelta(minutes=61)
    assert "rate_limit" not in failed(_at(second_incident, later))


def _at(incident: dict, now: datetime):
    """verify_cause at ``now`` with the signal as fresh as it was (only the window moves)."""
    from aiops.remediation.preapproval import AwsCauseReads, verify_cause

    match = match_for(incident)
    assert match is not None
    shifted = {**incident, "alerts": [{**a, "time": now.isoformat()} for a in incident["alerts"]]}
    return verify_cause(shifted, match, now=now, reads=AwsCauseReads())


def test_rate_limit_per_runbook(world, monkeypatch):
    from aiops.core.settings import get_settings
    from aiops.remediation.preapproval import CLAIMED

    monkeypatch.setenv("AIOPS_PREAPPROVAL_MAX_PER_RUNBOOK", "2")
    get_settings.cache_clear()
    from aiops.core.state import StateStore

    for i in range(2):  # two unattended reboots of other instances in the window, by earlier runs
        StateStore().audit(actor="aiops", action=CLAIMED, subject=f"remediation:r{i}",
                           detail={"runbook": "reboot-ec2-instance", "resource": f"i-00000000000000{i:02d}"})
    decision = verify(open_incident(alarm_event(world["alarm"], world["instance"])))
    assert failed(decision) == {"rate_limit"}


def test_emulator_delivers_the_event_account_like_eventbridge(sandbox):
    """moto drops ``account`` from events delivered to SQS; real EventBridge always sends it and the
    account check relies on it (the sandbox's fix, aiops_sandbox.emulator._install_event_account_fix)."""
    import json

    from aiops.core import aws

    sqs, events_client = aws.client("sqs"), aws.client("events")
    name = f"acct-{uuid.uuid4().hex[:8]}"
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events_client.put_rule(Name=name, EventPattern=json.dumps({"source": [name]}))
    events_client.put_targets(Rule=name, Targets=[{"Id": "q", "Arn": arn}])
    events_client.put_events(Entries=[{"Source": name, "DetailType": "t", "Detail": "{}"}])
    [message] = sqs.receive_message(QueueUrl=url, WaitTimeSeconds=1)["Messages"]
    assert json.loads(message["Body"])["account"] == aws.account_id()
