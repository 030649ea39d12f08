"""Security detections on the seeded account's real-format CloudTrail files find every injected
event (and nothing else); alerts reach EventBridge with the agreed Detail; a truncated file is
quarantined while the others are processed."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from aiops.security import pipeline

pytestmark = [pytest.mark.emulator]
ANCHOR = datetime(2026, 11, 20, 12, tzinfo=UTC)


@pytest.fixture(scope="module")
def analysed(seeded, tmp_path_factory):
    from aiops.core.settings import get_settings

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AIOPS_ARTIFACT_BUCKET", "aiops-test-security-events")
        mp.setenv("AIOPS_HOME", str(tmp_path_factory.mktemp("aiops-security")))
        get_settings.cache_clear()
        files = pipeline.keys_for_range(ANCHOR - timedelta(hours=48), ANCHOR)
        yield pipeline.analyse_files(files, start=ANCHOR - timedelta(hours=48), end=ANCHOR)
    get_settings.cache_clear()


def test_every_injected_event_is_detected_with_its_evidence(seeded, analysed):
    found = analysed["detections"]
    for injected in seeded.manifest["security_events"]:
        ids = set(injected["detail"]["event_ids"])
        match = [d for d in found if d["detection"] == injected["detection"] and ids <= set(d["event_ids"])]
        assert match, f"{injected['id']} not detected"
        assert set(injected["detail"]["log_keys"]) <= set(match[0]["log_keys"])


def test_no_detection_beyond_the_injected_ones(seeded, analysed):
    expected: dict[str, int] = {}
    for injected in seeded.manifest["security_events"]:
        expected[injected["detection"]] = expected.get(injected["detection"], 0) + 1
    got: dict[str, int] = {}
    for d in analysed["detections"]:
        got[d["detection"]] = got.get(d["detection"], 0) + 1
    assert got == expected


def test_aggregate_detections_group_the_whole_episode(seeded, analysed):
    for name in ("access_denied_burst", "unusual_region_activity"):
        injected = next(e for e in seeded.manifest["security_events"] if e["detection"] == name)
        d = next(x for x in analysed["detections"] if x["detection"] == name)
        assert set(d["event_ids"]) == set(injected["detail"]["event_ids"])
        assert d["evidence"]["count"] == injected["detail"]["count"]


def test_alerts_reach_eventbridge_with_the_agreed_detail(fresh_emulator, isolated_stores, analysed):
    sqs, events = fresh_emulator.client("sqs"), fresh_emulator.client("events")
    url = sqs.create_queue(QueueName="security-alerts-test")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(Name="aiops-security", EventPattern=json.dumps(
        {"source": ["matcarv.aiops"], "detail-type": ["AIOps Security Event"]}))
    events.put_targets(Rule="aiops-security", Targets=[{"Id": "q", "Arn": arn}])

    sent = pipeline.raise_alerts(analysed["detections"])
    assert sent["sent"] == len(analysed["detections"])
    bodies = []
    while True:
        msgs = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
        if not msgs:
            break
        bodies += [json.loads(m["Body"]) for m in msgs]
        sqs.delete_message_batch(QueueUrl=url, Entries=[
            {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(msgs)])
    assert len(bodies) == len(analysed["detections"])
    again = pipeline.raise_alerts(analysed["detections"])  # a retry / overlapping run stays quiet
    assert again == {"sent": 0, "already_sent": len(analysed["detections"])}
    assert sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []) == []
    assert {b["source"] for b in bodies} == {"matcarv.aiops"}
    assert {b["detail-type"] for b in bodies} == {"AIOps Security Event"}
    for b in bodies:
        assert set(b["detail"]) == set(pipeline.DETAIL_KEYS)
        assert b["detail"]["event_ids"]
        assert b["detail"]["log_keys"]


def test_truncated_file_is_quarantined_and_the_rest_processed(fresh_emulator, isolated_stores):
    from aiops_sandbox.cloudtrail import TrailActor, build_cloudtrail_logs, truncated_file

    acct = "123456789012"
    files, injected = build_cloudtrail_logs(
        account_id=acct, region="us-east-1", anchor=ANCHOR, seed=7, hours=8,
        users=[TrailActor("Root", "root", f"arn:aws:iam::{acct}:root"),
               TrailActor("IAMUser", "bob.builder", f"arn:aws:iam::{acct}:user/bob.builder", "AKIAEXAMPLEBOB00001"),
               TrailActor("IAMUser", "ci-legacy", f"arn:aws:iam::{acct}:user/ci-legacy", "AKIAEXAMPLECI000001")],
        resources={"trail_name": "t", "bastion_sg_id": "sg-0123456789abcdef0", "instance_ids": "i-0123456789abcdef0"})
    s3 = fresh_emulator.client("s3")
    s3.create_bucket(Bucket="trail-bucket")
    tamper = next(e for e in injected if e.event_name == "StopLogging")
    victim = next(k for k, _ in files if k != tamper.log_key)
    for key, body in files:
        s3.put_object(Bucket="trail-bucket", Key=key, Body=truncated_file(body) if key == victim else body)

    out = pipeline.analyse_files([{"bucket": "trail-bucket", "key": k} for k, _ in files], run_id="test-run")

    assert [q["key"] for q in out["quarantined"]] == [victim]
    assert "truncated" in out["quarantined"][0]["reason"]
    rows = pipeline.quarantined()
    assert [(r["log_key"], r["run_id"]) for r in rows] == [(victim, "test-run")]
    from aiops.core.artifacts import ArtifactStore

    reason = ArtifactStore().get_json(rows[0]["artifact_key"] + ".reason.json")
    assert reason["key"] == victim
    assert "truncated" in reason["reason"]
    # the other files were processed: the tampering in a healthy file is still detected
    assert any(tamper.detail["event_ids"][0] in d["event_ids"] for d in out["detections"]
               if d["detection"] == "cloudtrail_tampering")
    assert out["files"] == len(files)


def test_trail_bucket_notifies_the_queue_of_new_log_files(seeded):
    """S3 ObjectCreated -> SQS aiops-cloudtrail-files (what the DAG's AssetWatcher listens to)."""
    from aiops.core import aws

    url = seeded.manifest["resources"]["queues"]["cloudtrail_files"]
    sqs = aws.client("sqs")
    bodies = []
    for _ in range(30):
        msgs = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=60).get("Messages", [])
        if not msgs:
            break
        bodies += [m["Body"] for m in msgs]
    keys = {k["key"] for k in pipeline.keys_from_notifications(bodies)}
    log_keys = {k for e in seeded.manifest["security_events"] for k in e["detail"]["log_keys"]}
    assert bodies
    assert keys  # test events and non-log objects are ignored, log files are named
    assert all(k.startswith("AWSLogs/") and k.endswith(".json.gz") for k in keys)
    assert log_keys <= keys
