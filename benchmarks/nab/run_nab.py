"""Run the anomaly detector on NAB and score it the published way (see scoring.py).

Reproduce (from the repo root; ~25 minutes on 2 busy cores the first time, ~4 min with the Prophet fits
cached, ~15 s with every cache)::

    .venv/bin/python benchmarks/nab/run_nab.py --data ../shared/data/nab --only-full \
        --variants no_hold_trend no_adaptation no_robust_scale no_seasonal_envelope no_suppression \
        no_repeat_discount plus_likelihood plus_level_shift plus_tail_calibration plus_repeat_normal

(without ``--only-full`` every ablation runs, ``plus_robust_fit`` included, which needs its own
Prophet fits). Scores are reported in-sample and cross-validated (benchmarks/nab/cv.py) for all five
real categories, with false alarms per series per day at the detector's own threshold.

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

from benchmarks.nab import cv as cvmod  # noqa: E402
from benchmarks.nab import scoring  # noqa: E402

from aiops.anomaly.detector import Detector, DetectorState, FittedModel, decide  # noqa: E402
from aiops.anomaly.spec import ModelSpec, SpecSet, load_specs  # noqa: E402

RESULTS = REPO / "benchmarks" / "results"
CACHE = RESULTS / "nab"
REAL = ["realAWSCloudwatch", "realKnownCause", "realTraffic", "realAdExchange", "realTweets"]
CATEGORIES = [*REAL, "artificialWithAnomaly", "artificialNoAnomaly"]
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
    "plus_tail_calibration": {"tail_calibration": True},
    "no_repeat_discount": {"repeat_discount": False},
    "plus_repeat_normal": {"repeat_normal_after": 3},
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


def variants(spec: ModelSpec, only_full: bool = False, extra: list[str] | None = None) -> dict[str, ModelSpec]:
    out = {"full": spec, "bare_prophet": _override(spec, BARE)}
    names = (list(extra or []) if only_full else [*ABLATIONS, *(extra or [])])
    out.update({name: _override(spec, EXPERIMENTS.get(name) or ABLATIONS[name]) for name in names})
    return out


# experiment variants (--variants NAME ...): not part of the shipped ablation table. The session-4
# variants (rd*, env2*, cand*) are overrides of the session-3 defaults (envelope_margin 1.0, no repeat
# discount, threshold 0.6: include/models/default.yaml at commit de1370a); NOTES.md logs their scores
EXPERIMENTS: dict[str, dict[str, Any]] = {
    "plus_tail_calibration_q999": {"tail_calibration": True, "calibration_quantile": 0.999},
    "rd1": {"repeat_discount": True},
    "rd2": {"repeat_discount": True, "repeat_power": 2.0},
    "rd1_w4032": {"repeat_discount": True, "repeat_window": 4032},
    "rd1_ls": {"repeat_discount": True, "level_shift": True},
    "rd2_ls": {"repeat_discount": True, "repeat_power": 2.0, "level_shift": True},
    "rd1_ep": {"repeat_discount": True, "repeat_episodes": True},
    "rd2_ep": {"repeat_discount": True, "repeat_episodes": True, "repeat_power": 2.0},
    "rd1_ep_ls": {"repeat_discount": True, "repeat_episodes": True, "level_shift": True},
    "rd2_ep_ls": {"repeat_discount": True, "repeat_episodes": True, "repeat_power": 2.0, "level_shift": True},
    "rd1_env2": {"repeat_discount": True, "envelope_min_days": 2},
    "rd1_env2_d7": {"repeat_discount": True, "envelope_min_days": 2, "envelope_days": 7},
    "rd1_ep_env2_d7": {"repeat_discount": True, "repeat_episodes": True, "envelope_min_days": 2, "envelope_days": 7},
    "rd2_ep_env2_d7": {"repeat_discount": True, "repeat_episodes": True, "repeat_power": 2.0,
                       "envelope_min_days": 2, "envelope_days": 7},
    "rd1_env2_d7_ls": {"repeat_discount": True, "envelope_min_days": 2, "envelope_days": 7, "level_shift": True},
    "rd1_m0": {"repeat_discount": True, "envelope_margin": 0.0},
    "rd1_m05": {"repeat_discount": True, "envelope_margin": 0.5},
    "rd1_nors": {"repeat_discount": True, "robust_scale": False},
    "rd1_sw2016": {"repeat_discount": True, "scale_window": 2016},
    "rd1_tol30": {"repeat_discount": True, "envelope_tolerance_minutes": 30},
    "rd1_m075": {"repeat_discount": True, "envelope_margin": 0.75},
    "rd1_ep_m05": {"repeat_discount": True, "repeat_episodes": True, "envelope_margin": 0.5},
    "rd1_m05_w4032": {"repeat_discount": True, "envelope_margin": 0.5, "repeat_window": 4032},
    "cand": {"repeat_discount": True, "envelope_margin": 0.5, "repeat_window": 4032},
    "cand_n3": {"repeat_discount": True, "envelope_margin": 0.5, "repeat_window": 4032, "repeat_normal_after": 3},
    "cand_n5": {"repeat_discount": True, "envelope_margin": 0.5, "repeat_window": 4032, "repeat_normal_after": 5},
    "cand_n3_m1": {"repeat_discount": True, "repeat_window": 4032, "repeat_normal_after": 3},
    "rd1_m05_w4032_nors": {"repeat_discount": True, "envelope_margin": 0.5, "repeat_window": 4032, "robust_scale": False},
    "env2": {"envelope_min_days": 2},
    "env2_d7": {"envelope_min_days": 2, "envelope_days": 7},
    "rd1_noenv": {"repeat_discount": True, "seasonal_envelope": False},
}


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


def _align_pos(res_ts: pd.Series, index: pd.DatetimeIndex) -> np.ndarray:
    """For each file row, the detector row of its timestamp: NAB files repeat a few timestamps (the
    detector keeps the last value of a duplicate); every row of a timestamp gets that timestamp's result."""
    det = pd.DatetimeIndex(res_ts).tz_convert("UTC").as_unit("ns")
    rows = pd.DatetimeIndex(index).tz_convert("UTC").as_unit("ns")
    return np.asarray(det.get_indexer(rows), dtype=np.int64)


