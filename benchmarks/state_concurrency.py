"""Parallel writers against one state store: how many updates survive?

Three workloads, each run by N separate PROCESSES started at the same moment (a start barrier file):

* ``alerts``  every writer folds its own alerts (one per call) into ONE shared incident through
  ``aiops.incidents.store.open_or_update`` (the alert intake's hand-over); lost = alerts not in the
  incident's ``alerts`` column at the end.
* ``links``   every writer attaches its own link keys to one incident through ``add_links``.
* ``migrate`` every writer migrates the same FRESH store at once; failures = processes that raised.

Usage::

    python benchmarks/state_concurrency.py --url sqlite:////tmp/s.db --workload alerts --writers 8 --per-writer 135
    python benchmarks/state_concurrency.py --url postgresql+psycopg2://... --workload migrate --writers 8

Prints one JSON line: {"workload", "writers", "expected", "stored", "lost", "errors", "seconds"}.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

GROUP_KEY = "checkout|i-0stress|w1"
T0 = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)


def _candidate(writer: int, n: int):  # type: ignore[no-untyped-def]
    from aiops.core.alerts import Alert, IncidentCandidate

    alert = Alert(source="cloudwatch_alarm", event_id=f"w{writer}-{n}", time=T0 + timedelta(seconds=n),
                  resource="i-0stress", service="checkout", title="CPU high", severity="high",
                  fingerprint=f"fp-{writer}", raw={})
    return IncidentCandidate(group_key=GROUP_KEY, title="checkout: CPU high", service="checkout",
                             severity="high", root_resource="i-0stress", first_seen=alert.time,
                             last_seen=alert.time, alerts=[alert])


def _wait_for(barrier: Path) -> None:
    barrier.with_name(f"ready-{os.getpid()}").touch()
    while not barrier.exists():
        time.sleep(0.005)


def worker(url: str, workload: str, writer: int, per_writer: int, barrier: Path) -> int:
    """One writer process; returns the number of calls that raised."""
    from aiops.core.state import StateStore
    from aiops.incidents import store as incidents

    errors = 0
    if workload == "migrate":
        _wait_for(barrier)
        try:
            StateStore(url).migrate()
        except Exception as exc:  # counted and shown: this is what the run measures
            print(f"writer {writer}: {type(exc).__name__}: {exc}", file=sys.stderr)
            return 1
        return 0
    store = StateStore(url)
    _wait_for(barrier)
    for n in range(per_writer):
        try:
            if workload == "alerts":
                incidents.open_or_update(_candidate(writer, n), actor="stress", run_id=None, store=store)
            else:
                incident_id = incidents.incident_id_for(GROUP_KEY)
                incidents.add_links(incident_id, {f"w{writer}-{n}": "x"}, actor="stress", store=store)
        except Exception as exc:  # counted and shown
            errors += 1
            print(f"writer {writer}: {type(exc).__name__}: {exc}", file=sys.stderr)
    return errors


def run(url: str, workload: str, writers: int, per_writer: int) -> dict[str, object]:
    from aiops.core.state import StateStore, incidents
    from aiops.incidents import store as incident_store

    if workload != "migrate":
        store = StateStore(url)
        store.migrate()
        if workload == "links":  # the incident the writers attach links to
            incident_store.open_or_update(_candidate(-1, 0), actor="stress", run_id=None, store=store)
    with tempfile.TemporaryDirectory() as tmp:
        barrier = Path(tmp) / "go"
        procs = [subprocess.Popen([sys.executable, __file__, "--url", url, "--workload", workload,
                                   "--per-writer", str(per_writer), "--worker", str(i), "--barrier", str(barrier)])
                 for i in range(writers)]
        deadline = time.monotonic() + 300  # every process imports and connects before the barrier opens
        while len(list(Path(tmp).glob("ready-*"))) < writers and time.monotonic() < deadline:
            if any(p.poll() is not None for p in procs):
                break
            time.sleep(0.05)
        t0 = time.monotonic()
        barrier.touch()
        codes = [p.wait() for p in procs]
        seconds = time.monotonic() - t0
    errors = sum(codes)
    result: dict[str, object] = {"workload": workload, "writers": writers, "errors": errors,
                                 "seconds": round(seconds, 2)}
    if workload == "migrate":
        result.update(expected=writers, stored=writers - errors, lost=errors,
                      head=StateStore(url).schema_revision())
        return result
    from sqlalchemy import select

    store = StateStore(url)
    with store.engine.connect() as conn:
        row = conn.execute(select(incidents.c.alerts, incidents.c.links).where(
            incidents.c.group_key == GROUP_KEY)).first()
    assert row is not None, "the shared incident does not exist"
    if workload == "alerts":
        stored = len({a["event_id"] for a in row.alerts})
    else:
        stored = len([k for k in row.links if k.startswith("w")])
    expected = writers * per_writer
    result.update(expected=expected, stored=stored, lost=expected - stored)
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", required=True, help="SQLAlchemy URL of the state store")
    parser.add_argument("--workload", choices=("alerts", "links", "migrate"), default="alerts")
    parser.add_argument("--writers", type=int, default=8)
    parser.add_argument("--per-writer", type=int, default=100)
    parser.add_argument("--worker", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--barrier", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker is not None:
        return min(worker(args.url, args.workload, args.worker, args.per_writer, Path(args.barrier)), 100)
    print(json.dumps(run(args.url, args.workload, args.writers, args.per_writer)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
