"""Benchmark: anomaly detection throughput at fleet scale, next to bare Prophet.

Part A — model level, N series x 14 days at 5 minutes (default 1,000), two worker processes:
  * bare:     Prophet with the detector's own configuration, fit + predict over the 14 days;
  * pipeline: ``Detector.fit`` + ``Detector.step`` over the same 14 days, plus serialising the model
              and the state as the DAG does.
  Reports series per minute for both and the overhead ratio (target <= 1.5x).

Part B — the anomaly_detection pipeline for N series on the emulator (``--dag``): the metrics store is
filled with 15 days, then the DAG's tasks run with two worker processes (like LocalExecutor with
parallelism 2): a cold run (fit every model, warm up every state, score the last interval) and a
warm run (the next 15-minute interval). Target: a run finishes within 10 minutes.

    .venv/bin/python benchmarks/anomaly_throughput.py --series 1000 [--dag]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
END = datetime(2026, 11, 20, 12, tzinfo=UTC)
STEP = 300


def synthetic_series(i: int, days: float = 14.0):
    """A production-like CPU series (the sandbox's signal model): traffic-driven, seasonal, noisy."""
    import numpy as np
    import pandas as pd

    from aiops_sandbox import signals as sig

    start = int((END - timedelta(days=days)).timestamp())
    t = np.arange(start, int(END.timestamp()), STEP)
    traffic = sig.Traffic(f"svc{i % 25}", peak_per_step=1000, peak_hour=12 + (i % 10))
    load = traffic(i, t) / 1000
    values = 5 + 40 * (0.3 + 0.7 * (i % 7) / 7) * load + 2 * sig.noise(i, f"cpu{i}", t)
    values += sig.bursts(i, f"cpu{i}", t, 1.0, 15)
    return pd.Series(np.clip(values, 0, 100), index=pd.to_datetime(t, unit="s", utc=True))


def _spec():
    from aiops.anomaly.spec import load_specs
    from aiops.core.settings import get_settings

    return load_specs(get_settings().include_dir / "models").for_series("AWS/EC2", "CPUUtilization")


def bare_prophet(i: int) -> float:
    import pandas as pd

    from aiops.anomaly.detector import Detector

    s = synthetic_series(i)
    det = Detector(_spec())
    t0 = time.perf_counter()
    m = det._fit_prophet(s, 14.0)
    m.predict(pd.DataFrame({"ds": s.index.tz_localize(None)}))
    return time.perf_counter() - t0


def pipeline(i: int) -> float:
    from aiops.anomaly.detector import Detector

    s = synthetic_series(i)
    det = Detector(_spec())
    t0 = time.perf_counter()
    model = det.fit(s)
    _, state = det.step(s, model, det.new_state())
    model.to_json()
    state.to_json()
    return time.perf_counter() - t0


def part_a(n: int, workers: int) -> dict:
    import logging

    logging.disable(logging.WARNING)
    out = {}
    for name, fn in (("bare_prophet", bare_prophet), ("pipeline", pipeline)):
        t0 = time.perf_counter()
        with ProcessPoolExecutor(workers) as pool:
            per_series = list(pool.map(fn, range(n), chunksize=8))
        wall = time.perf_counter() - t0
        out[name] = {"wall_s": round(wall, 1), "series_per_min": round(n / wall * 60, 1),
                     "cpu_s_per_series": round(sum(per_series) / n, 4)}
        print(f"  {name:<13} {n} series in {wall:6.1f}s = {n / wall * 60:7.1f} series/min "
              f"({sum(per_series) / n:.3f} s/series of compute)", flush=True)
    out["overhead_ratio"] = round(out["pipeline"]["cpu_s_per_series"] / out["bare_prophet"]["cpu_s_per_series"], 2)
    print(f"  pipeline / bare Prophet = {out['overhead_ratio']}x (target <= 1.5x)")
    return out


# ---------------------------------------------------------------------------------------------------
def _score_task(args: tuple[dict, dict]) -> dict:
    task, env = args
    os.environ.update(env)
    from aiops.anomaly.pipeline import score_batch

    return {**score_batch(task), "end": task["end"]}


def part_b(n: int, workers: int) -> dict:
    import numpy as np

    from aiops.anomaly import pipeline as anomaly
    from aiops.core import aws
    from aiops.core.settings import get_settings
    from aiops.metrics import pipeline as metrics
    from aiops_sandbox import emulator

    sys.path.insert(0, str(ROOT / "benchmarks"))
    from _emulator import start_emulator

    proc, endpoint = start_emulator()
    try:
        env = {"AIRFLOW_CONN_AWS_DEFAULT": json.dumps({"conn_type": "aws", "login": "testing", "password": "testing",
                                                       "extra": {"region_name": "us-east-1", "endpoint_url": endpoint}}),
               "AIOPS_ARTIFACT_BUCKET": f"bench-anomaly-{n}", "AIOPS_ANOMALY_IMPORT_CW_BANDS": "false",
               "AIOPS_ANOMALY_BATCHES": str(max(2, workers * 2))}
        os.environ.update(env)
        get_settings.cache_clear()
        aws.clear_client_cache()
        t0 = time.perf_counter()
        batch = []
        for i in range(n):
            s = synthetic_series(i, days=15.0)
            batch.append({"namespace": "AWS/EC2", "metric": "CPUUtilization", "unit": "Percent",
                          "dimensions": [{"Name": "InstanceId", "Value": f"i-{i:017x}"}],
                          "start": s.index[0].timestamp(), "step": STEP, "values": np.round(s.values, 3).tolist()})
            if len(batch) == 100:
                emulator.post(endpoint, "metrics", {"series": batch})
                batch = []
        if batch:
            emulator.post(endpoint, "metrics", {"series": batch})
        chunks = metrics.plan(END - timedelta(minutes=15), END, {"backfill_days": 15})
        key = metrics.discover()["key"]
        metrics.publish([metrics.extract_chunk(c, key) for c in chunks])
        print(f"  metrics store filled with {n} series x 15 days in {time.perf_counter() - t0:.0f}s", flush=True)
        out = {}
        for label, end in (("cold", END), ("warm", END + timedelta(minutes=15))):
            if label == "warm":  # the next interval's points
                extra = [{"namespace": "AWS/EC2", "metric": "CPUUtilization", "unit": "Percent",
                          "dimensions": [{"Name": "InstanceId", "Value": f"i-{i:017x}"}],
                          "start": END.timestamp(), "step": STEP, "values": [30.0, 31.0, 29.0]} for i in range(n)]
                for j in range(0, n, 200):
                    emulator.post(endpoint, "metrics", {"series": extra[j:j + 200]})
                metrics.publish([metrics.extract_chunk(c, key) for c in metrics.plan(END, end, {})])
            t0 = time.perf_counter()
            tasks = anomaly.plan([{"start": (end - timedelta(minutes=15)).isoformat(), "end": end.isoformat()}],
                                 {"emit_alerts": False}, end)
            with ProcessPoolExecutor(workers) as pool:
                results = list(pool.map(_score_task, [(t, env) for t in tasks]))
            summary = anomaly.publish(results)
            wall = time.perf_counter() - t0
            out[label] = {"wall_s": round(wall, 1), **summary}
            print(f"  {label} run: {wall:6.1f}s  ({summary})", flush=True)
        return out
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--series", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--dag", action="store_true", help="also run part B (the pipeline on the emulator)")
    parser.add_argument("--json", type=Path, default=ROOT / "benchmarks" / "results" / "anomaly_throughput.json")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from _emulator import bench_environment

    bench_environment(ROOT)
    result: dict = {"measured": datetime.now(UTC).isoformat(), "series": args.series, "workers": args.workers,
                    "cpus": os.cpu_count(), "loadavg_before": [round(x, 2) for x in os.getloadavg()]}
    print(f"Part A: {args.series} series x 14 days, {args.workers} workers", flush=True)
    result["model"] = part_a(args.series, args.workers)
    if args.dag:
        print(f"Part B: anomaly_detection pipeline, {args.series} series", flush=True)
        result["dag"] = part_b(args.series, args.workers)
    result["loadavg_after"] = [round(x, 2) for x in os.getloadavg()]  # other work on the machine skews timings
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2))
    print(f"results: {args.json}")


if __name__ == "__main__":
    main()