# decision settings do not change raw scores: pinned (to the values the cache was first keyed with) so
# raw scores are cached by the evidence settings alone and decision experiments reuse them
_RAW_DECISIONS: dict[str, Any] = {
    "suppression": False,
    "single_point_min_score": 0.0,
    "threshold": 0.5,
    "suppress_points": 72,
    "suppress_rearm_points": 36,
    "suppress_rearm_level": 0.4,
    "suppress_escalation": 0.0,
    "suppressed_score_factor": 0.0,
}


def raw_spec(spec: ModelSpec) -> ModelSpec:
    """The same detector without decisions: its anomaly_score is the raw score of every row."""
    return _override(spec, _RAW_DECISIONS)


def _code_hash() -> str:
    """The detector code this process imported: cached raw scores are invalid when it changes."""
    return _CODE_HASH


def _hash_sources() -> str:
    import hashlib

    import aiops.anomaly.detector as d
    import aiops.anomaly.residuals as r

    h = hashlib.sha1()
    for mod in (d, r):
        h.update(Path(str(mod.__file__)).read_text().encode())
    return h.hexdigest()[:10]


_CODE_HASH = _hash_sources()  # at import: the code this process runs, even if the files change later


def _raw_path(category: str, name: str, spec: ModelSpec) -> Path:
    import hashlib

    key = hashlib.sha1((raw_spec(spec).model_dump_json() + _code_hash()).encode()).hexdigest()[:12]
    return CACHE / "raw" / key / f"{category}__{name}.npz"


