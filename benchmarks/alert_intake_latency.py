"""Benchmark: how long the alert intake path takes, from PutEvents to an opened incident + SNS message.

Against a freshly seeded emulator (one day of history), with the platform code exactly as the DAG
runs it (state store, 5B's incident store, SNS):

1. **transport**: ``PutEvents`` -> EventBridge rule -> SQS -> the Amazon provider's SQS trigger
   (``MessageQueueTrigger(scheme="sqs", waiter_delay=2)``, the AssetWatcher's trigger, run directly
   in asyncio) yields the batch. This is the watcher's share of event -> DAG run (the scheduler then
   creates the run; Airflow adds its own task start-up on top).
2. **process**: ``aiops.alerting.pipeline.process`` on batches of 1, 10 and 50 events with full
   enrichment (tags, CloudTrail changes, SLO impact), dedup/grouping, hand-over and notification;
   reported per step.

    .venv/bin/python benchmarks/alert_intake_latency.py [--json benchmarks/results/alert_intake.json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
ANCHOR = "2026-11-20T12:00:00Z"


def seeded_emulator(tmp: Path) -> tuple[subprocess.Popen, str, dict]:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    manifest = tmp / "truth.json"
    proc = subprocess.Popen([sys.executable, "-m", "aiops.cli", "sandbox", "up", "--port", str(port), "--no-live",
                             "--anchor", ANCHOR, "--days", "1", "--manifest", str(manifest)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 180
    while not manifest.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError("emulator did not come up")
        time.sleep(0.3)
    return proc, f"http://127.0.0.1:{port}", json.loads(manifest.read_text())


async def _first_batch(url: str) -> float:
    from airflow.providers.common.messaging.triggers.msg_queue import MessageQueueTrigger

    trigger = MessageQueueTrigger(scheme="sqs", sqs_queue=url, aws_conn_id="aws_default", waiter_delay=2)
    async for _event in trigger.run():
        return time.monotonic()
    raise RuntimeError("trigger ended without an event")


def transport_latency(manifest: dict, url: str, runs: int) -> list[float]:
    from aiops_sandbox import events as ev

    web1 = manifest["resources"]["instances"]["checkout-prod-web-1"]
    out = []
    for i in range(runs):
        async def one(i: int = i) -> float:
            waiter = asyncio.create_task(_first_batch(url))
            await asyncio.sleep(1.0 + 0.37 * i)  # the trigger is mid-wait, at a different phase each run
            sent = time.monotonic()
            ev.put_ops_events([ev.cloudwatch_alarm(f"bench-{i}", namespace="AWS/EC2", metric="CPUUtilization",
                                                   dimensions={"InstanceId": web1})])
            return await waiter - sent
        out.append(asyncio.run(one()))
    return out


def process_timings(manifest: dict, size: int, t0: datetime) -> dict:
    from aiops.alerting.pipeline import process
    from aiops_sandbox import events as ev

    inst = list(manifest["resources"]["instances"].values())
    bodies = [json.dumps(ev.cloudwatch_alarm(f"bench-{size}-{k}", namespace="AWS/EC2", metric="CPUUtilization",
                                             dimensions={"InstanceId": inst[k % len(inst)]},
                                             time=t0 + timedelta(seconds=k))) for k in range(size)]
    started = time.monotonic()
    summary = process(bodies, run_id=f"bench-{size}")
    return {"events": size, "seconds": round(time.monotonic() - started, 3), "timings": summary["timings"],
            "candidates": summary["candidates"], "notifications": len(summary["notifications"])}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="alert-bench-"))
    os.environ.update({"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                       "AIOPS_HOME": str(tmp / "aiops"), "AIRFLOW_HOME": str(tmp / "airflow")})
    proc, endpoint, manifest = seeded_emulator(tmp)
    os.environ["AIRFLOW_CONN_AWS_DEFAULT"] = json.dumps({"conn_type": "aws", "login": "testing", "password": "testing",
                                                         "extra": {"region_name": "us-east-1",
                                                                   "endpoint_url": endpoint}})
    import logging

    logging.disable(logging.WARNING)
    try:
        url = manifest["resources"]["queues"]["ops_events"]
        transport = transport_latency(manifest, url, args.runs)
        t0 = datetime.fromisoformat(ANCHOR.replace("Z", "+00:00")) - timedelta(hours=1)
        process_runs = [process_timings(manifest, n, t0 + timedelta(minutes=10 * i)) for i, n in enumerate((1, 10, 50))]
    finally:
        proc.terminate()
        proc.wait(timeout=20)
    result = {"measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
              "transport_seconds": {"runs": [round(x, 2) for x in transport], "median": round(statistics.median(transport), 2),
                                    "max": round(max(transport), 2)},
              "process": process_runs}
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
