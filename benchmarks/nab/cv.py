"""Cross-validated NAB scores: every tuned threshold is chosen on folds that exclude the scored file.

The inputs are per-file *curves*: a file's raw NAB total at each candidate threshold of a grid
(``scoring.threshold_curve`` for score thresholds, or the detector's own decisions re-run at a few
decision thresholds). Totals add up over files, so

* **in-sample** (the NAB scoreboard): the threshold maximising the category's summed curve;
* **leave-one-file-out** (LOFO): each file is scored at the threshold that maximises the summed
  curve of the *other* files of its category;
* **leave-one-category-out** (LOCO): each real category is scored at the threshold that maximises
  the mean normalised score of the *other* real categories.

Ties (a plateau of equally good thresholds) resolve to the middle of the highest plateau: the
threshold with the most margin on both sides.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from benchmarks.nab.scoring import Profile, normalised


def best_index(total: np.ndarray) -> int:
    """Index of the best threshold: the middle of the highest-threshold plateau of maximal values."""
    t = np.asarray(total, dtype=float)
    top = float(np.max(t))
    hits = np.flatnonzero(t >= top - 1e-9)
    hi = int(hits[-1])
    lo = hi
    while lo - 1 >= 0 and t[lo - 1] >= top - 1e-9:
        lo -= 1
    return (lo + hi) // 2


def norm_curve(total: np.ndarray, n_windows: int, profile: Profile) -> np.ndarray:
    perfect, null = profile.a_tp * n_windows, -profile.a_fn * n_windows
    return 100.0 * (np.asarray(total) - null) / (perfect - null)


def in_sample(curves: Sequence[np.ndarray], n_windows: int, profile: Profile) -> tuple[float, int]:
    """(normalised score, threshold index) with one threshold chosen on all files."""
    tot = np.sum(curves, axis=0)
    k = best_index(tot)
    return normalised(float(tot[k]), n_windows, profile), k


def lofo(curves: Sequence[np.ndarray], n_windows: int, profile: Profile) -> tuple[float, list[int]]:
    """(normalised score, per-file threshold index) when each file's threshold comes from the others."""
    tot = np.sum(curves, axis=0)
    total = 0.0
    picks: list[int] = []
    for c in curves:
        k = best_index(tot - c) if len(curves) > 1 else best_index(c)
        picks.append(k)
        total += float(c[k])
    return normalised(total, n_windows, profile), picks


def loco(
    cat_curves: dict[str, np.ndarray], cat_windows: dict[str, int], profile: Profile
) -> dict[str, tuple[float, int]]:
    """Per category: (normalised score, threshold index) with the threshold that maximises the mean
    normalised score of the other categories (categories without windows are scored, never tuned on)."""
    normed = {
        c: norm_curve(cat_curves[c], cat_windows[c], profile) for c in cat_curves if cat_windows[c] > 0
    }
    out: dict[str, tuple[float, int]] = {}
    for cat, curve in cat_curves.items():
        others = [v for c, v in normed.items() if c != cat]
        if not others:
            continue
        k = best_index(np.mean(others, axis=0))
        score = normalised(float(curve[k]), cat_windows[cat], profile) if cat_windows[cat] else float("nan")
        out[cat] = (score, k)
    return out
