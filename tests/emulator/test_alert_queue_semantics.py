"""The event queue is drained safely and in larger batches (issue 15, failure 4).

- the watcher alert_intake uses takes 10 messages per receive and several receives per firing, and
  deletes nothing on reception (reproduction: the provider default takes 5 and deletes them at once);
- a run that fails leaves its messages; SQS's redrive policy moves them to the dead-letter queue;
- messages are deleted by the run once recorded;
- a redelivery after a crash announces the incident the crashed run opened but never announced.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from datetime import UTC, datetime, timedelta

import boto3
import pytest

from aiops.alerting import pipeline

pytestmark = [pytest.mark.emulator]
T = datetime(2026, 11, 20, 11, 0, tzinfo=UTC)


def _sqs(sandbox):
    return boto3.client("sqs", endpoint_url=sandbox.endpoint, region_name="us-east-1",
                        aws_access_key_id="testing", aws_secret_access_key="testing")


@pytest.fixture
def queue(sandbox):
    """A fresh queue with a dead-letter queue (maxReceiveCount 2), as the sandbox's ops queue is."""
    sqs = _sqs(sandbox)
    name = f"intake-{uuid.uuid4().hex[:8]}"
    dlq = sqs.create_queue(QueueName=f"{name}-dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    url = sqs.create_queue(QueueName=name, Attributes={"VisibilityTimeout": "30", "RedrivePolicy": json.dumps(
        {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "2"})})["QueueUrl"]
    yield sqs, url, dlq
    sqs.delete_queue(QueueUrl=url)
    sqs.delete_queue(QueueUrl=dlq)


def _event(i: int) -> dict:
    return {"version": "0", "id": f"evt-{uuid.uuid4()}", "source": "aws.ec2",
            "detail-type": "EC2 Instance State-change Notification", "account": "123456789012",
            "region": "us-east-1", "time": (T + timedelta(seconds=i)).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "resources": [f"arn:aws:ec2:us-east-1:123456789012:instance/i-{i:017x}"],
            "detail": {"instance-id": f"i-{i:017x}", "state": "stopped"}}


def _send(sqs, url, n):
    for i in range(0, n, 10):
        sqs.send_message_batch(QueueUrl=url, Entries=[{"Id": str(j), "MessageBody": json.dumps(_event(i + j))}
                                                      for j in range(min(10, n - i))])


def _counts(sqs, url):
    a = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    return int(a["ApproximateNumberOfMessages"]), int(a["ApproximateNumberOfMessagesNotVisible"])


def _fire(trigger) -> list[dict]:
    async def first():
        async for event in trigger.run():
            return event.payload
        return None

    payload = asyncio.run(asyncio.wait_for(first(), timeout=60))
    return payload["message_batch"]


def _watcher_trigger(url, **overrides):
    """The SqsSensorTrigger behind alert_intake's AssetWatcher, pointed at ``url``."""
    from airflow.providers.common.messaging.triggers.msg_queue import MessageQueueTrigger

    from aiops.airflow import assets

    asset = assets.ops_events_asset()
    configured = asset.watchers[0].trigger
    assert isinstance(configured, MessageQueueTrigger)
    kwargs = {**configured.kwargs, "sqs_queue": url, "waiter_delay": 1, **overrides}
    return MessageQueueTrigger(scheme="sqs", **kwargs).trigger, configured.kwargs


def test_reproduction_provider_default_takes_five_and_deletes_on_reception(queue):
    from airflow.providers.common.messaging.triggers.msg_queue import MessageQueueTrigger

    sqs, url, _ = queue
    _send(sqs, url, 50)
    batch = _fire(MessageQueueTrigger(scheme="sqs", sqs_queue=url, aws_conn_id="aws_default", waiter_delay=1).trigger)
    assert len(batch) == 5
    assert _counts(sqs, url) == (45, 0)  # the 5 are gone before any run processed them


def test_watcher_takes_large_batches_and_deletes_nothing(queue):
    sqs, url, _ = queue
    _send(sqs, url, 150)
    trigger, configured = _watcher_trigger(url)
    assert configured["delete_message_on_reception"] is False
    assert configured["max_messages"] == 10
    batch = _fire(trigger)
    assert len(batch) == 10 * configured["num_batches"] == 100
    assert all(m["ReceiptHandle"] for m in batch)
    assert _counts(sqs, url) == (50, 100)  # in flight until the run acknowledges them


def test_run_acknowledges_after_recording(queue, isolated_stores):
    from aiops.alerting.rules import load_rules

    sqs, url, _ = queue
    _send(sqs, url, 20)
    trigger, _ = _watcher_trigger(url)
    bodies = pipeline.bodies_from_asset_events([{"extra": {"payload": {"message_batch": _fire(trigger)}}}])
    summary = pipeline.process(bodies, run_id="run-1", rules=load_rules(), enrich=False, notify=False,
                               hand_over=lambda c: (f"INC-{c.group_key[:8]}", True))
    assert summary["alerts"] == 20
    assert len(summary["receipts"]) == 20
    assert _counts(sqs, url) == (0, 20)  # recorded, not yet acknowledged
    assert pipeline.ack_messages(summary["receipts"], url) == {"deleted": 20, "failed": []}
    assert _counts(sqs, url) == (0, 0)


def test_failed_runs_leave_messages_for_the_dead_letter_queue(queue):
    sqs, url, dlq = queue
    _send(sqs, url, 3)
    trigger, _ = _watcher_trigger(url, visibility_timeout=1, num_batches=1)
    for _ in range(2):  # two runs receive the batch and fail (nothing acknowledged)
        assert len(_fire(trigger)) == 3
        time.sleep(1.5)
    sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)  # the third receive redrives them
    deadline = time.monotonic() + 10
    while _counts(sqs, dlq)[0] < 3 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _counts(sqs, dlq)[0] == 3
    assert _counts(sqs, url) == (0, 0)


def test_redelivery_after_a_crash_announces_the_incident(sandbox, isolated_stores):
    """Run A opens the incident and dies before announcing (and before acknowledging): the message
    is re-delivered to run B, which must announce it; run C (another re-delivery) must not."""
    from aiops.alerting.rules import load_rules

    body = {"Body": json.dumps(_event(1)), "MessageId": "m-1"}
    common = {"rules": load_rules(), "enrich": False, "notify": False}
    first = pipeline.process([body], run_id="A", **common)
    assert first["announce"] == first["incident_ids"] != []
    # A crashed here: no announcement recorded, the message was not deleted
    second = pipeline.process([body], run_id="B", **common)
    assert second["decisions"].get("redelivery") == 1
    assert second["announce"] == first["incident_ids"]
    pipeline.mark_announced(second["announce"], "B")
    assert pipeline.process([body], run_id="B", **common)["announce"] == first["incident_ids"]  # B's retry
    assert pipeline.process([body], run_id="C", **common)["announce"] == []
