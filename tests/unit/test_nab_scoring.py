"""NAB scoring (benchmarks/nab/scoring.py) against hand-computed cases of the published rules."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from benchmarks.nab import scoring

STD = scoring.PROFILES["standard"]
S_MINUS_1 = 2 / (1 + math.exp(-5)) - 1  # s(-1) = 0.98661...


def s(y: float) -> float:
    return -1.0 if y > 3 else 2 / (1 + math.exp(5 * y)) - 1


def one_file(n: int = 100, windows: list[tuple[int, int]] | None = None) -> scoring.FileWeights:
    return scoring.file_weights(n, windows if windows is not None else [(50, 59)])


def det(n: int, *rows: int) -> np.ndarray:
    d = np.zeros(n, dtype=bool)
    d[list(rows)] = True
    return d


@pytest.mark.parametrize(
    ("n", "expected"),
    [
        pytest.param(100, 15, id="15-percent"),
        pytest.param(4032, 604, id="aws-file"),
        pytest.param(1243, 186, id="short-file"),
        pytest.param(10_000, 750, id="capped-at-750"),
    ],
)
def test_probation_rows(n: int, expected: int) -> None:
    assert scoring.probation_rows(n) == expected


@pytest.mark.parametrize(
    ("y", "expected"),
    [
        pytest.param(-1.0, S_MINUS_1, id="window-start"),
        pytest.param(0.0, 0.0, id="zero"),
        pytest.param(3.0, 2 / (1 + math.exp(15)) - 1, id="at-3"),
        pytest.param(3.01, -1.0, id="beyond-3"),
    ],
)
def test_scaled_sigmoid(y: float, expected: float) -> None:
    assert scoring.scaled_sigmoid(y) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("row", "expected"),
    [
        pytest.param(50, 1.0, id="first-row-of-window-earns-A_TP"),
        pytest.param(54, s(-6 / 10) / S_MINUS_1, id="middle"),
        pytest.param(59, s(-1 / 10) / S_MINUS_1, id="last-row"),
    ],
)
def test_true_positive_weight_by_position(row: int, expected: float) -> None:
    r = scoring.score_detections(det(100, row), one_file(), STD)
    assert r.tp == pytest.approx(expected)
    assert (r.detected, r.missed, r.fp, r.fn) == (1, 0, 0.0, 0.0)


def test_only_earliest_detection_in_a_window_counts() -> None:
    r = scoring.score_detections(det(100, 52, 55, 58), one_file(), STD)
    assert r.tp == pytest.approx(s(-8 / 10) / S_MINUS_1)
    assert r.n_fp == 0


def test_missed_window_costs_a_fn() -> None:
    r = scoring.score_detections(det(100), one_file(), scoring.PROFILES["reward_low_FN_rate"])
    assert r.total == pytest.approx(-2.0)
    assert r.missed == 1


def test_false_positive_before_any_window_costs_a_fp() -> None:
    r = scoring.score_detections(det(100, 30), one_file(), STD)
    assert r.fp == pytest.approx(-0.11)
    assert r.total == pytest.approx(-0.11 - 1.0)


@pytest.mark.parametrize(
    ("row", "y"),
    [
        pytest.param(60, 1 / 9, id="right-after-the-window-is-cheap"),
        pytest.param(65, 6 / 9, id="later"),
        pytest.param(95, 36 / 9, id="far-after-costs-full"),
    ],
)
def test_false_positive_after_a_window_is_weighted_by_distance(row: int, y: float) -> None:
    r = scoring.score_detections(det(100, row), one_file(), scoring.PROFILES["reward_low_FP_rate"])
    assert r.fp == pytest.approx(0.22 * s(y))


def test_detections_in_probation_are_ignored() -> None:
    r = scoring.score_detections(det(100, 3, 14), one_file(), STD)
    assert r.n_fp == 0
    assert r.fp == 0.0


def test_window_timestamps_map_to_rows_inclusively() -> None:
    ts = pd.date_range("2014-01-01", periods=20, freq="5min")
    rows = scoring.window_rows(ts, [["2014-01-01 00:10:00.000000", "2014-01-01 00:30:00.000000"]])
    assert rows == [(2, 6)]


def test_window_timestamps_map_to_rows_with_utc_index() -> None:
    ts = pd.date_range("2014-01-01", periods=20, freq="5min", tz="UTC")
    rows = scoring.window_rows(ts, [["2014-01-01 00:12:00", "2014-01-01 00:30:00"]])
    assert rows == [(3, 6)]


def test_normalised_score_of_perfect_and_null() -> None:
    assert scoring.normalised(3.0, 3, STD) == pytest.approx(100.0)
    assert scoring.normalised(-3.0, 3, STD) == pytest.approx(0.0)
    assert scoring.normalised(0.0, 3, STD) == pytest.approx(50.0)


def test_sweep_picks_the_best_single_threshold_over_all_files() -> None:
    w1, w2 = one_file(), one_file(windows=[(70, 79)])
    a = np.zeros(100)
    a[[52, 30]] = [0.9, 0.95]  # TP at 0.9, FP (before window) at 0.95
    b = np.zeros(100)
    b[[72, 40, 41]] = [0.6, 0.7, 0.65]  # TP at 0.6, two FPs above it
    res = scoring.sweep_threshold([a, b], [w1, w2], STD)
    # brute force over every candidate threshold
    best = max(
        (
            sum(scoring.score_detections(x >= t, w, STD).total for x, w in ((a, w1), (b, w2))),
            t,
        )
        for t in [1.1, 0.95, 0.9, 0.7, 0.65, 0.6, 0.0]
    )
    assert res.total == pytest.approx(best[0])
    assert res.threshold == pytest.approx(best[1])
    assert res.threshold == pytest.approx(0.6)


def test_sweep_with_no_detection_worth_it_scores_the_null_detector() -> None:
    a = np.zeros(100)
    a[30] = 0.9  # only a false positive
    res = scoring.sweep_threshold([a], [one_file()], STD)
    assert res.total == pytest.approx(-1.0)
    assert res.normalised == pytest.approx(0.0)


def test_threshold_curve_matches_scoring_at_each_threshold() -> None:
    """The per-threshold curve used by cross-validation equals scoring the detections directly."""
    rng = np.random.default_rng(3)
    fw = scoring.file_weights(400, [(100, 119), (250, 259)])
    scores = rng.random(400) ** 3
    grid = np.array([0.0, 0.05, 0.2, 0.5, 0.9, 0.999, math.inf])
    for prof in scoring.PROFILES.values():
        curve = scoring.threshold_curve(scores, fw, prof, grid)
        for thr, got in zip(grid, curve, strict=True):
            want = scoring.score_detections(scores >= thr, fw, prof).total
            assert got == pytest.approx(want), (prof.name, thr)


def test_threshold_curve_no_detections_costs_every_window() -> None:
    fw = scoring.file_weights(200, [(100, 119)])
    curve = scoring.threshold_curve(np.zeros(200), fw, STD, np.array([0.5, math.inf]))
    assert curve.tolist() == [-1.0, -1.0]


def test_decisions_replayed_from_raw_scores_equal_the_detectors_own() -> None:
    """The benchmark replays the detector's decisions (suppression included) on cached raw scores at
    other thresholds; at the spec's threshold that must be exactly what the detector decides."""
    from benchmarks.nab import run_nab

    from aiops.anomaly.detector import Detector
    from aiops.anomaly.spec import load_specs

    spec = load_specs(Path(__file__).resolve().parents[2] / "include" / "models")["default"]
    idx = pd.date_range("2026-03-02", periods=4 * 288, freq="5min", tz="UTC")
    rng = np.random.default_rng(4)
    y = pd.Series(10 + np.sin(np.arange(len(idx)) / 288 * 2 * np.pi) + rng.normal(0, 0.2, len(idx)), index=idx)
    y.iloc[[700, 705, 900, 1000]] += [4.0, 5.0, -4.0, 3.0]
    own = Detector(spec).score_series(y)
    raw = Detector(run_nab.raw_spec(spec)).score_series(y)
    entry = {
        "raw": raw["anomaly_score"].to_numpy(dtype=float),
        "valid": np.isfinite(raw["value"].to_numpy(dtype=float)),
        "pos": np.arange(len(raw)),
    }
    score, det = run_nab.decisions(entry, spec)
    assert det.any()
    assert det.tolist() == own["is_anomaly"].tolist()
    assert score == pytest.approx(own["anomaly_score"].to_numpy())
