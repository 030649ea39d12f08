"""Run the anomaly detector on NAB and score it the published way (see scoring.py).

Reproduce (from the repo root; ~6 minutes on 2 cores the first time, ~80 s with the cached fits)::

    .venv/bin/python benchmarks/nab/run_nab.py --data ../shared/data/nab

Each NAB file is mapped to a model family the way the DAG maps a CloudWatch series (file name ->
namespace/metric -> ``SpecSet.for_series``), with the specs from ``include/models/``. Per file, the
worker fits Prophet at each refit boundary once and scores every variant (full detector, each
component removed, bare Prophet) with those fits. Fitted models and per-file scores are cached under
``benchmarks/results/nab/`` (``--no-cache`` ignores them); the summary goes to
``benchmarks/results/nab_summary.json`` and ``benchmarks/results/nab_summary.md``, and plots of a few
AWS files to ``benchmarks/results/nab_<file>.png``.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "src"))
sys.path.insert(0, str(REPO))

from benchmarks.nab import scoring  # noqa: E402

from aiops.anomaly.detector import Detector, FittedModel  # noqa: E402
from aiops.anomaly.spec import ModelSpec, SpecSet, load_specs  # noqa: E402

RESULTS = REPO / "benchmarks" / "results"
CACHE = RESULTS / "nab"
CATEGORIES = ["realAWSCloudwatch", "realKnownCause", "artificialWithAnomaly", "artificialNoAnomaly"]
PLOTS = ["ec2_cpu_utilization_825cc2.csv", "rds_cpu_utilization_cc0c53.csv", "ec2_cpu_utilization_24ae8d.csv"]

# the ablation: each core component removed, each optional channel added, and bare Prophet
ABLATIONS: dict[str, dict[str, Any]] = {
    "no_hold_trend": {"hold_trend": False},
    "no_adaptation": {"adaptation": False},
    "no_robust_scale": {"robust_scale": False},
    "no_seasonal_envelope": {"seasonal_envelope": False},
    "no_suppression": {"suppression": False},
    "plus_likelihood": {"likelihood": True},
    "plus_level_shift": {"level_shift": True},
    "plus_robust_fit": {"prophet.robust_fit": True},
}
# bare Prophet: residual / fit sigma, no adaptation, no envelope, no suppression, extrapolated trend
BARE: dict[str, Any] = {
    "hold_trend": False,
    "adaptation": False,
    "robust_scale": False,
    "seasonal_envelope": False,
    "suppression": False,
    "likelihood": False,
    "level_shift": False,
}


def variants(spec: ModelSpec, only_full: bool = False) -> dict[str, ModelSpec]:
    out = {"full": spec, "bare_prophet": _override(spec, BARE)}
    if not only_full:
        out.update({name: _override(spec, chg) for name, chg in ABLATIONS.items()})
    return out


def _override(spec: ModelSpec, overrides: dict[str, Any]) -> ModelSpec:
    """Experiment overrides: ``name=value`` for components, ``prophet.name=value`` for Prophet, ``threshold=``."""
    comp = {k: v for k, v in overrides.items() if "." not in k and k != "threshold"}
    proph = {k.split(".", 1)[1]: v for k, v in overrides.items() if k.startswith("prophet.")}
    refit = {k.split(".", 1)[1]: v for k, v in overrides.items() if k.startswith("refit.")}
    update: dict[str, Any] = {"components": spec.components.model_copy(update=comp)}
    if proph:
        update["prophet"] = spec.prophet.model_copy(update=proph)
    if refit:
        update["refit"] = spec.refit.model_copy(update=refit)
    if "threshold" in overrides:
        update["threshold"] = overrides["threshold"]
    return ModelSpec.model_validate(
        {
            **spec.model_dump(),
            **{k: (v.model_dump() if hasattr(v, "model_dump") else v) for k, v in update.items()},
        }
    )


def cloudwatch_identity(file_name: str) -> tuple[str, str]:
    """The (namespace, metric) the DAG would see for a NAB file, by its metric type."""
    n = file_name.lower()
    if "rds_cpu" in n:
        return "AWS/RDS", "CPUUtilization"
    if "cpu_utilization" in n or "asg" in n:
        return "AWS/EC2", "CPUUtilization"
    if "disk_write_bytes" in n:
        return "AWS/EC2", "DiskWriteBytes"
    if "network" in n:
        return "AWS/EC2", "NetworkIn"
    if "latency" in n:
        return "AWS/ELB", "Latency"
    return "NAB", Path(file_name).stem


def load_series(path: Path) -> pd.Series:
    df = pd.read_csv(path)
    return pd.Series(df["value"].to_numpy(dtype=float), index=pd.to_datetime(df["timestamp"], utc=True))


def _models_path(category: str, name: str, key: str) -> Path:
    return CACHE / "models" / key / f"{category}__{name}.jsonl"


def _load_models(path: Path) -> dict[str, FittedModel]:
    out: dict[str, FittedModel] = {}
    if path.exists():
        for line in path.read_text().splitlines():
            k, v = line.split("\t", 1)
            out[k] = FittedModel.from_json(v)
    return out


def _save_models(path: Path, models: dict[str, FittedModel]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text("".join(f"{k}\t{m.to_json()}\n" for k, m in models.items()))
    tmp.replace(path)


def _align(res: pd.DataFrame, index: pd.DatetimeIndex) -> pd.DataFrame:
    """Scores back onto the file's rows: NAB files repeat a few timestamps (the detector keeps the
    last value of a duplicate); every row of a timestamp gets that timestamp's result."""
    res = res.set_index("timestamp")
    return res.reindex(pd.DatetimeIndex(index).tz_convert("UTC").as_unit("ns")).reset_index(names="timestamp")


