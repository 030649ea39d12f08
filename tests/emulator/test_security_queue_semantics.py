"""The CloudTrail-file notifications are consumed at least once, like the ops events (issue 15,
failure 4): the security_events watcher deletes nothing on reception; a run that fails to analyse the
files leaves the notifications, which come back and, after ``maxReceiveCount``, reach the dead-letter
queue; a run that analysed the files and raised the alerts deletes them (its last task).

Reproduced first: with the watcher as it was (the provider default, delete on reception), the
notifications of a failed run were gone from the queue before the run started.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import time
import uuid

import pytest

from aiops.security import pipeline

pytestmark = [pytest.mark.emulator]
ACCOUNT = "123456789012"


def _key(i: int) -> str:
    return (f"AWSLogs/{ACCOUNT}/CloudTrail/us-east-1/2026/11/20/"
            f"{ACCOUNT}_CloudTrail_us-east-1_20261120T11{i:02d}Z_{uuid.uuid4().hex[:16]}.json.gz")


def _notification(bucket: str, key: str) -> str:
    return json.dumps({"Records": [{"eventSource": "aws:s3", "eventName": "ObjectCreated:Put",
                                    "s3": {"bucket": {"name": bucket}, "object": {"key": key}}}]})


@pytest.fixture
def queue(fresh_emulator, isolated_stores, monkeypatch):
    """A notifications queue with a dead-letter queue (maxReceiveCount 2), as the bootstrap stack's
    ``aiops-cloudtrail-files``; security_events' settings point at it."""
    from aiops.core.settings import get_settings

    sqs = fresh_emulator.client("sqs")
    dlq = sqs.create_queue(QueueName="ct-files-dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    url = sqs.create_queue(QueueName="ct-files", Attributes={"VisibilityTimeout": "30", "RedrivePolicy": json.dumps(
        {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "2"})})["QueueUrl"]
    monkeypatch.setenv("AIOPS_SECURITY_QUEUE_URL", url)
    get_settings.cache_clear()
    yield sqs, url, dlq
    get_settings.cache_clear()


def _counts(sqs, url) -> tuple[int, int]:
    a = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    return int(a["ApproximateNumberOfMessages"]), int(a["ApproximateNumberOfMessagesNotVisible"])


def _fire(url: str, **overrides) -> dict:
    """One firing of security_events' own watcher trigger, pointed at ``url``; the asset events a run
    gets (``triggering_asset_events``)."""
    from airflow.providers.common.messaging.triggers.msg_queue import MessageQueueTrigger

    from aiops.airflow import assets

    configured = assets.cloudtrail_files_asset().watchers[0].trigger
    assert isinstance(configured, MessageQueueTrigger)
    trigger = MessageQueueTrigger(scheme="sqs", **{**configured.kwargs, "sqs_queue": url, "waiter_delay": 1,
                                                   **overrides}).trigger

    async def first():
        async for event in trigger.run():
            return event.payload
        return None

    payload = asyncio.run(asyncio.wait_for(first(), timeout=60))
    return {"aiops_cloudtrail_files": [{"extra": {"payload": payload}}]}


def test_watcher_takes_ten_per_receive_and_deletes_nothing(queue):
    from aiops.airflow import assets

    sqs, url, _ = queue
    for i in range(0, 30, 10):
        sqs.send_message_batch(QueueUrl=url, Entries=[{"Id": str(j), "MessageBody": _notification("b", _key(i + j))}
                                                      for j in range(10)])
    kwargs = assets.cloudtrail_files_asset().watchers[0].trigger.kwargs
    assert kwargs["delete_message_on_reception"] is False
    assert kwargs["max_messages"] == 10
    messages = pipeline.messages_from_asset_events(_fire(url, num_batches=2))
    assert len(messages) == 20
    assert all(m["ReceiptHandle"] for m in messages)
    assert _counts(sqs, url) == (10, 20)  # in flight until the run acknowledges them


def test_failed_analysis_leaves_notifications_for_redelivery_and_the_dead_letter_queue(queue):
    sqs, url, dlq = queue
    keys = [_key(i) for i in range(3)]
    sqs.send_message_batch(QueueUrl=url, Entries=[{"Id": str(i), "MessageBody": _notification("no-such-bucket", k)}
                                                  for i, k in enumerate(keys)])
    first_ids = None
    for _ in range(2):  # two runs receive the notifications and fail reading the files
        messages = pipeline.messages_from_asset_events(_fire(url, num_batches=1, visibility_timeout=1))
        ids = sorted(m["MessageId"] for m in messages)
        assert len(ids) == 3  # re-delivered after the failure, not lost
        first_ids = first_ids or ids
        assert ids == first_ids
        files = pipeline.keys_from_notifications([m["Body"] for m in messages])
        assert sorted(f["key"] for f in files) == sorted(keys)
        with pytest.raises(Exception, match=r"NoSuchBucket|does not exist"):
            pipeline.analyse_files(files, run_id="failing-run")
        assert _counts(sqs, url)[0] + _counts(sqs, url)[1] == 3  # nothing deleted by the failed run
        time.sleep(1.5)
    sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)  # the third receive redrives them
    deadline = time.monotonic() + 10
    while _counts(sqs, dlq)[0] < 3 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _counts(sqs, dlq)[0] == 3
    assert _counts(sqs, url) == (0, 0)


def test_run_deletes_notifications_after_analysing_and_alerting(queue, fresh_emulator):
    from aiops.core.queue import receipts

    sqs, url, _ = queue
    s3 = fresh_emulator.client("s3")
    s3.create_bucket(Bucket="trail-bucket")
    keys = [_key(i) for i in range(3)]
    for k in keys:
        s3.put_object(Bucket="trail-bucket", Key=k, Body=gzip.compress(json.dumps({"Records": []}).encode()))
    sqs.send_message_batch(QueueUrl=url, Entries=[{"Id": str(i), "MessageBody": _notification("trail-bucket", k)}
                                                  for i, k in enumerate(keys)])
    messages = pipeline.messages_from_asset_events(_fire(url, num_batches=1))
    files = pipeline.keys_from_notifications([m["Body"] for m in messages])
    out = pipeline.analyse_files(files, run_id="ok-run")
    assert out["files"] == 3
    assert out["quarantined"] == []
    assert _counts(sqs, url) == (0, 3)  # analysed, not yet acknowledged
    assert pipeline.ack_notifications(receipts(messages)) == {"deleted": 3, "failed": []}
    assert _counts(sqs, url) == (0, 0)


@pytest.mark.airflow
def test_dag_acknowledges_last_and_only_when_nothing_failed(airflow_db):
    from pathlib import Path

    from airflow.dag_processing.dagbag import DagBag

    path = Path(__file__).resolve().parents[2] / "dags" / "security_events.py"
    dag = DagBag(dag_folder=str(path)).get_dag("security_events")
    ack = dag.get_task("ack_notifications")
    assert ack.trigger_rule == "none_failed"  # a skipped raise_alerts (nothing found) still acknowledges
    assert {"raise_alerts", "plan_files"} <= ack.upstream_task_ids  # after the alerts; a failure upstream: no ack
    assert dag.get_task("analyse").upstream_task_ids >= {"plan_files"}
