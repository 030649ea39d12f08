"""The simulated account's CloudTrail log files: real delivery layout and record format,
determinism, and the injected security findings."""

from __future__ import annotations

import gzip
import json
from datetime import UTC, datetime, timedelta

import pytest

from aiops_sandbox.cloudtrail import (
    ADMIN_POLICY_ARN,
    ATTACKER_IP,
    CLOUDTRAIL_KEY_RE,
    DETECTIONS,
    InjectedSecurityEvent,
    TrailActor,
    build_cloudtrail_logs,
    parse_cloudtrail_file,
    truncated_file,
)

ACCOUNT = "123456789012"
REGION = "us-east-1"
ANCHOR = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
SG = "sg-0a1b2c3d4e5f60718"
TRAIL = "matcarv-trail"

USERS = [
    TrailActor("Root", "root", f"arn:aws:iam::{ACCOUNT}:root", None, True),
    TrailActor(
        "IAMUser", "alice.sre", f"arn:aws:iam::{ACCOUNT}:user/alice.sre", "AKIAALICESRE00000001", True
    ),
    TrailActor(
        "IAMUser", "bob.builder", f"arn:aws:iam::{ACCOUNT}:user/bob.builder", "AKIABOBBUILDER000001", False
    ),
    TrailActor(
        "IAMUser", "ci-legacy", f"arn:aws:iam::{ACCOUNT}:user/ci-legacy", "AKIACILEGACY00000001", False
    ),
]
RESOURCES = {
    "trail_name": TRAIL,
    "bastion_sg_id": SG,
    "instance_ids": "i-0123456789abcdef0,i-0fedcba9876543210",
}

COMMON_FIELDS = (
    "eventVersion",
    "userIdentity",
    "eventTime",
    "eventSource",
    "eventName",
    "awsRegion",
    "sourceIPAddress",
    "userAgent",
    "requestParameters",
    "responseElements",
    "eventID",
    "readOnly",
    "eventType",
    "managementEvent",
    "recipientAccountId",
    "eventCategory",
)


def build(**overrides):
    kwargs = {
        "account_id": ACCOUNT,
        "region": REGION,
        "anchor": ANCHOR,
        "seed": 42,
        "users": USERS,
        "resources": RESOURCES,
    }
    kwargs.update(overrides)
    return build_cloudtrail_logs(**kwargs)


@pytest.fixture(scope="module")
def built() -> tuple[list[tuple[str, bytes]], list[InjectedSecurityEvent]]:
    return build()


@pytest.fixture(scope="module")
def files(built) -> dict[str, list[dict]]:
    return {key: parse_cloudtrail_file(data) for key, data in built[0]}


@pytest.fixture(scope="module")
def injected(built) -> list[InjectedSecurityEvent]:
    return built[1]


@pytest.fixture(scope="module")
def by_event_id(files) -> dict[str, tuple[str, dict]]:
    return {r["eventID"]: (key, r) for key, records in files.items() for r in records}


def records_of(detection: str, injected, by_event_id) -> list[dict]:
    return [
        by_event_id[eid][1] for e in injected if e.detection == detection for eid in e.detail["event_ids"]
    ]


def parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


# ----------------------------------------------------------------------------- determinism


def test_same_arguments_give_byte_identical_files(built):
    again = build()
    assert again[0] == built[0]
    assert again[1] == built[1]


def test_different_seed_gives_different_files(built):
    other, _ = build(seed=43)
    assert [data for _, data in other] != [data for _, data in built[0]]


def test_gzip_header_carries_no_timestamp(built):
    _, data = built[0][0]
    assert data[:2] == b"\x1f\x8b"
    assert data[4:8] == b"\x00\x00\x00\x00"


# ----------------------------------------------------------------------------- delivery layout


def test_every_key_matches_the_cloudtrail_delivery_format(built):
    for key, _ in built[0]:
        m = CLOUDTRAIL_KEY_RE.match(key)
        assert m, key
        assert m["account"] == ACCOUNT
        assert m["stamp"][:8] == f"{m['year']}{m['month']}{m['day']}"


def test_home_region_has_one_file_per_hour(built):
    home = [key for key, _ in built[0] if CLOUDTRAIL_KEY_RE.match(key)["region"] == REGION]
    stamps = sorted(CLOUDTRAIL_KEY_RE.match(key)["stamp"] for key in home)
    expected = [(ANCHOR - timedelta(hours=k)).strftime("%Y%m%dT%H%MZ") for k in range(47, -1, -1)]
    assert stamps == expected


