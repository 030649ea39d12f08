"""Console page load times from stored data with the simulated account's 14 days.

    PYTHONPATH=src:sandbox/src nice python benchmarks/console_pages.py [--days 14] [--score-days 3]
        [--cost-days 7] [--repeat 20] [--out benchmarks/results/console_pages.json]

Starts the emulator in-process, seeds the simulated account (``--days`` + 1 days of history), fills
the stores with the platform's own steps (``aiops_sandbox.estate.populate``: metrics, logs and traces
for ``--days``, anomaly scores for ``--score-days``, SLO history, ``--cost-days`` cost reports, two
compliance sweeps, the surge incident), then requests every page ``--repeat`` times through the
console's FastAPI app in-process (Airflow's login replaced by a fixed user: the auth check is a JWT
decode, not what this measures). Reported per page: the first (cold process) load and the warm
p50 / p95 / max in milliseconds. Target: every page under 300 ms warm.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--days", type=int, default=14)
    ap.add_argument("--score-days", type=int, default=3)
    ap.add_argument("--cost-days", type=int, default=7)
    ap.add_argument("--repeat", type=int, default=20)
    ap.add_argument("--out", default="benchmarks/results/console_pages.json")
    args = ap.parse_args()

    home = Path(tempfile.mkdtemp(prefix="aiops-console-bench-"))
    os.environ.update({"AIOPS_HOME": str(home / "aiops"), "AIRFLOW_HOME": str(home / "airflow"),
                       "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                       "AWS_DEFAULT_REGION": "us-east-1", "AIOPS_ARTIFACT_BUCKET": "aiops-console-bench",
                       "AIOPS_ANOMALY_IMPORT_CW_BANDS": "false", "NO_PROXY": "127.0.0.1,localhost",
                       "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home}/airflow/airflow.db"})
    (home / "airflow").mkdir(parents=True)
    from aiops_sandbox.emulator import SandboxServer
    from aiops_sandbox.estate import populate
    from aiops_sandbox.seed import seed_account

    server = SandboxServer(host="127.0.0.1", port=0).start()
    os.environ["AIRFLOW_CONN_AWS_DEFAULT"] = json.dumps({"conn_type": "aws", "login": "testing", "password": "testing",
                                                         "extra": {"region_name": "us-east-1",
                                                                   "endpoint_url": server.endpoint}})
    anchor = datetime(2026, 11, 20, 12, tzinfo=UTC)
    manifest = home / "ground_truth.json"
    t0 = time.monotonic()
    seed_account(server.endpoint, seed=7, anchor=anchor, metric_days=args.days + 1, cost_days=75,
                 manifest_path=manifest, progress=print)
    seed_s = time.monotonic() - t0
    estate = populate(manifest, days=args.days, score_days=args.score_days, cost_days=args.cost_days, sweeps=2,
                      progress=print)

    from fastapi.testclient import TestClient

    from aiops.console import app as ui

    app = ui.create_app()
    app.dependency_overrides[ui.console_user] = lambda: {"name": "bench", "can_act": True}
    client = TestClient(app)
    incident = estate["incidents"]["incident_id"]
    pages = ["/", "/service/checkout?range=24h", "/service/checkout?range=7d", "/service/checkout?range=14d",
             "/service/catalog?range=24h", "/incidents", f"/incidents/{incident}", "/cost", "/compliance",
             "/slos?range=7d", "/slos?range=14d", "/audit", "/status"]
    results = {}
    for path in pages:
        t = time.perf_counter()
        r = client.get(path)
        first = (time.perf_counter() - t) * 1000
        assert r.status_code == 200, (path, r.status_code, r.text[:300])
        times = []
        for _ in range(args.repeat):
            t = time.perf_counter()
            r = client.get(path)
            times.append((time.perf_counter() - t) * 1000)
            assert r.status_code == 200
        times.sort()
        results[path] = {"first_ms": round(first, 1), "p50_ms": round(statistics.median(times), 1),
                         "p95_ms": round(times[int(0.95 * (len(times) - 1))], 1), "max_ms": round(times[-1], 1),
                         "bytes": len(r.content)}
        print(f"{path:34s} first {first:7.1f} ms  p50 {results[path]['p50_ms']:6.1f}  "
              f"p95 {results[path]['p95_ms']:6.1f}  max {results[path]['max_ms']:6.1f}  {len(r.content):,} B")
    out = {"measured_at": datetime.now(UTC).isoformat(timespec="seconds"), "args": vars(args),
           "seed_seconds": round(seed_s, 1), "populate_seconds": estate["timings"], "pages": results,
           "target_ms": 300, "all_under_target_p95": all(v["p95_ms"] < 300 for v in results.values()),
           "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0]}}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=1))
    server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
