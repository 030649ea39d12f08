"""The CloudTrail reader on the seeded account's real-format log files: the injected events are
found by time, resource and event name; a truncated file is reported by key and skipped."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from aiops.security import collect as cloudtrail

pytestmark = [pytest.mark.emulator]
ANCHOR = datetime(2026, 11, 20, 12, tzinfo=UTC)


def _utc(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def test_find_trail_is_the_seeded_multi_region_trail(seeded):
    trail = cloudtrail.find_trail()
    assert trail.name == seeded.manifest["resources"]["trail"]
    assert trail.bucket == seeded.manifest["resources"]["buckets"]["cloudtrail"]
    assert trail.multi_region


def test_events_between_returns_every_injected_event_in_window(seeded):
    events = cloudtrail.events_between(ANCHOR - timedelta(hours=48), ANCHOR)
    ids = {e["eventID"] for e in events}
    for injected in seeded.manifest["security_events"]:
        assert set(injected["detail"]["event_ids"]) <= ids, injected["id"]
    assert all(ANCHOR - timedelta(hours=48) <= cloudtrail.event_time(e) < ANCHOR for e in events)
    assert [e["eventTime"] for e in events] == sorted(e["eventTime"] for e in events)


def test_window_bounds_are_half_open(seeded):
    injected = next(e for e in seeded.manifest["security_events"] if e["detection"] == "security_group_opened_to_world")
    t = _utc(injected["event_time"])
    inside = cloudtrail.events_between(t, t + timedelta(seconds=1))
    assert injected["detail"]["event_ids"][0] in {e["eventID"] for e in inside}
    before = cloudtrail.events_between(t - timedelta(minutes=5), t)
    assert injected["detail"]["event_ids"][0] not in {e["eventID"] for e in before}


def test_resource_filter_finds_the_security_group_change(seeded):
    sg = seeded.manifest["resources"]["security_groups"]["bastion-ssh"]
    injected = next(e for e in seeded.manifest["security_events"] if e["detection"] == "security_group_opened_to_world")
    events = cloudtrail.events_between(ANCHOR - timedelta(hours=48), ANCHOR, resource_ids=[sg])
    assert injected["detail"]["event_ids"][0] in {e["eventID"] for e in events}
    assert events
    assert all(cloudtrail.mentions(e, [sg]) for e in events)


def test_event_name_filter(seeded):
    events = cloudtrail.events_between(ANCHOR - timedelta(hours=48), ANCHOR, event_names=["StopLogging"])
    stop = [e for e in seeded.manifest["security_events"] if e["event_name"] == "StopLogging"]
    assert {e["eventID"] for e in events} == {i for s in stop for i in s["detail"]["event_ids"]}


def test_list_log_files_includes_every_injected_log_key(seeded):
    files = cloudtrail.list_log_files(ANCHOR - timedelta(hours=48), ANCHOR)
    keys = {f.key for f in files}
    for injected in seeded.manifest["security_events"]:
        assert set(injected["detail"]["log_keys"]) <= keys
    assert {f.region for f in files} >= {"us-east-1", "ap-east-1"}


def test_read_log_file_returns_the_records(seeded):
    injected = seeded.manifest["security_events"][0]
    records = cloudtrail.read_log_file(injected["log_key"])
    assert injected["detail"]["event_ids"][0] in {r["eventID"] for r in records}


@pytest.mark.parametrize(
    ("mangle", "reason"),
    [
        pytest.param(lambda b: b[: len(b) // 2], "truncated", id="truncated_upload"),
        pytest.param(lambda b: b"not gzip at all", "not a valid gzip", id="not_gzip"),
        pytest.param(lambda b: b"", "empty", id="empty"),
    ],
)
def test_malformed_file_raises_naming_key_and_reason(seeded, mangle, reason):
    from aiops.core import aws

    trail = cloudtrail.find_trail()
    s3 = aws.client("s3")
    good = seeded.manifest["security_events"][0]["log_key"]
    body = s3.get_object(Bucket=trail.bucket, Key=good)["Body"].read()
    bad_key = "quarantine-test/" + good
    s3.put_object(Bucket=trail.bucket, Key=bad_key, Body=mangle(body))
    try:
        with pytest.raises(cloudtrail.MalformedLogFile) as info:
            cloudtrail.read_log_file(bad_key)
        assert info.value.key == bad_key
        assert reason in info.value.reason
    finally:
        s3.delete_object(Bucket=trail.bucket, Key=bad_key)
