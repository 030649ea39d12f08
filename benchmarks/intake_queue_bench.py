"""Benchmark: draining a queue of 10,000 operational events through the alert intake.

A fresh emulator gets an SQS queue with a dead-letter queue (as the sandbox's ``aiops-ops-events``)
holding N EventBridge events (EC2 state changes over 500 instances, so grouping and dedup do work).
Then, until the queue is empty, one "firing" is what one ``alert_intake`` run does:

1. **receive**: the AssetWatcher's trigger exactly as ``aiops.airflow.assets.ops_events_asset``
   configures it (10 messages per ReceiveMessage, 10 receives per firing, no delete on reception),
   run directly in asyncio;
2. **process**: ``aiops.alerting.pipeline.process`` (normalise, dedup/suppression/grouping, ledger,
   incident store hand-over; enrichment and SNS notification off: the emulator account has no tags
   or topics for these instances);
3. **announce + ack**: record the announcements, then DeleteMessageBatch of the batch.

Reported: events/s and time to drain, firings, per-step seconds; and for comparison the firing
count the provider default (5 messages per firing, deleted on reception) would need.

The emulator (moto) is not built for deep queues: every SendMessage recomputes all queue attributes
(a scan of every queued message per message sent: filling 10,000 by the API takes hours), and each
scan converts datetimes for every message. So by default (``--fill backend``) the emulator runs in
this process, the queue is filled through moto's backend (setup, not measured), and moto's
millisecond clock helper is replaced by an equivalent cheap one (``time.time() * 1000``). The
measured path is untouched: the watcher's trigger receives over HTTP, ``process`` records, announce,
``DeleteMessageBatch`` over HTTP. ``--fill api`` fills through SendMessageBatch on an emulator in
its own process (only practical for a few thousand events). Not included:
Airflow's own per-run cost (the scheduler creating the run, task start-up: about 4-5 s per run on
this machine, see platform facts), which is why messages per firing matters.

    .venv/bin/python benchmarks/intake_queue_bench.py [--events 10000] [--fill backend|api]
        [--json benchmarks/results/intake_queue.json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
T0 = datetime(2026, 11, 20, 11, tzinfo=UTC)


def event(i: int) -> dict:
    iid = f"i-{i % 500:017x}"
    return {"version": "0", "id": str(uuid.uuid4()), "source": "aws.ec2",
            "detail-type": "EC2 Instance State-change Notification", "account": "123456789012",
            "region": "us-east-1", "time": (T0 + timedelta(seconds=i)).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "resources": [f"arn:aws:ec2:us-east-1:123456789012:instance/{iid}"],
            "detail": {"instance-id": iid, "state": ["stopped", "running", "terminated"][i % 3]}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--fill", choices=("backend", "api"), default="backend",
                        help="fill the queue through moto's backend in this process (default) or SendMessageBatch")
    args = parser.parse_args()

    from _emulator import bench_environment, start_emulator

    tmp = Path(tempfile.mkdtemp(prefix="intake-bench-"))
    os.environ["AIOPS_HOME"] = str(tmp / "aiops")
    bench_environment(ROOT)
    if args.fill == "backend":
        import moto.sqs.models

        from aiops_sandbox.emulator import SandboxServer

        moto.sqs.models.unix_time_millis = lambda dt=None: time.time() * 1000.0 if dt is None else (
            dt - datetime(1970, 1, 1)).total_seconds() * 1000.0
        server = SandboxServer(host="127.0.0.1", port=0).start()
        endpoint = server.endpoint

        class _Stop:
            def terminate(self) -> None:
                server.stop()

            def wait(self, timeout: float) -> None:
                pass

        proc: Any = _Stop()
    else:
        proc, endpoint = start_emulator()
    try:
        os.environ["AIRFLOW_CONN_AWS_DEFAULT"] = json.dumps({
            "conn_type": "aws", "login": "testing", "password": "testing",
            "extra": {"region_name": "us-east-1", "endpoint_url": endpoint}})
        os.environ["AIOPS_ARTIFACT_BUCKET"] = f"aiops-bench-{uuid.uuid4().hex[:8]}"
        result = run(args.events, fill=args.fill)
    finally:
        proc.terminate()
        proc.wait(timeout=20)
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2) + "\n")


def _fill_backend(url: str, bodies: list[str]) -> None:
    """Queue the messages directly in the in-process emulator's SQS backend (as SendMessage would)."""
    from moto.sqs.models import Message, sqs_backends

    account, name = url.rsplit("/", 2)[-2:]
    queue = sqs_backends[account]["us-east-1"].get_queue(name)
    for body in bodies:
        message = Message(str(uuid.uuid4()), body)
        message.mark_sent()
        queue._messages.append(message)