def test_records_lie_in_the_hour_before_their_key_timestamp_and_are_sorted(files):
    for key, records in files.items():
        delivered = datetime.strptime(CLOUDTRAIL_KEY_RE.match(key)["stamp"], "%Y%m%dT%H%MZ").replace(
            tzinfo=UTC
        )
        times = [parse_time(r["eventTime"]) for r in records]
        assert times == sorted(times), key
        assert all(delivered - timedelta(hours=1) <= t < delivered for t in times), key


def test_record_region_matches_its_key_region(files):
    for key, records in files.items():
        region = CLOUDTRAIL_KEY_RE.match(key)["region"]
        assert {r["awsRegion"] for r in records} == {region}, key


def test_background_has_15_to_40_events_per_hour(files, injected):
    flagged = {eid for e in injected for eid in e.detail["event_ids"]}
    for key, records in files.items():
        if CLOUDTRAIL_KEY_RE.match(key)["region"] != REGION:
            continue
        benign = [r for r in records if r["eventID"] not in flagged and r["sourceIPAddress"] != ATTACKER_IP]
        assert 15 <= len(benign) <= 40, (key, len(benign))


def test_global_service_events_go_to_us_east_1_when_home_region_differs():
    built_files, _ = build(region="eu-west-1")
    for key, data in built_files:
        region = CLOUDTRAIL_KEY_RE.match(key)["region"]
        for record in parse_cloudtrail_file(data):
            if record["eventSource"] in ("iam.amazonaws.com", "signin.amazonaws.com"):
                assert region == "us-east-1", key


# ----------------------------------------------------------------------------- record format


def test_every_record_has_the_cloudtrail_fields(files):
    for records in files.values():
        for r in records:
            missing = [f for f in COMMON_FIELDS if f not in r]
            assert not missing, (missing, r["eventName"])
            assert r["eventVersion"] == "1.09"
            assert r["eventCategory"] == "Management"
            assert r["recipientAccountId"] == ACCOUNT
            assert r["eventTime"].endswith("Z")
            assert r["eventSource"].endswith(".amazonaws.com")


def test_api_calls_have_a_request_id(files):
    calls = [r for records in files.values() for r in records if r["eventType"] == "AwsApiCall"]
    assert calls
    assert all(r["requestID"] for r in calls)


def test_event_ids_are_unique(files):
    ids = [r["eventID"] for records in files.values() for r in records]
    assert len(ids) == len(set(ids))


def test_console_sign_in_records_have_the_sign_in_shape(files):
    logins = [r for records in files.values() for r in records if r["eventName"] == "ConsoleLogin"]
    assert logins
    for r in logins:
        assert r["eventType"] == "AwsConsoleSignIn"
        assert r["eventSource"] == "signin.amazonaws.com"
        assert r["responseElements"]["ConsoleLogin"] in ("Success", "Failure")
        assert r["additionalEventData"]["MFAUsed"] in ("Yes", "No")
        assert r["additionalEventData"]["MobileVersion"] == "No"
        assert r["additionalEventData"]["LoginTo"].startswith("https://console.aws.amazon.com/")


def test_assumed_role_identities_carry_a_session_context(files):
    roles = [
        r["userIdentity"]
        for records in files.values()
        for r in records
        if r["userIdentity"]["type"] == "AssumedRole"
    ]
    assert roles
    for ident in roles:
        assert ident["accessKeyId"].startswith("ASIA")
        assert ident["sessionContext"]["sessionIssuer"]["type"] == "Role"
        assert ident["sessionContext"]["attributes"]["mfaAuthenticated"] in ("true", "false")


def test_background_includes_service_assume_role_calls(files):
    assumes = [
        r
        for records in files.values()
        for r in records
        if r["eventName"] == "AssumeRole" and r["userIdentity"]["type"] == "AWSService"
    ]
    assert assumes
    assert all(r["userIdentity"]["invokedBy"].endswith(".amazonaws.com") for r in assumes)


def test_background_includes_automation_run_instances(files):
    runs = [r for records in files.values() for r in records if r["eventName"] == "RunInstances"]
    assert any(r["userIdentity"]["type"] == "AssumedRole" for r in runs)


# ----------------------------------------------------------------------------- injected findings


