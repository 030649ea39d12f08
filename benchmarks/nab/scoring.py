"""The published NAB scoring, as stated in ../shared/data/nab/README.md.

* Probation: the first ``min(floor(0.15 * N), 750)`` rows of a file are not scored.
* A detection at row ``i`` inside a window ``[l, r]`` (width ``w = r - l + 1``) earns
  ``A_TP * s(-(r - i + 1) / w) / s(-1)`` with ``s(y) = 2 / (1 + exp(5 y)) - 1`` (``-1`` for ``y > 3``);
  only the earliest detection in a window counts; a window without one costs ``-A_FN``.
* A detection outside every window costs ``-A_FP`` before the first window, and
  ``A_FP * s(|i - r_prev| / (w_prev - 1))`` after a window ending at ``r_prev`` of width ``w_prev``.
* Scoreboard: one threshold on ``anomaly_score`` for the whole set of files, chosen to maximise the
  total (a row is a detection when its score is ``>=`` the threshold).
* Normalised score: ``100 * (S - S_null) / (S_perfect - S_null)``, ``S_perfect = A_TP * windows``,
  ``S_null = -A_FN * windows``.

Window timestamps map to rows: row ``i`` is inside a window when its timestamp is within
``[start, end]`` (both inclusive).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class Profile:
    name: str
    a_tp: float
    a_fp: float
    a_fn: float


PROFILES: dict[str, Profile] = {
    "standard": Profile("standard", 1.0, 0.11, 1.0),
    "reward_low_FP_rate": Profile("reward_low_FP_rate", 1.0, 0.22, 1.0),
    "reward_low_FN_rate": Profile("reward_low_FN_rate", 1.0, 0.11, 2.0),
}


def probation_rows(n_rows: int, fraction: float = 0.15) -> int:
    """Rows at the start of a file that are not scored: ``min(floor(0.15 N), 0.15 * 5000)``."""
    return int(min(math.floor(fraction * n_rows), fraction * 5000))


def scaled_sigmoid(y: float) -> float:
    """NAB's ``s(y) = 2 / (1 + exp(5 y)) - 1``, and ``-1`` for ``y > 3``."""
    if y > 3.0:
        return -1.0
    return 2.0 / (1.0 + math.exp(5.0 * y)) - 1.0


def window_rows(
    timestamps: Sequence[pd.Timestamp] | pd.Series, windows: Sequence[Sequence[str]]
) -> list[tuple[int, int]]:
    """Row ranges ``(l, r)`` (inclusive) of the rows whose timestamps fall in each window."""
    idx = pd.DatetimeIndex(pd.to_datetime(pd.Series(timestamps)))
    if idx.tz is not None:  # windows.json timestamps are UTC without an offset
        idx = idx.tz_convert("UTC").tz_localize(None)
    ts = idx.as_unit("ns").to_numpy()
    out: list[tuple[int, int]] = []
    for start, end in windows:
        inside = np.flatnonzero(
            (ts >= np.datetime64(pd.Timestamp(start))) & (ts <= np.datetime64(pd.Timestamp(end)))
        )
        if len(inside):
            out.append((int(inside[0]), int(inside[-1])))
    return out


@dataclass
class FileWeights:
    """What a detection at each scored row is worth, per file (rows in probation are dropped)."""

    rows: np.ndarray  # row index of each scored row
    window: np.ndarray  # window id (0..n_windows-1) of each scored row, -1 outside windows
    unweighted: np.ndarray  # s(...) for each row (TP rows: s(-(r-i+1)/w); FP rows: -1 or s(|i-r|/(w-1)))
    n_windows: int

    def weighted(self, profile: Profile) -> np.ndarray:
        tp = self.unweighted * profile.a_tp / scaled_sigmoid(-1.0)
        fp = self.unweighted * profile.a_fp
        return np.where(self.window >= 0, tp, fp)


def file_weights(n_rows: int, windows_rows: Sequence[tuple[int, int]]) -> FileWeights:
    probation = probation_rows(n_rows)
    window = np.full(n_rows, -1, dtype=int)
    unweighted = np.full(n_rows, -1.0)
    for k, (left, right) in enumerate(windows_rows):
        width = right - left + 1
        for i in range(left, right + 1):
            window[i] = k
            unweighted[i] = scaled_sigmoid(-(right - i + 1) / width)
    # rows after a window: weighted by the distance to the end of the most recent window before them
    ordered = sorted(windows_rows)
    for k, (left, right) in enumerate(ordered):
        width = right - left + 1
        nxt = ordered[k + 1][0] if k + 1 < len(ordered) else n_rows
        for i in range(right + 1, nxt):
            unweighted[i] = scaled_sigmoid(abs(i - right) / max(width - 1, 1))
    keep = np.arange(n_rows) >= probation
    return FileWeights(np.arange(n_rows)[keep], window[keep], unweighted[keep], len(windows_rows))


@dataclass
class FileScore:
    tp: float  # sum of the earliest-detection weights of detected windows
    fp: float  # sum of the (negative) FP weights
    fn: float  # -A_FN * missed windows
    detected: int
    missed: int
    n_fp: int

    @property
    def total(self) -> float:
        return self.tp + self.fp + self.fn


