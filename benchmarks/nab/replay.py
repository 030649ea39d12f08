"""Decision-level experiments in seconds: replay the detector's decisions (threshold, suppression,
re-arm, confirmation) on the raw scores cached by run_nab.py, with every CV column.

    python benchmarks/nab/replay.py --set suppress_points=36 --set suppress_rearm_points=0 --set threshold=0.6

Each ``--set`` group is one variant (comma-separated ``name=value`` pairs); ``full`` is always included.
Only decision settings may change here (anything else changes the raw scores: use run_nab.py).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from benchmarks.nab import run_nab as rn

DECISION_KEYS = {
    "threshold",
    "suppression",
    "suppress_points",
    "suppress_escalation",
    "suppress_rearm_points",
    "suppress_rearm_level",
    "single_point_min_score",
    "suppressed_score_factor",
}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=rn.REPO.parent / "shared" / "data" / "nab")
    ap.add_argument("--base", default="", help="comma-separated overrides of the cached raw run (run_nab --set)")
    ap.add_argument("--set", action="append", default=[], help="one variant: name=value[,name=value...]")
    args = ap.parse_args(argv)
    data_dir = args.data.resolve()
    windows = json.loads((data_dir / "windows.json").read_text())
    specset = rn.load_specs(rn.REPO / "include" / "models")
    base = _parse(args.base)
    variants = {"full": {}} | {s: _parse(s) for s in args.set}
    for name, ov in variants.items():
        bad = set(ov) - DECISION_KEYS
        if bad:
            raise SystemExit(f"{name}: not decision settings: {sorted(bad)}")
    results: list[dict[str, Any]] = []
    specs: dict[str, dict[str, Any]] = {}
    for cat in rn.CATEGORIES:
        for path in sorted((data_dir / cat).glob("*.csv")):
            spec = specset.for_series(*rn.cloudwatch_identity(path.name))
            spec = rn._override(spec, base) if base else spec
            rpath = rn._raw_path(cat, path.name, spec)
            if not rpath.exists():
                raise SystemExit(f"no cached raw scores for {cat}/{path.name}: run run_nab.py first")
            with np.load(rpath) as z:
                entry = {k: z[k] for k in z.files}
            fid = f"{cat}/{path.name}"
            specs[fid] = {v: rn._override(spec, ov) if ov else spec for v, ov in variants.items()}
            results.append({"category": cat, "name": path.name, "variants": dict.fromkeys(variants, entry)})
    summary = rn.evaluate(results, windows, data_dir, specs, set(variants))
    print(rn.markdown(summary, {}).split("## Ablation")[1].split("## AWS files")[0])
    for v in variants:
        print(v, json.dumps({c: summary[v][c]["standard"] for c in ("realAWSCloudwatch", "mean_real")}))
    return 0


def _parse(text: str) -> dict[str, Any]:
    return {k: json.loads(v) for k, v in (kv.split("=", 1) for kv in text.split(",") if kv)}


if __name__ == "__main__":
    raise SystemExit(main())
