"""Benchmark: GetMetricData calls and wall time of one metrics_extract window for N series.

For N series the minimum is ceil(N / 500) GetMetricData calls per window (500 queries per call is
the API's limit); for long windows also ceil(N x points / 100,800) (datapoints per response). The benchmark seeds N synthetic EC2 CPU series into a fresh emulator, runs the
collector exactly as the DAG does (discover + fetch + validate + upsert) over one 15-minute window
and over one day, and reports calls made vs the minimum and the wall time of each step.

    .venv/bin/python benchmarks/metrics_extract_bench.py [--sizes 100 1000 5000] [--json out.json]

Each size runs in its own emulator process (moto's state is per process). Numbers are from the
emulator on this machine: real CloudWatch adds network latency per call, which is exactly why
the call count is the figure that matters.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
END = datetime(2026, 11, 20, 12, tzinfo=UTC)


def seed_series(endpoint: str, n: int, days: float) -> None:
    import numpy as np

    from aiops_sandbox import emulator

    start = (END - timedelta(days=days)).timestamp()
    steps = int(days * 288)
    rng = np.random.default_rng(n)
    batch = []
    for i in range(n):
        values = np.clip(30 + 10 * rng.standard_normal(steps), 0, 100).round(3).tolist()
        batch.append({"namespace": "AWS/EC2", "metric": "CPUUtilization",
                      "dimensions": [{"Name": "InstanceId", "Value": f"i-{i:017x}"}], "unit": "Percent",
                      "start": start, "step": 300, "values": values})
        if len(batch) == 200:
            emulator.post(endpoint, "metrics", {"series": batch})
            batch = []
    if batch:
        emulator.post(endpoint, "metrics", {"series": batch})


def run_size(n: int) -> dict:
    from _emulator import start_emulator

    from aiops.core import aws
    from aiops.core.settings import get_settings
    from aiops.metrics.collect import CallStats, discover_series, fetch_metric_data, minimum_calls
    from aiops.metrics.model import default_catalog
    from aiops.metrics.pipeline import to_frame
    from aiops.metrics.quality import validate_metrics
    from aiops.metrics.store import MetricsStore

    proc, endpoint = start_emulator()
    try:
        os.environ["AIRFLOW_CONN_AWS_DEFAULT"] = json.dumps({
            "conn_type": "aws", "login": "testing", "password": "testing",
            "extra": {"region_name": "us-east-1", "endpoint_url": endpoint}})
        os.environ["AIOPS_ARTIFACT_BUCKET"] = f"bench-{n}"
        get_settings.cache_clear()
        aws.clear_client_cache()
        seed_series(endpoint, n, days=1.0)
        result: dict = {"series": n}
        stats = CallStats()
        t0 = time.perf_counter()
        refs = discover_series(default_catalog(), ["us-east-1"], stats=stats)
        result["discover_s"] = round(time.perf_counter() - t0, 2)
        result["list_metrics_calls"] = stats.list_metrics_calls
        assert len(refs) == n, (len(refs), n)
        by_id = {r.series_id: r for r in refs}
        for label, window in (("15min", timedelta(minutes=15)), ("1day", timedelta(days=1))):
            calls = CallStats()
            t0 = time.perf_counter()
            data = fetch_metric_data(refs, END - window, END, stats=calls)
            fetch_s = time.perf_counter() - t0
            frame = to_frame(data, by_id)
            t1 = time.perf_counter()
            good, _, report = validate_metrics(frame, default_catalog(), window_start=END - window, window_end=END,
                                               freshness=timedelta(minutes=30))
            validate_s = time.perf_counter() - t1
            t2 = time.perf_counter()
            MetricsStore().upsert(good, END - window, END)
            write_s = time.perf_counter() - t2
            result[label] = {"get_metric_data_calls": calls.get_metric_data_calls,
                             "minimum_calls": minimum_calls(n, window.total_seconds(), 300),
                             "ceil_n_over_500": math.ceil(n / 500), "datapoints": calls.datapoints,
                             "fetch_s": round(fetch_s, 2), "validate_s": round(validate_s, 2),
                             "write_s": round(write_s, 2), "total_s": round(fetch_s + validate_s + write_s, 2),
                             "quarantined": len(report.quarantined)}
        return result
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 1000, 5000])
    parser.add_argument("--json", type=Path, default=ROOT / "benchmarks" / "results" / "metrics_extract.json")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from _emulator import bench_environment

    bench_environment(ROOT)
    results = []
    print(f"{'series':>7} {'window':>6} {'calls':>6} {'min':>4} {'points':>9} {'fetch s':>8} {'validate s':>10} "
          f"{'write s':>8} {'total s':>8}")
    for n in args.sizes:
        r = run_size(n)
        results.append(r)
        for label in ("15min", "1day"):
            w = r[label]
            print(f"{n:>7} {label:>6} {w['get_metric_data_calls']:>6} {w['minimum_calls']:>4} "
                  f"{w['datapoints']:>9,} {w['fetch_s']:>8.2f} {w['validate_s']:>10.2f} {w['write_s']:>8.2f} "
                  f"{w['total_s']:>8.2f}", flush=True)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"measured": datetime.now(UTC).isoformat(), "machine": f"{os.cpu_count()} cores",
                                     "results": results}, indent=2))
    print(f"results: {args.json}")


if __name__ == "__main__":
    main()
