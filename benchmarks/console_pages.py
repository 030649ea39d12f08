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
    ap.add_argument("--extracts", type=int, default=5, help="simulated extracts, each followed by the service pages")
    ap.add_argument("--profile", default="", help="write a cProfile of the after-extract loads here")
    ap.add_argument("--out", default="benchmarks/results/console_pages.json")
    args = ap.parse_args()

    home = Path(tempfile.mkdtemp(prefix="aiops-console-bench-"))
    os.environ.update({"AIOPS_HOME": str(home / "aiops"), "AIRFLOW_HOME": str(home / "airflow"),
                       "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                       "AWS_DEFAULT_REGION": "us-east-1", "AIOPS_ARTIFACT_BUCKET": "aiops-console-bench",
                       "AIOPS_ANOMALY_IMPORT_CW_BANDS": "false",
                       "AIOPS_CONSOLE_WARM_SECONDS": "0",  # measured without the background warm-up "NO_PROXY": "127.0.0.1,localhost",
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
    # The first view after a new extract: every 15 minutes metrics_extract (and anomaly_detection)
    # rewrite today's partitions and move the watermark, the page's "now"; measure that load.
    after: dict[str, dict[str, float]] = {}
    service_pages = [p for p in pages if p.startswith("/service/")]
    samples: dict[str, list[float]] = {p: [] for p in service_pages}
    profiler = None
    if args.profile:
        import cProfile

        profiler = cProfile.Profile()
    for _ in range(args.extracts):
        simulate_extract(minutes=5)
        for path in service_pages:
            t = time.perf_counter()
            r = client.get(path)
            samples[path].append((time.perf_counter() - t) * 1000)
            assert r.status_code == 200
    if profiler:  # the handler runs in the test client's thread: profile its work in this one
        from urllib.parse import parse_qs, urlsplit

        from aiops.console import data, views

        simulate_extract(minutes=5)
        profiler.enable()
        for path in service_pages:
            url = urlsplit(path)
            ctx = data.Context()
            d = data.service_view(ctx, url.path.rsplit("/", 1)[1], parse_qs(url.query)["range"][0])
            views.render("service.html", page="/service", user={"name": "bench", "can_act": True},
                         started=time.perf_counter(), as_of=ctx.as_of(), base="", d=d, title="Service")
        profiler.disable()
        profiler.dump_stats(args.profile)
    for path, times in samples.items():
        times.sort()
        after[path] = {"p50_ms": round(statistics.median(times), 1), "max_ms": round(times[-1], 1)}
        print(f"after an extract {path:34s} p50 {after[path]['p50_ms']:7.1f}  max {after[path]['max_ms']:7.1f}")
    # A restarted API server: empty caches, then the background warm-up (AIOPS_CONSOLE_WARM_SECONDS)
    # reads every service's 14 days once; the first view of each service page after it.
    from aiops.console import data as console_data

    for cache in (console_data._CACHE, console_data._VIEWS, console_data._DAY_PIECES, console_data._LISTINGS):
        cache.clear()
    t = time.perf_counter()
    console_data.warm_once(None)
    warm_up_ms = round((time.perf_counter() - t) * 1000, 1)
    after_warm_up: dict[str, float] = {}
    for path in service_pages:
        t = time.perf_counter()
        r = client.get(path)
        after_warm_up[path] = round((time.perf_counter() - t) * 1000, 1)
        assert r.status_code == 200
        print(f"first view after the warm-up ({warm_up_ms:.0f} ms) {path:34s} {after_warm_up[path]:7.1f} ms")
    out = {"measured_at": datetime.now(UTC).isoformat(timespec="seconds"), "args": vars(args),
           "warm_up_ms": warm_up_ms, "first_view_after_warm_up_ms": after_warm_up,
           "after_extract": after, "after_extract_under_target": all(v["max_ms"] < 300 for v in after.values()),
           "seed_seconds": round(seed_s, 1), "populate_seconds": estate["timings"], "pages": results,
           "target_ms": 300, "all_under_target_p95": all(v["p95_ms"] < 300 for v in results.values()),
           "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0]}}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=1))
    server.stop()
    return 0


def simulate_extract(minutes: int = 5) -> None:
    """What a metrics_extract + anomaly_detection run does to the stores the service page reads: the
    metrics watermark moves on, today's metrics partition and anomaly score files are rewritten with
    the next points (the newest points repeated ``minutes`` later)."""
    from datetime import timedelta

    from sqlalchemy import select

    from aiops.anomaly.store import AnomalyStore
    from aiops.core.artifacts import ArtifactStore
    from aiops.core.state import StateStore, watermarks
    from aiops.metrics.pipeline import WATERMARK
    from aiops.metrics.store import MetricsStore

    state, step = StateStore(), timedelta(minutes=minutes)
    with state.engine.connect() as conn:
        rows = conn.execute(select(watermarks.c.account_id, watermarks.c.value)
                            .where(watermarks.c.name == WATERMARK)).all()
    end = max(r.value for r in rows).replace(tzinfo=UTC)
    for r in rows:
        state.set_watermark(WATERMARK, r.value.replace(tzinfo=UTC) + step, account_id=r.account_id)
    metrics = MetricsStore()
    frame = metrics.read(end - step, end)
    if len(frame):
        newest = frame[frame["timestamp"] == frame["timestamp"].max()].copy()
        newest["timestamp"] = newest["timestamp"] + step
        metrics.upsert(newest, end, end + step)
    artifacts = ArtifactStore()
    scores = AnomalyStore(artifacts)
    day = (end - timedelta(seconds=1)).date().isoformat()
    for key in artifacts.list_keys(f"anomaly/scores/dt={day}/"):
        frame = artifacts.read_parquet(key)
        if frame is None or not len(frame):
            continue
        newest = frame[frame["timestamp"] == frame["timestamp"].max()].copy()
        newest["timestamp"] = newest["timestamp"] + step
        batch = int(key.rsplit("batch-", 1)[1].split(".")[0])
        scores.upsert("scores", batch, newest, newest["timestamp"].min(), newest["timestamp"].max() + step)


if __name__ == "__main__":
    raise SystemExit(main())