def score_file(task: tuple[str, str, str, dict[str, str], bool]) -> dict[str, Any]:
    """Worker: every variant's raw per-row scores for one file (fits shared between variants, raw
    scores cached per variant spec and detector code)."""
    data_dir, category, name, spec_json, use_cache = task
    series = load_series(Path(data_dir) / category / name)
    specs = {v: ModelSpec.model_validate_json(s) for v, s in spec_json.items()}
    key = Detector(specs["full"]).spec_key()
    mpath = _models_path(category, name, key)
    cache: dict[str, FittedModel] | None = None
    n_cached = 0
    out: dict[str, Any] = {"category": category, "name": name, "n": len(series), "variants": {}}
    t0 = time.perf_counter()
    for vname, spec in specs.items():
        rpath = _raw_path(category, name, spec)
        if use_cache and rpath.exists():
            with np.load(rpath) as z:
                out["variants"][vname] = {k: z[k] for k in z.files}
            continue
        if cache is None:
            cache = _load_models(mpath) if use_cache else {}
            n_cached = len(cache)
        tv = time.perf_counter()
        res = Detector(raw_spec(spec)).score_series(series, model_cache=cache)
        entry = {
            "raw": res["anomaly_score"].to_numpy(dtype=float),
            "valid": np.isfinite(res["value"].to_numpy(dtype=float)),
            "pos": _align_pos(res["timestamp"], pd.DatetimeIndex(series.index)),
            "band": res[["forecast", "lower", "upper"]].to_numpy(dtype=float),
            "seconds": np.asarray(time.perf_counter() - tv),
        }
        out["variants"][vname] = entry
        if use_cache:
            rpath.parent.mkdir(parents=True, exist_ok=True)
            np.savez_compressed(rpath.with_suffix(".tmp.npz"), **entry)
            rpath.with_suffix(".tmp.npz").replace(rpath)
    out["seconds"] = time.perf_counter() - t0
    if use_cache and cache is not None and len(cache) != n_cached:
        _save_models(mpath, cache)
    return out