@pytest.mark.parametrize("detection", [pytest.param(d, id=d) for d in DETECTIONS])
def test_each_detection_is_injected_and_lands_in_its_file(detection, injected, by_event_id):
    events = [e for e in injected if e.detection == detection]
    assert events
    for e in events:
        assert e.detail["event_ids"]
        for eid in e.detail["event_ids"]:
            key, _ = by_event_id[eid]
            assert key in e.detail["log_keys"]
        first_key, first = by_event_id[e.detail["event_ids"][0]]
        assert first_key == e.log_key
        assert first["eventName"] == e.event_name
        assert first["eventTime"] == e.event_time
        assert first["awsRegion"] == e.region


def test_injected_ids_are_unique(injected):
    assert len({e.id for e in injected}) == len(injected)


def test_root_account_usage_is_a_root_sign_in_and_a_root_api_call(injected, by_event_id):
    records = records_of("root_account_usage", injected, by_event_id)
    assert {r["userIdentity"]["type"] for r in records} == {"Root"}
    login = next(r for r in records if r["eventName"] == "ConsoleLogin")
    assert login["responseElements"] == {"ConsoleLogin": "Success"}
    assert any(r["eventType"] == "AwsApiCall" for r in records)


def test_root_sign_in_is_thirty_hours_before_anchor(injected):
    login = next(
        e for e in injected if e.detection == "root_account_usage" and e.event_name == "ConsoleLogin"
    )
    assert ANCHOR - timedelta(hours=30) <= parse_time(login.event_time) < ANCHOR - timedelta(hours=29)


def test_console_login_without_mfa_is_a_successful_iam_user_sign_in(injected, by_event_id):
    (login,) = records_of("console_login_without_mfa", injected, by_event_id)
    assert login["userIdentity"]["type"] == "IAMUser"
    assert login["userIdentity"]["userName"] == "bob.builder"
    assert login["responseElements"] == {"ConsoleLogin": "Success"}
    assert login["additionalEventData"]["MFAUsed"] == "No"


def test_no_other_successful_sign_in_lacks_mfa(files, injected):
    flagged = {eid for e in injected for eid in e.detail["event_ids"]}
    for records in files.values():
        for r in records:
            if r["eventName"] == "ConsoleLogin" and r["responseElements"]["ConsoleLogin"] == "Success":
                assert r["additionalEventData"]["MFAUsed"] == "Yes" or r["eventID"] in flagged


def test_iam_policy_change_attaches_administrator_access_and_puts_an_inline_policy(injected, by_event_id):
    records = records_of("iam_policy_change", injected, by_event_id)
    by_name = {r["eventName"]: r for r in records}
    assert by_name["AttachUserPolicy"]["requestParameters"]["policyArn"] == ADMIN_POLICY_ARN
    assert by_name["AttachUserPolicy"]["eventSource"] == "iam.amazonaws.com"
    document = json.loads(by_name["PutUserPolicy"]["requestParameters"]["policyDocument"])
    assert document["Statement"][0]["Action"] == "*"


def test_access_key_created_for_another_user(injected, by_event_id):
    (record,) = records_of("access_key_created", injected, by_event_id)
    assert record["eventName"] == "CreateAccessKey"
    target = record["requestParameters"]["userName"]
    assert target != record["userIdentity"]["userName"]
    assert record["responseElements"]["accessKey"]["userName"] == target
    assert record["responseElements"]["accessKey"]["accessKeyId"].startswith("AKIA")


def test_security_group_opened_to_world_on_port_22_of_the_bastion(injected, by_event_id):
    (record,) = records_of("security_group_opened_to_world", injected, by_event_id)
    assert record["eventName"] == "AuthorizeSecurityGroupIngress"
    params = record["requestParameters"]
    assert params["groupId"] == SG
    (perm,) = params["ipPermissions"]["items"]
    assert (perm["fromPort"], perm["toPort"], perm["ipProtocol"]) == (22, 22, "tcp")
    assert perm["ipRanges"]["items"] == [{"cidrIp": "0.0.0.0/0"}]


def test_security_group_change_uses_the_newly_created_key(injected, by_event_id):
    (created,) = records_of("access_key_created", injected, by_event_id)
    (opened,) = records_of("security_group_opened_to_world", injected, by_event_id)
    assert opened["userIdentity"]["accessKeyId"] == created["responseElements"]["accessKey"]["accessKeyId"]


def test_cloudtrail_tampering_stops_and_updates_the_trail(injected, by_event_id):
    records = records_of("cloudtrail_tampering", injected, by_event_id)
    assert {r["eventName"] for r in records} == {"StopLogging", "UpdateTrail"}
    assert all(r["requestParameters"]["name"] == TRAIL for r in records)
    assert all(r["eventSource"] == "cloudtrail.amazonaws.com" for r in records)