def score_detections(detections: np.ndarray, weights: FileWeights, profile: Profile) -> FileScore:
    """Score one file's boolean detections (one per row of the file)."""
    det = np.asarray(detections, dtype=bool)[weights.rows]
    w = weights.weighted(profile)
    tp = 0.0
    detected = 0
    for k in range(weights.n_windows):
        hits = np.flatnonzero(det & (weights.window == k))
        if len(hits):
            tp += float(w[hits[0]])  # earliest detection
            detected += 1
    fp_mask = det & (weights.window < 0)
    missed = weights.n_windows - detected
    return FileScore(
        tp, float(w[fp_mask].sum()), -profile.a_fn * missed, detected, missed, int(fp_mask.sum())
    )


def normalised(total: float, n_windows: int, profile: Profile) -> float:
    perfect = profile.a_tp * n_windows
    null = -profile.a_fn * n_windows
    return 100.0 * (total - null) / (perfect - null) if n_windows else float("nan")


@dataclass
class SweepResult:
    threshold: float
    total: float
    normalised: float
    n_windows: int


def sweep_threshold(
    scores: Sequence[np.ndarray], weights: Sequence[FileWeights], profile: Profile
) -> SweepResult:
    """NAB scoreboard: one threshold for all files, maximising the summed raw score.

    Candidate thresholds are the distinct scores (descending); a row is a detection when its score is
    ``>=`` the threshold. A threshold above every score (no detections) is a candidate too.
    """
    n_windows = sum(w.n_windows for w in weights)
    rows: list[tuple[float, float, int]] = []  # (score, weighted value, global window id or -1)
    offset = 0
    for sc, fw in zip(scores, weights, strict=True):
        file_scores = np.asarray(sc, dtype=float)[fw.rows]
        file_values = fw.weighted(profile)
        file_windows = np.where(fw.window >= 0, fw.window + offset, -1)
        rows.extend(zip(file_scores.tolist(), file_values.tolist(), file_windows.tolist(), strict=True))
        offset += fw.n_windows
    rows.sort(key=lambda t: -t[0])
    best_window: dict[int, float] = {}
    fp = 0.0
    tp = 0.0
    best_total = -profile.a_fn * n_windows
    best_threshold = math.inf
    i = 0
    while i < len(rows):
        thr = rows[i][0]
        # add every row with this exact score
        while i < len(rows) and rows[i][0] == thr:
            _, wv, gid = rows[i]
            if gid < 0:
                fp += wv
            else:
                prev = best_window.get(gid)
                if prev is None:
                    best_window[gid] = wv
                    tp += wv
                elif wv > prev:  # an earlier detection in the window weighs more
                    best_window[gid] = wv
                    tp += wv - prev
            i += 1
        total = tp + fp - profile.a_fn * (n_windows - len(best_window))
        if total > best_total:
            best_total, best_threshold = total, thr
    return SweepResult(best_threshold, best_total, normalised(best_total, n_windows, profile), n_windows)


def score_at_threshold(
    scores: Sequence[np.ndarray], weights: Sequence[FileWeights], profile: Profile, threshold: float
) -> tuple[float, float, list[FileScore]]:
    """Total and normalised score of a fixed threshold (e.g. the detector's own decisions at 0.5)."""
    per_file = [
        score_detections(np.asarray(s, dtype=float) >= threshold, fw, profile)
        for s, fw in zip(scores, weights, strict=True)
    ]
    total = sum(f.total for f in per_file)
    n_windows = sum(w.n_windows for w in weights)
    return total, normalised(total, n_windows, profile), per_file


# --------------------------------------------------------------------------------------------------
# Score as a function of the threshold (for cross-validation)
# --------------------------------------------------------------------------------------------------

GRID = np.concatenate([np.linspace(0.0, 1.0, 20_001), [math.inf]])  # candidate thresholds (inf: no detections)


def threshold_curve(
    scores: np.ndarray, weights: FileWeights, profile: Profile, grid: np.ndarray = GRID
) -> np.ndarray:
    """One file's raw NAB total at every threshold of ``grid`` (detection: score ``>=`` threshold).

    Totals are additive over files, so the sum of curves is a category's total at each threshold and
    a threshold can be chosen on any subset of files (leave-one-out) without re-scoring.
    """
    sc = np.asarray(scores, dtype=float)[weights.rows]
    sc = np.where(np.isfinite(sc), sc, -np.inf)
    w = weights.weighted(profile)
    grid = np.asarray(grid, dtype=float)
    # false positives: rows outside windows with score >= t
    out = weights.window < 0
    fs = np.sort(sc[out])
    fw = w[out][np.argsort(sc[out], kind="stable")]
    tail = np.concatenate([np.cumsum(fw[::-1])[::-1], [0.0]])  # tail[k] = sum of weights of fs[k:]
    total = tail[np.searchsorted(fs, grid, side="left")]
    # windows: the earliest detection's weight = the largest weight among rows with score >= t
    for k in range(weights.n_windows):
        inside = weights.window == k
        ks, kw = sc[inside], w[inside]
        order = np.argsort(-ks, kind="stable")
        best = np.maximum.accumulate(kw[order])  # best weight among the top-j scores
        n_above = len(ks) - np.searchsorted(np.sort(ks), grid, side="left")
        total = total + np.where(n_above > 0, best[np.maximum(n_above - 1, 0)], -profile.a_fn)
    return total