def decisions(entry: dict[str, Any], spec: ModelSpec, threshold: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(reported score, is_anomaly) per file row: the detector's decisions replayed on cached raw
    scores at ``threshold`` (default: the spec's own)."""
    thr = spec.threshold if threshold is None else threshold
    score, det = decide(entry["raw"], entry["valid"], spec.components, thr, DetectorState())
    pos = entry["pos"]
    return np.clip(score, 0.0, 1.0)[pos], det[pos]


OWN_GRID = np.round(np.arange(0.30, 0.801, 0.05), 2)  # decision thresholds the own-decision CV picks from


def evaluate(
    results: list[dict[str, Any]],
    windows: dict[str, list[list[str]]],
    data_dir: Path,
    specs: dict[str, dict[str, ModelSpec]],
    own_cv_variants: set[str],
) -> dict[str, Any]:
    """Per variant x category x profile: in-sample and cross-validated scores, swept and own, and
    the false-alarm rate at the detector's own threshold."""
    weights: dict[str, scoring.FileWeights] = {}
    days: dict[str, float] = {}
    inside: dict[str, np.ndarray] = {}
    for r in results:
        fid = f"{r['category']}/{r['name']}"
        ts = pd.read_csv(data_dir / fid, usecols=["timestamp"])["timestamp"]
        wr = scoring.window_rows(ts, windows.get(fid, []))
        weights[fid] = scoring.file_weights(len(ts), wr)
        t = pd.to_datetime(ts)
        days[fid] = (t.iloc[-1] - t.iloc[0]) / pd.Timedelta(days=1)
        m = np.zeros(len(ts), dtype=bool)
        for lo, hi in wr:
            m[lo : hi + 1] = True
        inside[fid] = m
    summary: dict[str, Any] = {}
    vnames = list(results[0]["variants"])
    cats = [c for c in CATEGORIES if any(r["category"] == c for r in results)]
    for v in vnames:
        per_cat: dict[str, Any] = {}
        curves: dict[str, dict[str, list[np.ndarray]]] = {p: {} for p in scoring.PROFILES}
        own_curves: dict[str, dict[str, list[np.ndarray]]] = {p: {} for p in scoring.PROFILES}
        for cat in cats:
            rs = [r for r in results if r["category"] == cat]
            fids = [f"{cat}/{r['name']}" for r in rs]
            ws = [weights[f] for f in fids]
            own = [decisions(r["variants"][v], specs[f][v]) for r, f in zip(rs, fids, strict=True)]
            n_win = sum(w.n_windows for w in ws)
            fa = sum(int((d & ~inside[f]).sum()) for (_, d), f in zip(own, fids, strict=True))
            sdays = sum(days[f] for f in fids)
            entry: dict[str, Any] = {
                "files": len(rs),
                "windows": n_win,
                "series_days": round(sdays, 1),
                "false_alarms": fa,
                "false_alarms_per_series_day": round(fa / sdays, 4) if sdays else None,
                "detected_own": 0,
            }
            grids = None
            if v in own_cv_variants:
                grids = [
                    [decisions(r["variants"][v], specs[f][v], float(g))[1] for g in OWN_GRID]
                    for r, f in zip(rs, fids, strict=True)
                ]
            for pname, prof in scoring.PROFILES.items():
                cv = [scoring.threshold_curve(sc, w, prof) for (sc, _), w in zip(own, ws, strict=True)]
                curves[pname][cat] = cv
                own_files = [scoring.score_detections(d, w, prof) for (_, d), w in zip(own, ws, strict=True)]
                own_total = sum(f.total for f in own_files)
                ins, k = cvmod.in_sample(cv, n_win, prof)
                lf, _ = cvmod.lofo(cv, n_win, prof)
                e: dict[str, Any] = {
                    "swept": _r(ins) if n_win else None,
                    "threshold": float(scoring.GRID[k]),
                    "cv_lofo": _r(lf) if n_win else None,
                    "own": _r(scoring.normalised(own_total, n_win, prof)) if n_win else None,
                }
                if grids is not None:
                    oc = [
                        np.asarray([scoring.score_detections(d, w, prof).total for d in g])
                        for g, w in zip(grids, ws, strict=True)
                    ]
                    own_curves[pname][cat] = oc
                    oi, ok = cvmod.in_sample(oc, n_win, prof)
                    ol, _ = cvmod.lofo(oc, n_win, prof)
                    e["own_best"] = _r(oi) if n_win else None
                    e["own_best_threshold"] = float(OWN_GRID[ok])
                    e["own_cv_lofo"] = _r(ol) if n_win else None
                if pname == "standard":
                    entry["detected_own"] = sum(f.detected for f in own_files)
                    entry["file_scores"] = {
                        r["name"]: _file_dict(f) for r, f in zip(rs, own_files, strict=True)
                    }
                entry[pname] = e
            per_cat[cat] = entry
        # leave one real category out
        real = [c for c in REAL if c in per_cat]
        for pname, prof in scoring.PROFILES.items():
            cw = {c: per_cat[c]["windows"] for c in real}
            lc = cvmod.loco({c: np.sum(curves[pname][c], axis=0) for c in real}, cw, prof)
            for c, (sc_, k) in lc.items():
                per_cat[c][pname]["cv_loco"] = _r(sc_)
                per_cat[c][pname]["cv_loco_threshold"] = float(scoring.GRID[k])
            if v in own_cv_variants:
                lo = cvmod.loco({c: np.sum(own_curves[pname][c], axis=0) for c in real}, cw, prof)
                for c, (sc_, k) in lo.items():
                    per_cat[c][pname]["own_cv_loco"] = _r(sc_)
                    per_cat[c][pname]["own_cv_loco_threshold"] = float(OWN_GRID[k])
        if len(real) == len(REAL):
            mean: dict[str, Any] = {}
            for pname in scoring.PROFILES:
                keys = [k for k, x in per_cat[real[0]][pname].items() if "threshold" not in k and x is not None]
                mean[pname] = {k: _r(float(np.mean([per_cat[c][pname][k] for c in real]))) for k in keys}
            fa = sum(per_cat[c]["false_alarms"] for c in real)
            sd = sum(per_cat[c]["series_days"] for c in real)
            mean["false_alarms_per_series_day"] = round(fa / sd, 4)
            per_cat["mean_real"] = mean
        summary[v] = per_cat
    return summary


def _r(x: float) -> float:
    return round(float(x), 2)


def _file_dict(f: scoring.FileScore) -> dict[str, Any]:
    return {
        "tp": round(f.tp, 3),
        "fp": round(f.fp, 3),
        "n_fp": f.n_fp,
        "detected": f.detected,
        "missed": f.missed,
        "total": round(f.total, 3),
    }


SHORT = {
    "realAWSCloudwatch": "AWS",
    "realKnownCause": "knownCause",
    "realTraffic": "traffic",
    "realAdExchange": "adExchange",
    "realTweets": "tweets",
    "artificialWithAnomaly": "artificial",
    "artificialNoAnomaly": "artificialNoAnomaly",
    "mean_real": "mean of 5 real",
}


def markdown(summary: dict[str, Any], timing: dict[str, Any]) -> str:
    full = summary["full"]
    lines = [
        "# NAB results",
        "",
        "Normalised NAB scores (100 = perfect, 0 = no detections). **In-sample**: `swept` = one threshold "
        "per category chosen on that category's files (NAB scoreboard); `own` = the detector's own "
        "`is_anomaly` at its fixed threshold. **Cross-validated**: `CV-LOFO` = each file scored at the "
        "threshold chosen on the *other* files of its category; `CV-LOCO` = each real category scored at "
        "the threshold that maximises the mean of the *other four* real categories; `own CV` = the same "
        "folds choosing the detector's own decision threshold (with suppression) from "
        f"{OWN_GRID.tolist()}. `gap` = swept - CV-LOFO. False alarms: the detector's own alarms outside "
        "labelled windows (everywhere on artificialNoAnomaly) per series per day.",
        "",
    ]
    for pname in scoring.PROFILES:
        lines += [
            f"## Full detector, {pname}",
            "",
            "| category | files | windows | swept | CV-LOFO | CV-LOCO | gap | own | own CV-LOFO | own CV-LOCO "
            "| false alarms / series / day |",
            "|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for cat, e in full.items():
            p = e[pname]
            gap = (
                p["swept"] - p["cv_lofo"]
                if p.get("swept") is not None and p.get("cv_lofo") is not None
                else None
            )
            fa = e.get("false_alarms_per_series_day") if cat != "mean_real" else e["false_alarms_per_series_day"]
            lines.append(
                f"| {SHORT.get(cat, cat)} | {e.get('files', '')} | {e.get('windows', '')} | "
                f"{_fmt(p.get('swept'))} | {_fmt(p.get('cv_lofo'))} | {_fmt(p.get('cv_loco'))} | {_fmt(gap)} | "
                f"{_fmt(p.get('own'))} | {_fmt(p.get('own_cv_lofo'))} | {_fmt(p.get('own_cv_loco'))} | "
                f"{_fmt(fa, 3)} |"
            )
        lines.append("")
    lines += [
        "## Ablation (standard profile: swept / CV-LOFO / own; false alarms per series per day)",
        "",
        "| variant | AWS | knownCause | traffic | adExchange | tweets | mean of 5 real | artificial "
        "| FA/series/day (real) | FA/series/day (no-anomaly) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for v, cats in summary.items():

        def g(cat: str, cats: dict[str, Any] = cats) -> str:
            if cat not in cats:
                return "-"
            p = cats[cat]["standard"]
            return f"{_fmt(p.get('swept'))} / {_fmt(p.get('cv_lofo'))} / {_fmt(p.get('own'))}"

        m = cats.get("mean_real", {})
        na = cats.get("artificialNoAnomaly", {})
        lines.append(
            f"| {v} | {g('realAWSCloudwatch')} | {g('realKnownCause')} | {g('realTraffic')} | "
            f"{g('realAdExchange')} | {g('realTweets')} | {g('mean_real')} | {g('artificialWithAnomaly')} | "
            f"{_fmt(m.get('false_alarms_per_series_day'), 3)} | "
            f"{_fmt(na.get('false_alarms_per_series_day'), 3)} |"
        )
    aws = full.get("realAWSCloudwatch")
    if aws:
        lines += [
            "",
            "## AWS files, full detector (standard, own decisions)",
            "",
            "| file | detected / missed | FPs | total |",
            "|---|---|---|---|",
        ]
        for name, f in aws["file_scores"].items():
            lines.append(f"| {name} | {f['detected']} / {f['missed']} | {f['n_fp']} | {f['total']} |")
    lines += ["", "## Timing", "", f"```\n{json.dumps(timing, indent=2)}\n```", ""]
    return "\n".join(lines)


def _fmt(x: Any, nd: int = 1) -> str:
    return "-" if x is None or (isinstance(x, float) and x != x) else f"{x:.{nd}f}"


def plot(
    result: dict[str, Any], spec: ModelSpec, windows: list[list[str]], data_dir: Path, out: Path
) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    df = pd.read_csv(data_dir / result["category"] / result["name"], parse_dates=["timestamp"])
    full = result["variants"]["full"]
    band = np.asarray(full["band"], dtype=float)[full["pos"]]
    score, det = decisions(full, spec)
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
    ap.add_argument("--variants", nargs="*", default=[], help="with --only-full: these ablation/experiment variants")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--no-cache", action="store_true")
    ap.add_argument("--no-plots", action="store_true")
    ap.add_argument("--out-name", default="nab_summary", help="results file stem (experiments: another name)")
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
    file_specs: dict[str, dict[str, ModelSpec]] = {}
    for cat in args.categories:
        for path in sorted((data_dir / cat).glob("*.csv")):
            ns, metric = cloudwatch_identity(path.name)
            spec = specset.for_series(ns, metric)
            if overrides:
                spec = _override(spec, overrides)
            families[f"{cat}/{path.name}"] = spec.family
            vs = variants(spec, only_full=args.only_full, extra=args.variants)
            file_specs[f"{cat}/{path.name}"] = vs
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
    summary = evaluate(results, windows, data_dir, file_specs, {"full", *(args.variants if args.only_full else [])})
    timing = {
        "wall_seconds": round(wall, 1),
        "workers": args.workers,
        "files": len(results),
        "variants_per_file": len(results[0]["variants"]),
        "full_variant_seconds_per_file_mean": round(
            float(np.mean([float(r["variants"]["full"]["seconds"]) for r in results])), 3
        ),
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    CACHE.mkdir(parents=True, exist_ok=True)
    (CACHE / ".gitignore").write_text("*\n")
    payload = {"families": families, "overrides": overrides, "timing": timing, "scores": summary}
    (RESULTS / f"{args.out_name}.json").write_text(json.dumps(payload, indent=1))
    (RESULTS / f"{args.out_name}.md").write_text(markdown(summary, timing))
    if not args.no_plots:
        for r in results:
            if r["name"] in PLOTS:
                fid = f"{r['category']}/{r['name']}"
                plot(r, file_specs[fid]["full"], windows.get(fid, []), data_dir, RESULTS / f"nab_{Path(r['name']).stem}.png")
    print(markdown(summary, timing))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