def score_file(task: tuple[str, str, str, dict[str, str], bool]) -> dict[str, Any]:
    """Worker: every variant's per-row scores/decisions for one file (fits shared between variants)."""
    data_dir, category, name, spec_json, use_cache = task
    series = load_series(Path(data_dir) / category / name)
    specs = {v: ModelSpec.model_validate_json(s) for v, s in spec_json.items()}
    key = Detector(specs["full"]).spec_key()
    mpath = _models_path(category, name, key)
    cache = _load_models(mpath) if use_cache else {}
    n_cached = len(cache)
    out: dict[str, Any] = {"category": category, "name": name, "n": len(series), "variants": {}}
    t0 = time.perf_counter()
    for vname, spec in specs.items():
        tv = time.perf_counter()
        res = _align(Detector(spec).score_series(series, model_cache=cache), series.index)
        out["variants"][vname] = {
            "score": res["anomaly_score"].to_numpy(dtype=float).tolist(),
            "is_anomaly": res["is_anomaly"].to_numpy(dtype=bool).tolist(),
            "seconds": time.perf_counter() - tv,
        }
        if vname == "full":
            out["full_frame"] = res[["forecast", "lower", "upper"]].to_numpy(dtype=float).tolist()
    out["seconds"] = time.perf_counter() - t0
    if use_cache and len(cache) != n_cached:
        _save_models(mpath, cache)
    return out


def evaluate(
    results: list[dict[str, Any]], windows: dict[str, list[list[str]]], data_dir: Path
) -> dict[str, Any]:
    """Scores per variant x category x profile, swept and at the detector's own decisions."""
    weights: dict[str, scoring.FileWeights] = {}
    for r in results:
        fid = f"{r['category']}/{r['name']}"
        ts = pd.read_csv(data_dir / fid, usecols=["timestamp"])["timestamp"]
        weights[fid] = scoring.file_weights(len(ts), scoring.window_rows(ts, windows.get(fid, [])))
    summary: dict[str, Any] = {}
    vnames = list(results[0]["variants"])
    for v in vnames:
        summary[v] = {}
        for cat in CATEGORIES:
            rs = [r for r in results if r["category"] == cat]
            if not rs:
                continue
            ws = [weights[f"{cat}/{r['name']}"] for r in rs]
            sc = [np.asarray(r["variants"][v]["score"]) for r in rs]
            own = [np.asarray(r["variants"][v]["is_anomaly"], dtype=float) for r in rs]
            entry: dict[str, Any] = {"windows": sum(w.n_windows for w in ws)}
            for pname, prof in scoring.PROFILES.items():
                sw = scoring.sweep_threshold(sc, ws, prof)
                total, norm, per_file = scoring.score_at_threshold(own, ws, prof, 0.5)
                entry[pname] = {
                    "swept": round(sw.normalised, 2) if entry["windows"] else None,
                    "swept_raw": round(sw.total, 3),
                    "threshold": sw.threshold,
                    "own": round(norm, 2) if entry["windows"] else None,
                    "own_raw": round(total, 3),
                }
                if pname == "standard":
                    swept_files = [
                        scoring.score_detections(s >= sw.threshold, w, prof)
                        for s, w in zip(sc, ws, strict=True)
                    ]
                    entry["files"] = {
                        r["name"]: {
                            "own": _file_dict(f),
                            "swept": _file_dict(fs),
                        }
                        for r, f, fs in zip(rs, per_file, swept_files, strict=True)
                    }
            summary[v][cat] = entry
    return summary