def run(n: int, fill: str = "backend") -> dict:
    from airflow.providers.common.messaging.triggers.msg_queue import MessageQueueTrigger

    from aiops.airflow import assets
    from aiops.alerting import pipeline
    from aiops.alerting.rules import load_rules
    from aiops.core import aws

    sqs = aws.client("sqs")
    dlq = sqs.create_queue(QueueName="bench-dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    url = sqs.create_queue(QueueName="bench-ops-events", Attributes={
        "VisibilityTimeout": "120", "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn,
                                                                  "maxReceiveCount": "5"})})["QueueUrl"]
    t = time.monotonic()
    if fill == "backend":
        _fill_backend(url, [json.dumps(event(i)) for i in range(n)])
    for i in range(0, n if fill == "api" else 0, 10):
        sqs.send_message_batch(QueueUrl=url, Entries=[{"Id": str(j), "MessageBody": json.dumps(event(i + j))}
                                                      for j in range(min(10, n - i))])
    fill_s = time.monotonic() - t

    configured = assets.ops_events_asset().watchers[0].trigger.kwargs
    trigger_kwargs = {**configured, "sqs_queue": url, "waiter_delay": 1}
    rules = load_rules()
    steps = {"receive": 0.0, "process": 0.0, "announce_ack": 0.0}
    firings = processed = incidents = 0
    started = time.monotonic()
    while True:
        attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])
        if int(attrs["Attributes"]["ApproximateNumberOfMessages"]) == 0:
            break
        t = time.monotonic()
        trigger = MessageQueueTrigger(scheme="sqs", **trigger_kwargs).trigger

        async def first(trig=trigger):
            async for ev in trig.run():
                return ev.payload
            return None

        payload = asyncio.run(first())
        steps["receive"] += time.monotonic() - t
        bodies = pipeline.bodies_from_asset_events([{"extra": {"payload": payload}}])
        t = time.monotonic()
        summary = pipeline.process(bodies, run_id=f"bench-{firings}", rules=rules, enrich=False, notify=False)
        steps["process"] += time.monotonic() - t
        t = time.monotonic()
        if summary["announce"]:
            pipeline.mark_announced(summary["announce"], f"bench-{firings}")
        acked = pipeline.ack_messages(summary["receipts"], url)
        steps["announce_ack"] += time.monotonic() - t
        assert not acked["failed"], acked
        firings += 1
        processed += len(bodies)
        incidents += len(summary["created"])
    drain_s = time.monotonic() - started
    left = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    return {
        "events": n, "processed": processed, "firings": firings,
        "messages_per_firing": round(processed / max(firings, 1), 1),
        "drain_seconds": round(drain_s, 1), "events_per_second": round(processed / drain_s, 1),
        "step_seconds": {k: round(v, 1) for k, v in steps.items()},
        "incidents_opened": incidents, "queue_fill": fill, "queue_fill_seconds": round(fill_s, 1),
        "left_in_queue": int(left["ApproximateNumberOfMessages"]) + int(left["ApproximateNumberOfMessagesNotVisible"]),
        "dead_lettered": int(sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["ApproximateNumberOfMessages"])[
            "Attributes"]["ApproximateNumberOfMessages"]),
        "provider_default_firings": -(-n // 5),
        "watcher": {k: configured[k] for k in ("max_messages", "num_batches", "delete_message_on_reception",
                                               "visibility_timeout")},
        "machine": f"{os.cpu_count()} cores (shared), load average {os.getloadavg()[0]:.1f} at the end, "
                   + ("emulator in this process (thread)" if fill == "backend" else "emulator in its own process"),
        "measured_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%MZ"),
    }


if __name__ == "__main__":
    main()