def test_access_denied_burst_is_25_plus_errors_from_one_user_within_5_minutes(injected, by_event_id):
    records = records_of("access_denied_burst", injected, by_event_id)
    assert len(records) >= 25
    assert {r["errorCode"] for r in records} <= {"AccessDenied", "Client.UnauthorizedOperation"}
    assert len({r["userIdentity"]["arn"] for r in records}) == 1
    assert records[0]["userIdentity"]["type"] == "IAMUser"
    times = sorted(parse_time(r["eventTime"]) for r in records)
    assert times[-1] - times[0] <= timedelta(minutes=5)


def test_background_access_denied_errors_stay_isolated(files, injected):
    flagged = {eid for e in injected for eid in e.detail["event_ids"]}
    errors = sorted(
        parse_time(r["eventTime"])
        for records in files.values()
        for r in records
        if r.get("errorCode") and r["eventID"] not in flagged
    )
    for n in range(len(errors)):
        window = [t for t in errors if errors[n] <= t < errors[n] + timedelta(minutes=5)]
        assert len(window) < 5


def test_unusual_region_activity_is_in_ap_east_1_under_its_own_key(injected, by_event_id):
    (event,) = [e for e in injected if e.detection == "unusual_region_activity"]
    records = records_of("unusual_region_activity", injected, by_event_id)
    assert len(records) >= 3
    assert {r["awsRegion"] for r in records} == {"ap-east-1"}
    assert {r["eventName"] for r in records} == {"RunInstances", "DescribeInstances"}
    assert CLOUDTRAIL_KEY_RE.match(event.log_key)["region"] == "ap-east-1"


def test_unusual_region_user_otherwise_uses_only_the_home_region(files, injected, by_event_id):
    records = records_of("unusual_region_activity", injected, by_event_id)
    user_arn = records[0]["userIdentity"]["arn"]
    regional = {
        r["awsRegion"]
        for recs in files.values()
        for r in recs
        if r["userIdentity"].get("arn") == user_arn
        and r["eventSource"] not in ("iam.amazonaws.com", "s3.amazonaws.com")
        and r["eventID"] not in {x["eventID"] for x in records}
    }
    assert regional == {REGION}


def test_short_window_omits_older_injections():
    _, injected = build(hours=12)
    assert {e.detection for e in injected} == {"unusual_region_activity", "cloudtrail_tampering"}


# ----------------------------------------------------------------------------- input validation


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        pytest.param({"anchor": datetime(2025, 6, 1, 12, 0)}, "timezone-aware", id="naive-anchor"),
        pytest.param({"resources": {"bastion_sg_id": SG}}, "trail_name", id="missing-trail-name"),
        pytest.param({"resources": {"trail_name": TRAIL}}, "bastion_sg_id", id="missing-bastion-sg"),
        pytest.param({"users": USERS[:1]}, "IAMUser", id="no-iam-users"),
        pytest.param({"account_id": "12345"}, "12 digits", id="bad-account-id"),
    ],
)
def test_invalid_arguments_are_rejected(overrides, message):
    with pytest.raises(ValueError, match=message):
        build(**overrides)


# ----------------------------------------------------------------------------- parsing back


def test_parse_round_trips_a_file(built):
    _, data = built[0][0]
    records = parse_cloudtrail_file(data)
    assert records == json.loads(gzip.decompress(data))["Records"]


def test_truncated_file_is_shorter(built):
    _, data = built[0][0]
    assert 0 < len(truncated_file(data)) < len(data)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        pytest.param(truncated_file, "truncated", id="truncated-gzip"),
        pytest.param(lambda d: b"", "empty", id="empty"),
        pytest.param(lambda d: b"not gzip at all", "gzip", id="not-gzip"),
        pytest.param(lambda d: gzip.compress(b'{"Records": [', mtime=0), "JSON", id="cut-json"),
        pytest.param(lambda d: gzip.compress(b"\xff\xfe", mtime=0), "UTF-8", id="not-utf8"),
        pytest.param(lambda d: gzip.compress(b"[]", mtime=0), "Records", id="no-records-object"),
        pytest.param(
            lambda d: gzip.compress(b'{"Records": [1]}', mtime=0), "record 0", id="record-not-object"
        ),
    ],
)
def test_parse_rejects_malformed_files(built, make, message):
    _, data = built[0][0]
    with pytest.raises(ValueError, match=message):
        parse_cloudtrail_file(make(data))