def _file_dict(f: scoring.FileScore) -> dict[str, Any]:
    return {
        "tp": round(f.tp, 3),
        "fp": round(f.fp, 3),
        "n_fp": f.n_fp,
        "detected": f.detected,
        "missed": f.missed,
        "total": round(f.total, 3),
    }


def markdown(summary: dict[str, Any], timing: dict[str, Any]) -> str:
    lines = [
        "# NAB results",
        "",
        "Normalised NAB scores (100 = perfect, 0 = no detections). "
        "`swept`: one threshold per category chosen to maximise the score (NAB scoreboard); "
        "`own`: the detector's own `is_anomaly`.",
        "",
    ]
    full = summary["full"]
    lines += [
        "## Full detector",
        "",
        "| category | windows | standard swept | standard own | low_FP swept | low_FP own "
        "| low_FN swept | low_FN own |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for cat, e in full.items():
        p = [e[k] for k in scoring.PROFILES]
        lines.append(
            f"| {cat} | {e['windows']} | "
            + " | ".join(f"{_fmt(x['swept'])} | {_fmt(x['own'])}" for x in p)
            + " |"
        )
    lines += [
        "",
        "Artificial no-anomaly files have no windows: the table below counts their false positives.",
        "",
    ]
    lines += [
        "## Ablation (standard profile)",
        "",
        "| variant | AWS swept | AWS own | knownCause swept | knownCause own "
        "| artificial swept | artificial own | FP rows on no-anomaly (own) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for v, cats in summary.items():

        def g(cat: str, key: str, cats: dict[str, Any] = cats) -> str:
            return _fmt(cats[cat]["standard"][key]) if cat in cats else "-"

        nofp = sum(f["own"]["n_fp"] for f in cats.get("artificialNoAnomaly", {}).get("files", {}).values())
        lines.append(
            f"| {v} | {g('realAWSCloudwatch', 'swept')} | {g('realAWSCloudwatch', 'own')} | "
            f"{g('realKnownCause', 'swept')} | {g('realKnownCause', 'own')} | "
            f"{g('artificialWithAnomaly', 'swept')} | {g('artificialWithAnomaly', 'own')} | {nofp} |"
        )
    aws = full.get("realAWSCloudwatch")
    if aws:
        lines += [
            "",
            "## AWS files, full detector (standard)",
            "",
            "| file | detected / missed (own) | FPs (own) | total (own) | detected / missed (swept) | FPs (swept) |",
            "|---|---|---|---|---|---|",
        ]
        for name, f in aws["files"].items():
            o, s = f["own"], f["swept"]
            lines.append(
                f"| {name} | {o['detected']} / {o['missed']} | {o['n_fp']} | {o['total']} | "
                f"{s['detected']} / {s['missed']} | {s['n_fp']} |"
            )
    lines += ["", "## Timing", "", f"```\n{json.dumps(timing, indent=2)}\n```", ""]
    return "\n".join(lines)


def _fmt(x: Any) -> str:
    return "-" if x is None else f"{x:.1f}"


def plot(result: dict[str, Any], windows: list[list[str]], data_dir: Path, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    df = pd.read_csv(data_dir / result["category"] / result["name"], parse_dates=["timestamp"])
    band = np.asarray(result["full_frame"], dtype=float)
    full = result["variants"]["full"]
    score = np.asarray(full["score"])
    det = np.asarray(full["is_anomaly"], dtype=bool)
    fig, (a1, a2) = plt.subplots(2, 1, figsize=(12, 5), sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    a1.fill_between(
        df["timestamp"], band[:, 1], band[:, 2], color="tab:orange", alpha=0.3, lw=0, label="band"
    )
    a1.plot(df["timestamp"], df["value"], lw=0.6, color="tab:blue", label="value")
    a1.plot(df["timestamp"], band[:, 0], lw=0.5, color="tab:orange", label="forecast")
    a1.scatter(df["timestamp"][det], df["value"][det], color="red", zorder=5, s=25, label="is_anomaly")
    for a, b in windows:
        for ax in (a1, a2):
            ax.axvspan(pd.Timestamp(a), pd.Timestamp(b), color="red", alpha=0.12)
    probation = scoring.probation_rows(len(df))
    a1.axvline(df["timestamp"][probation], color="k", ls=":", lw=0.8, label="end of probation")
    a1.set_title(f"{result['name']}: value, forecast band, detections; shaded = labelled windows", fontsize=9)
    a1.legend(fontsize=7, loc="upper left")
    a2.plot(df["timestamp"], score, lw=0.6, color="tab:purple")
    a2.set_ylabel("anomaly_score", fontsize=8)
    a2.set_ylim(0, 1)
    fig.tight_layout()
    fig.savefig(out, dpi=80)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data" / "nab")
    ap.add_argument("--specs", type=Path, default=REPO / "include" / "models")
    ap.add_argument("--categories", nargs="*", default=CATEGORIES)
    ap.add_argument("--only-full", action="store_true", help="skip the ablation variants (faster iteration)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--no-cache", action="store_true")
    ap.add_argument("--no-plots", action="store_true")
    ap.add_argument(
        "--set", nargs="*", default=[], help="component overrides for experiments, e.g. suppress_points=36"
    )
    args = ap.parse_args(argv)
    data_dir = args.data.resolve()
    windows = json.loads((data_dir / "windows.json").read_text())
    specset: SpecSet = load_specs(args.specs)
    for err in specset.errors:
        print(f"spec error: {err}", file=sys.stderr)
    overrides = {k: json.loads(v) for k, v in (kv.split("=", 1) for kv in args.set)}
    tasks = []
    families: dict[str, str] = {}
    for cat in args.categories:
        for path in sorted((data_dir / cat).glob("*.csv")):
            ns, metric = cloudwatch_identity(path.name)
            spec = specset.for_series(ns, metric)
            if overrides:
                spec = _override(spec, overrides)
            families[f"{cat}/{path.name}"] = spec.family
            vs = variants(spec, only_full=args.only_full)
            tasks.append(
                (
                    str(data_dir),
                    cat,
                    path.name,
                    {k: v.model_dump_json() for k, v in vs.items()},
                    not args.no_cache,
                )
            )
    tasks.sort(key=lambda t: -(Path(t[0]) / t[1] / t[2]).stat().st_size)  # longest first
    t0 = time.perf_counter()
    with mp.get_context("spawn").Pool(args.workers) as pool:
        results = pool.map(score_file, tasks, chunksize=1)
    wall = time.perf_counter() - t0
    results.sort(key=lambda r: (CATEGORIES.index(r["category"]), r["name"]))
    summary = evaluate(results, windows, data_dir)
    timing = {
        "wall_seconds": round(wall, 1),
        "workers": args.workers,
        "files": len(results),
        "variants_per_file": len(results[0]["variants"]),
        "full_variant_seconds_per_file_mean": round(
            float(np.mean([r["variants"]["full"]["seconds"] for r in results])), 3
        ),
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    CACHE.mkdir(parents=True, exist_ok=True)
    (CACHE / ".gitignore").write_text("*\n")
    payload = {"families": families, "overrides": overrides, "timing": timing, "scores": summary}
    (RESULTS / "nab_summary.json").write_text(json.dumps(payload, indent=1))
    (RESULTS / "nab_summary.md").write_text(markdown(summary, timing))
    if not args.no_plots:
        for r in results:
            if r["name"] in PLOTS:
                fid = f"{r['category']}/{r['name']}"
                plot(r, windows.get(fid, []), data_dir, RESULTS / f"nab_{Path(r['name']).stem}.png")
    print(markdown(summary, timing))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
