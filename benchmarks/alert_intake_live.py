"""Benchmark: event -> incident latency through a real Airflow (scheduler, triggerer, dag processor).

Starts a seeded emulator and ``airflow standalone`` in a private home (API on a spare port, only the
``alert_intake`` DAG in its DAG folder, LocalExecutor, parallelism 2), waits until the AssetWatcher
is running, then sends events through EventBridge (``put_ops_events``) and measures, per event:

* event sent -> ``alert_intake`` run queued (SQS -> trigger -> asset event -> scheduler)
* event sent -> incident row in the state store (the run's ``process_events`` task done)
* event sent -> run finished (``announce_incidents`` emitted the INCIDENTS asset event)

    .venv/bin/python benchmarks/alert_intake_live.py [--events 3] [--json benchmarks/results/alert_intake_live.json]

Everything it starts is stopped by process group at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ANCHOR = "2026-11-20T12:00:00Z"


def _port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait(predicate, timeout: float, what: str, step: float = 0.5):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(step)
    raise TimeoutError(f"timed out waiting for {what}")


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=3)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="alert-live-"))
    dags = tmp / "dags"
    dags.mkdir()
    shutil.copy(ROOT / "dags" / "alert_intake.py", dags / "alert_intake.py")
    emu_port, api_port = _port(), _port()
    endpoint = f"http://127.0.0.1:{emu_port}"
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
           "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1",
           "AIOPS_HOME": str(tmp / "aiops"), "AIRFLOW_HOME": str(tmp / "airflow"),
           "AIRFLOW__CORE__DAGS_FOLDER": str(dags), "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
           "AIRFLOW__CORE__PARALLELISM": "2", "AIRFLOW__API__PORT": str(api_port),
           "AIRFLOW__API__HOST": "127.0.0.1",
           "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{api_port}/execution/",
           "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
           "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
           "AIRFLOW_CONN_AWS_DEFAULT": json.dumps({"conn_type": "aws", "login": "testing", "password": "testing",
                                                   "extra": {"region_name": "us-east-1", "endpoint_url": endpoint}}),
           "AIOPS_ALERTING_QUEUE_URL": f"{endpoint}/123456789012/aiops-ops-events",
           "AIOPS_ALERTING_ENRICH_CHANGES": "true"}
    manifest = tmp / "truth.json"
    emulator = subprocess.Popen([sys.executable, "-m", "aiops.cli", "sandbox", "up", "--port", str(emu_port),
                                 "--no-live", "--anchor", ANCHOR, "--days", "1", "--manifest", str(manifest)],
                                env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    airflow = None
    try:
        _wait(manifest.exists, 300, "the seeded emulator")
        truth = json.loads(manifest.read_text())
        log = open(tmp / "standalone.log", "w")  # noqa: SIM115 (kept open for the child's lifetime)
        airflow = subprocess.Popen([sys.executable, "-m", "airflow", "standalone"], env=env, stdout=log,
                                   stderr=subprocess.STDOUT, start_new_session=True)
        db = tmp / "airflow" / "airflow.db"

        def query(sql: str, *params):
            try:
                with sqlite3.connect(db, timeout=5) as conn:
                    return conn.execute(sql, params).fetchall()
            except sqlite3.OperationalError:
                return []

        started = time.monotonic()
        _wait(lambda: query("select 1 from dag where dag_id='alert_intake' and is_paused=0"), 300, "the DAG parsed")
        _wait(lambda: query("select 1 from trigger where classpath like '%MessageQueueTrigger%' or "
                            "classpath like '%Sqs%'"), 300, "the asset watcher's trigger")
        time.sleep(5)  # the triggerer picks the trigger up
        ready = time.monotonic() - started
        os.environ.update({k: env[k] for k in ("AIRFLOW_CONN_AWS_DEFAULT", "AWS_ACCESS_KEY_ID",
                                               "AWS_SECRET_ACCESS_KEY", "AIOPS_HOME")})
        from aiops_sandbox import events as ev

        state_db = tmp / "aiops" / "state.db"
        web = truth["resources"]["instances"]
        names = sorted(web)
        samples = []
        for i in range(args.events):
            t = datetime.now(UTC).replace(microsecond=0)
            before = {r[0] for r in query("select run_id from dag_run where dag_id='alert_intake'")}
            sent = time.monotonic()
            ev.put_ops_events([ev.cloudwatch_alarm(f"live-{i}-cpu-high", namespace="AWS/EC2", metric="CPUUtilization",
                                                   dimensions={"InstanceId": web[names[(3 * i) % len(names)]]},
                                                   time=t + timedelta(hours=i))])
            run_id = _wait(lambda b=before: next((r[0] for r in query(
                "select run_id from dag_run where dag_id='alert_intake'") if r[0] not in b), None), 180, "a run")
            queued = time.monotonic() - sent

            def incident(count=i + 1):
                try:
                    with sqlite3.connect(state_db, timeout=5) as conn:
                        return conn.execute("select count(*) from aiops_incidents").fetchone()[0] >= count
                except sqlite3.OperationalError:
                    return False
            _wait(incident, 300, "the incident", step=0.2)
            opened = time.monotonic() - sent
            _wait(lambda r=run_id: query("select 1 from dag_run where run_id=? and state in ('success','failed')", r),
                  300, "the run to finish", step=0.2)
            finished = time.monotonic() - sent
            state = query("select state from dag_run where run_id=?", run_id)[0][0]
            samples.append({"run_id": run_id, "state": state, "queued_s": round(queued, 1),
                            "incident_s": round(opened, 1), "run_done_s": round(finished, 1)})
            print(json.dumps(samples[-1]), flush=True)
        result = {"measured_at": datetime.now(UTC).isoformat(timespec="seconds"), "airflow_ready_s": round(ready, 1),
                  "samples": samples, "load_average": os.getloadavg()}
        print(json.dumps(result, indent=2))
        if args.json:
            args.json.write_text(json.dumps(result, indent=2) + "\n")
        return 0
    finally:
        if airflow is not None:
            _stop(airflow)
        _stop(emulator)


if __name__ == "__main__":
    sys.exit(main())
