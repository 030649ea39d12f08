"""Parse time of every DAG file beyond importing Airflow itself (median of N runs per file).

    .venv/bin/python benchmarks/dag_parse.py [--runs 3]

Budget: 2 s per file on the 2-core reference machine (Airflow's dag-processor times out at 30 s).
Writes benchmarks/results/dag_parse.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PROBE = r"""
import json, sys, time, importlib.util
import airflow.sdk
import aiops.core.settings
t0 = time.perf_counter()
spec = importlib.util.spec_from_file_location("dagfile", sys.argv[1])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
print(json.dumps({"elapsed": time.perf_counter() - t0}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    results = {}
    for path in sorted((ROOT / "dags").glob("*.py")):
        times = []
        for _ in range(args.runs):
            out = subprocess.run([sys.executable, "-c", PROBE, str(path)], capture_output=True, text=True, check=True)
            times.append(json.loads(out.stdout.strip().splitlines()[-1])["elapsed"])
        results[path.stem] = round(statistics.median(times), 3)
        print(f"{path.stem:<24} {results[path.stem]:.3f} s", flush=True)
    (ROOT / "benchmarks/results/dag_parse.json").write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
