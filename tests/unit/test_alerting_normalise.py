"""Normalisation of every event family from real-shaped payloads; bad payloads to dead letters."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from aiops.alerting.normalise import NORMALISERS, DeadLetter, normalise_batch, normalise_message, parse_time
from aiops.core.alerts import Alert
from aiops_sandbox import events as ev

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "events"
T = datetime(2026, 11, 26, 20, 15, tzinfo=UTC)


def fixture(name: str) -> dict:
    return json.loads((FIXTURES / f"{name}.json").read_text())


def one(body) -> Alert:
    [result] = normalise_message(body)
    assert isinstance(result, Alert), getattr(result, "reason", result)
    return result


@pytest.mark.parametrize(("name", "source", "resource", "severity", "state", "extra"), [
    pytest.param("cloudwatch_alarm", "cloudwatch_alarm", "i-0e32a774a2a815833", "high", "firing",
                 {"metric": "AWS/EC2|CPUUtilization|InstanceId=i-0e32a774a2a815833|Average"}, id="cloudwatch_alarm"),
    pytest.param("ec2_state", "ec2_state", "i-0e32a774a2a815833", "medium", "firing", {}, id="ec2_stopped"),
    pytest.param("rds_event", "rds_event", "arn:aws:rds:us-east-1:123456789012:db:checkout-prod-db", "high", "firing",
                 {}, id="rds_failover"),
    pytest.param("asg_event", "asg_event", "checkout-prod-asg", "info", "firing", {}, id="asg_terminate"),
    pytest.param("securityhub", "securityhub", "sg-0123456789abcdef0", "high", "firing",
                 {"resource_type": "ec2:security-group"}, id="securityhub_asff"),
    pytest.param("guardduty", "guardduty", "i-7724faefeaddc417c", "medium", "firing",
                 {"resource_type": "ec2:instance"}, id="guardduty"),
    pytest.param("health", "health", "i-ec5a0afaca4d859cd", "medium", "firing", {}, id="health_scheduled"),
    pytest.param("aiops_anomaly", "aiops_anomaly", "i-0e32a774a2a815833", "medium", "firing",
                 {"service": "checkout", "team": "storefront"}, id="aiops_anomaly"),
    pytest.param("aiops_slo", "aiops_slo", "slo:checkout-availability", "critical", "firing",
                 {"service": "checkout", "env": "prod"}, id="aiops_slo_page"),
    pytest.param("aiops_security", "security_event", "sg-0123456789abcdef0", "high", "firing", {},
                 id="aiops_security_event"),
])
def test_each_family_normalises(name, source, resource, severity, state, extra):
    event = fixture(name)
    alert = one(json.dumps(event))
    assert alert.source == source
    assert alert.resource == resource
    assert alert.severity == severity
    assert alert.state == state
    assert alert.event_id == event["id"]
    assert alert.raw == event  # the payload is kept unchanged
    assert alert.time.tzinfo is not None
    assert len(alert.fingerprint) == 32
    for key, value in extra.items():
        assert getattr(alert, key) == value


def test_every_registered_family_has_a_fixture():
    covered = {(e["source"], e["detail-type"]) for e in (json.loads(p.read_text()) for p in FIXTURES.glob("*.json"))}
    families = {src for src, _ in NORMALISERS}
    assert families <= {src for src, _ in covered}


def test_alarm_ok_is_resolved_and_shares_fingerprint_with_alarm():
    firing = one(ev.cloudwatch_alarm("a1", namespace="AWS/EC2", metric="CPUUtilization",
                                     dimensions={"InstanceId": "i-1"}, time=T))
    ok = one(ev.cloudwatch_alarm("a1", namespace="AWS/EC2", metric="CPUUtilization", dimensions={"InstanceId": "i-1"},
                                 state="OK", previous_state="ALARM", time=T))
    assert (firing.state, ok.state) == ("firing", "resolved")
    assert firing.fingerprint == ok.fingerprint
    assert firing.event_id != ok.event_id


def test_health_rfc1123_time_is_parsed():
    alert = one(fixture("health"))
    assert alert.time == T


@pytest.mark.parametrize("text", ["2026-11-26T20:15:00Z", "2026-11-26T20:15:00.000+0000", "Thu, 26 Nov 2026 20:15:00 GMT",
                                  "2026-11-26T20:15:00+00:00"])
def test_parse_time_forms(text):
    assert parse_time(text) == T


def test_securityhub_batch_splits_per_finding():
    f1 = ev.asff_finding(title="a", resource_type="AwsS3Bucket", resource_id="arn:aws:s3:::b1", time=T)
    f2 = ev.asff_finding(title="b", resource_type="AwsS3Bucket", resource_id="arn:aws:s3:::b2", time=T)
    results = normalise_message(ev.securityhub_findings([f1, f2], time=T, event_id="e1"))
    assert [r.resource for r in results] == ["b1", "b2"]
    assert [r.event_id for r in results] == ["e1#0", "e1#1"]


@pytest.mark.parametrize(("body", "reason"), [
    pytest.param("{not json", "bad JSON", id="bad_json"),
    pytest.param("[1, 2]", "not an EventBridge event", id="json_array"),
    pytest.param(json.dumps({k: v for k, v in fixture("ec2_state").items() if k != "detail"}), "envelope lacks detail",
                 id="missing_detail"),
    pytest.param(json.dumps({**fixture("ec2_state"), "detail-type": "EC2 Spot Instance Interruption Warning"}),
                 "unknown event type", id="unknown_detail_type"),
    pytest.param(json.dumps({**fixture("ec2_state"), "detail": {"state": "stopped"}}), "lacks instance-id",
                 id="missing_field"),
    pytest.param(json.dumps({**fixture("cloudwatch_alarm"), "time": "yesterday"}), "not a timestamp", id="bad_time"),
])
def test_bad_payloads_become_dead_letters(body, reason):
    [result] = normalise_message(body, message_id="m-1")
    assert isinstance(result, DeadLetter)
    assert reason in result.reason
    assert result.body == body
    assert result.message_id == "m-1"


def test_bad_messages_do_not_block_the_batch():
    good1, good2 = fixture("ec2_state"), fixture("rds_event")
    alerts, dead = normalise_batch([{"Body": "{oops", "MessageId": "1"}, {"Body": json.dumps(good1), "MessageId": "2"},
                                    {"Body": json.dumps({**good1, "source": "aws.s3"}), "MessageId": "3"},
                                    {"Body": json.dumps(good2), "MessageId": "4"}])
    assert [a.event_id for a in alerts] == [good1["id"], good2["id"]]
    assert [d.message_id for d in dead] == ["1", "3"]


def test_dead_letter_key_is_stable_for_redelivery():
    a, b = normalise_message("{x"), normalise_message("{x")
    assert isinstance(a[0], DeadLetter)
    assert isinstance(b[0], DeadLetter)
    assert a[0].key == b[0].key


def test_issue7_security_detection_detail_normalises():
    """The detail the security-events pipeline really emits (``Detection.detail()``) is understood."""
    from aiops.security.detections import Detection

    det = Detection(detection="security_group_opened_to_world", severity="high", title="SSH opened to the world",
                    resource="sg-1", actor="arn:aws:iam::123456789012:user/ci-legacy", region="us-east-1",
                    event_time="2026-11-26T06:32:09Z", event_ids=["e1"], log_keys=["k1"], evidence={"port": 22})
    alert = one(ev.envelope("matcarv.aiops", ev.SECURITY_DETAIL_TYPE, det.detail(), time=T))
    assert (alert.source, alert.resource, alert.severity) == ("security_event", "sg-1", "high")
    assert alert.labels["evidence"]["fingerprint"] == det.fingerprint
