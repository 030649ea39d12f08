"""CloudTrail detectors on real-format records (built by the sandbox's record builder and by hand):
each detection fires on its pattern, with evidence, and not on the benign look-alikes."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from aiops.security.collect import MalformedLogFile, mentions, parse_log_file
from aiops.security.detections import DETECTORS, DetectionContext, TrailEvent, detect
from aiops.security.pipeline import DETAIL_KEYS, alert_entry, keys_from_notifications

T0 = datetime(2026, 11, 20, 10, tzinfo=UTC)
CTX = DetectionContext(home_regions=frozenset({"us-east-1"}), access_denied_threshold=10,
                       access_denied_window=timedelta(minutes=10))
USER = {"type": "IAMUser", "arn": "arn:aws:iam::123456789012:user/bob", "userName": "bob",
        "accountId": "123456789012", "accessKeyId": "AKIAEXAMPLE"}
ROOT = {"type": "Root", "arn": "arn:aws:iam::123456789012:root", "accountId": "123456789012"}


def ev(name, source="ec2.amazonaws.com", *, who=USER, t=0, region="us-east-1", params=None, response=None,
       error=None, extra=None, read_only=False, n=0):
    rec = {"eventVersion": "1.09", "userIdentity": who,
           "eventTime": (T0 + timedelta(seconds=t)).strftime("%Y-%m-%dT%H:%M:%SZ"), "eventSource": source,
           "eventName": name, "awsRegion": region, "sourceIPAddress": "198.51.100.7", "userAgent": "aws-cli",
           "requestParameters": params, "responseElements": response, "eventID": f"{name}-{t}-{n}",
           "readOnly": read_only, "eventType": "AwsApiCall", "recipientAccountId": "123456789012"}
    if error:
        rec["errorCode"] = error
    if extra:
        rec["additionalEventData"] = extra
    return TrailEvent(rec, f"AWSLogs/123456789012/CloudTrail/{region}/2026/11/20/f.json.gz")


def names(events, only=None):
    return [d.detection for d in detect(events, CTX, only=only)]


LOGIN = {"source": "signin.amazonaws.com"}
CASES = [
    pytest.param("root_account_usage", [ev("GetAccountSummary", "iam.amazonaws.com", who=ROOT)],
                 [ev("GetAccountSummary", "iam.amazonaws.com",
                     who={"type": "AWSService", "invokedBy": "config.amazonaws.com"})], id="root"),
    pytest.param("console_login_without_mfa",
                 [ev("ConsoleLogin", **LOGIN, response={"ConsoleLogin": "Success"}, extra={"MFAUsed": "No"})],
                 [ev("ConsoleLogin", **LOGIN, response={"ConsoleLogin": "Failure"}, extra={"MFAUsed": "No"}),
                  ev("ConsoleLogin", **LOGIN, response={"ConsoleLogin": "Success"}, extra={"MFAUsed": "Yes"}, t=5)],
                 id="login_without_mfa"),
    pytest.param("iam_policy_change",
                 [ev("AttachUserPolicy", "iam.amazonaws.com",
                     params={"userName": "ci", "policyArn": "arn:aws:iam::aws:policy/AdministratorAccess"})],
                 [ev("AttachUserPolicy", "iam.amazonaws.com", params={"userName": "ci"}, error="AccessDenied"),
                  ev("ListPolicies", "iam.amazonaws.com", read_only=True, t=3)], id="policy_change"),
    pytest.param("access_key_created",
                 [ev("CreateAccessKey", "iam.amazonaws.com", params={"userName": "ci"},
                     response={"accessKey": {"accessKeyId": "AKIANEW", "userName": "ci", "status": "Active"}})],
                 [ev("ListAccessKeys", "iam.amazonaws.com", read_only=True)], id="access_key"),
    pytest.param("security_group_opened_to_world",
                 [ev("AuthorizeSecurityGroupIngress", params={"groupId": "sg-1", "ipPermissions": {"items": [
                     {"ipProtocol": "tcp", "fromPort": 22, "toPort": 22,
                      "ipRanges": {"items": [{"cidrIp": "0.0.0.0/0"}]}}]}})],
                 [ev("AuthorizeSecurityGroupIngress", params={"groupId": "sg-1", "ipPermissions": {"items": [
                     {"ipProtocol": "tcp", "fromPort": 5432, "toPort": 5432,
                      "ipRanges": {"items": [{"cidrIp": "10.0.0.0/8"}]}}]}})], id="sg_world"),
    pytest.param("cloudtrail_tampering", [ev("StopLogging", "cloudtrail.amazonaws.com", params={"name": "t"})],
                 [ev("DescribeTrails", "cloudtrail.amazonaws.com", read_only=True),
                  ev("StopLogging", "cloudtrail.amazonaws.com", params={"name": "t"}, error="AccessDenied", t=2)],
                 id="trail_stopped"),
    pytest.param("unusual_region_activity", [ev("RunInstances", region="ap-east-1")],
                 [ev("GetUser", "iam.amazonaws.com", region="ap-east-1", read_only=True),
                  ev("RunInstances", region="us-east-1")], id="unusual_region"),
]


@pytest.mark.parametrize(("detection", "bad", "benign"), CASES)
def test_detection_fires_on_its_pattern_only(detection, bad, benign):
    found = detect(bad, CTX, only=[detection])
    assert [d.detection for d in found] == [detection]
    assert found[0].event_ids == [bad[0].record["eventID"]]
    assert found[0].log_keys == [bad[0].log_key]
    assert names(benign, only=[detection]) == []


def test_every_detector_has_a_case():
    assert {p.values[0] for p in CASES} | {"access_denied_burst"} == set(DETECTORS)


def test_access_denied_burst_threshold_and_window():
    burst = [ev("ListUsers", "iam.amazonaws.com", t=20 * i, error="AccessDenied", n=i) for i in range(10)]
    found = detect(burst, CTX, only=["access_denied_burst"])
    assert len(found) == 1
    assert found[0].evidence["count"] == 10
    assert len(found[0].event_ids) == 10
    assert names(burst[:9], only=["access_denied_burst"]) == []  # below the threshold
    spread = [ev("ListUsers", "iam.amazonaws.com", t=120 * i, error="AccessDenied", n=i) for i in range(10)]
    assert names(spread, only=["access_denied_burst"]) == []  # 10 denials over 18 minutes: not a burst


def test_unusual_region_groups_an_episode_per_actor_and_region():
    evs = [ev("DescribeInstances", region="ap-east-1", t=i, read_only=True, n=i) for i in range(3)]
    evs.append(ev("RunInstances", region="ap-east-1", t=10))
    [d] = detect(evs, CTX, only=["unusual_region_activity"])
    assert d.severity == "HIGH"  # a write in the odd region
    assert d.evidence["write_calls"] == ["RunInstances"]
    assert len(d.event_ids) == 4


def test_alert_detail_has_exactly_the_agreed_keys():
    [d] = detect([ev("StopLogging", "cloudtrail.amazonaws.com", params={"name": "t"})], CTX)
    entry = alert_entry(d)
    assert entry["Source"] == "matcarv.aiops"
    assert entry["DetailType"] == "AIOps Security Event"
    detail = json.loads(entry["Detail"])
    assert set(detail) == set(DETAIL_KEYS)
    assert detail["evidence"]["fingerprint"] == d.fingerprint


def test_notifications_give_log_keys_only():
    key = "AWSLogs/123456789012/CloudTrail/us-east-1/2026/11/20/123456789012_CloudTrail_us-east-1_20261120T1000Z_abcdefABCDEF0123.json.gz"
    body = {"Records": [
        {"eventName": "ObjectCreated:Put", "s3": {"bucket": {"name": "trail"}, "object": {"key": key.replace("/", "%2F")}}},
        {"eventName": "ObjectCreated:Put", "s3": {"bucket": {"name": "trail"}, "object": {
            "key": "AWSLogs/123456789012/CloudTrail-Digest/us-east-1/2026/11/20/d.json.gz"}}},
        {"eventName": "ObjectRemoved:Delete", "s3": {"bucket": {"name": "trail"}, "object": {"key": key}}}]}
    test_event = {"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": "trail"}
    assert keys_from_notifications([json.dumps(body), json.dumps(test_event), "not json"]) == [
        {"bucket": "trail", "key": key}]


@pytest.mark.parametrize(("data", "reason"), [
    pytest.param(b"", "empty", id="empty"),
    pytest.param(b"\x1f\x8b\x08\x00garbage", "gzip", id="corrupt_gzip"),
    pytest.param(__import__("gzip").compress(b'{"Records": [1]}'), "record 0", id="record_not_object"),
    pytest.param(__import__("gzip").compress(b'{"records": []}'), "Records", id="wrong_shape"),
    pytest.param(__import__("gzip").compress(b'{"Records": [{"eventName": "x"}]}'), "eventTime", id="no_time"),
])
def test_malformed_files_raise_with_reason(data, reason):
    with pytest.raises(MalformedLogFile) as info:
        parse_log_file("k.json.gz", data)
    assert reason in info.value.reason


def test_mentions_matches_whole_ids_and_arns():
    rec = {"requestParameters": {"groupId": "sg-12"}, "resources": [{"ARN": "arn:aws:s3:::my-bucket"}]}
    assert mentions(rec, ["sg-12"])
    assert not mentions(rec, ["sg-1"])
    assert mentions(rec, ["my-bucket"])
    assert mentions(rec, ["arn:aws:s3:::my-bucket"])


def test_message_bodies_come_from_the_asset_watcher_payload():
    from types import SimpleNamespace

    from aiops.security.pipeline import bodies_from_asset_events

    events = {"asset": [SimpleNamespace(extra={"payload": {"message_batch": [{"Body": "a", "MessageId": "1"},
                                                                             {"Body": "b"}]}}),
                        {"extra": {"payload": {"message_batch": [{"Body": "c"}]}}}, SimpleNamespace(extra=None)]}
    assert bodies_from_asset_events(events) == ["a", "b", "c"]
    assert bodies_from_asset_events(None) == []


def test_cloudtrail_files_asset_watches_the_sqs_queue(monkeypatch):
    from aiops.airflow.assets import cloudtrail_files_asset
    from aiops.core.settings import get_settings

    monkeypatch.setenv("AIOPS_SECURITY_QUEUE_URL", "https://sqs.eu-west-1.amazonaws.com/111122223333/trail-files")
    get_settings.cache_clear()
    try:
        asset = cloudtrail_files_asset()
    finally:
        get_settings.cache_clear()
    [watcher] = asset.watchers
    assert asset.name == "aiops_cloudtrail_files"
    assert "111122223333/trail-files" in json.dumps(watcher.trigger.serialize()[1], default=str)
