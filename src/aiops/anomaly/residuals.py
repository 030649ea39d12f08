"""Vectorised trailing-window statistics over residuals (pure numpy, no I/O).

Every statistic for row ``j`` uses a fixed window of rows strictly before ``j`` (or ending at ``j``
where stated), computed from scratch per window (no running sums), so results depend only on the
window's contents: scoring a series in one call or in chunks with a carried buffer gives identical
numbers.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

MAD_TO_SIGMA = 1.4826


def _windows(x: np.ndarray, window: int, include_current: bool) -> tuple[np.ndarray, np.ndarray]:
    """(values, valid) of shape (n, window): row j holds x[j-window:j] (or x[j-window+1:j+1])."""
    n = len(x)
    pad = np.full(window, np.nan)
    padded = np.concatenate([pad, x]) if not include_current else np.concatenate([pad[:-1], x])
    view = sliding_window_view(padded, window)[:n]
    return view, ~np.isnan(view)


def trailing_median(
    x: np.ndarray, window: int, min_count: int = 1, include_current: bool = False
) -> np.ndarray:
    """Median of the ``window`` values before row ``j`` (NaN where fewer than ``min_count``)."""
    view, valid = _windows(np.asarray(x, dtype=float), window, include_current)
    count = valid.sum(axis=1)
    out = np.full(len(x), np.nan)
    full = count == window
    if full.any():
        out[full] = np.median(view[full], axis=1)
    part = ~full & (count >= min_count)
    if part.any():
        out[part] = np.nanmedian(view[part], axis=1)
    return out


def trailing_rolling_median(x: np.ndarray, window: int, min_count: int = 1) -> np.ndarray:
    """Median of the ``window`` values before each row (NaN where fewer than ``min_count``), with
    pandas' skip-list rolling median: O(n log window), exact order statistics, so still independent
    of where the array starts."""
    import pandas as pd

    med = pd.Series(np.asarray(x, dtype=float)).rolling(window, min_periods=min_count).median().to_numpy()
    return np.concatenate([[np.nan], med[:-1]]) if len(med) else med


def trailing_median_mad(x: np.ndarray, window: int, min_count: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Median and MAD (unscaled) of the ``window`` values before each row."""
    view, valid = _windows(np.asarray(x, dtype=float), window, include_current=False)
    count = valid.sum(axis=1)
    med = np.full(len(x), np.nan)
    mad = np.full(len(x), np.nan)
    full = count == window
    if full.any():
        v = view[full]
        m = np.median(v, axis=1)
        med[full] = m
        mad[full] = np.median(np.abs(v - m[:, None]), axis=1)
    part = ~full & (count >= min_count)
    if part.any():
        v = view[part]
        m = np.nanmedian(v, axis=1)
        med[part] = m
        mad[part] = np.nanmedian(np.abs(v - m[:, None]), axis=1)
    return med, mad


def trailing_mean_std(x: np.ndarray, window: int, min_count: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard deviation of the ``window`` values before each row."""
    view, valid = _windows(np.asarray(x, dtype=float), window, include_current=False)
    count = valid.sum(axis=1)
    filled = np.where(valid, view, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = filled.sum(axis=1) / count
        var = (np.where(valid, (view - mean[:, None]) ** 2, 0.0)).sum(axis=1) / np.maximum(count - 1, 1)
    ok = count >= min_count
    return np.where(ok, mean, np.nan), np.where(ok, np.sqrt(var), np.nan)


def rolling_mean(x: np.ndarray, window: int) -> np.ndarray:
    """Mean of the ``window`` values ending at each row (fewer at the start)."""
    view, valid = _windows(np.asarray(x, dtype=float), window, include_current=True)
    count = valid.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(valid, view, 0.0).sum(axis=1) / count


def gauss_surprise(z: np.ndarray, two_sided: bool = True) -> np.ndarray:
    """``-log10`` of the Gaussian tail probability of ``z`` (0 for z <= 0 one-sided)."""
    from scipy.special import log_ndtr

    z = np.nan_to_num(np.asarray(z, dtype=float), nan=0.0)
    z = np.abs(z) if two_sided else np.maximum(z, 0.0)
    logp = log_ndtr(-z) + (math.log(2.0) if two_sided else 0.0)
    return np.maximum(-logp / math.log(10.0), 0.0)


def seasonal_recurrence(
    times_ns: np.ndarray,
    values: np.ndarray,
    days: int,
    min_days: int,
    tolerance_ns: int,
) -> np.ndarray:
    """How large a deviation recurs at this time of day: for each of the previous ``days`` days take the
    largest value within ``tolerance`` of the same time of day; return the ``min_days``-th largest of
    those daily maxima (0 where fewer days were observed). ``times_ns`` must be sorted."""
    n = len(times_ns)
    day = 86_400 * 10**9
    daily = np.full((days, n), -np.inf)
    for d in range(1, days + 1):
        start = np.searchsorted(times_ns, times_ns - d * day - tolerance_ns, side="left")
        stop = np.searchsorted(times_ns, times_ns - d * day + tolerance_ns, side="right")
        width = int((stop - start).max()) if n else 0
        best = daily[d - 1]
        for off in range(width):
            idx = start + off
            ok = idx < stop
            if ok.any():
                best = np.where(ok, np.maximum(best, values[np.minimum(idx, n - 1)]), best)
        daily[d - 1] = best
    if days < min_days:
        return np.zeros(n)
    kth = np.sort(daily, axis=0)[days - min_days]
    return np.where(np.isfinite(kth), kth, 0.0)


def tail_factor(z: np.ndarray, window: int, quantile: float, min_count: int, n_last: int) -> np.ndarray:
    """How much heavier than Gaussian this series' deviations are: for each of the last ``n_last`` rows,
    the ``quantile`` of the ``window`` values of ``|z|`` before it divided by the Gaussian's (1 where
    the tail is Gaussian or lighter, or fewer than ``min_count`` values exist); 1 for earlier rows.

    A deviation divided by this factor is as surprising as its rank in the series' own recent
    history says, not as a Gaussian would: a bursty series' usual bursts stop alarming, a quiet
    series keeps its Gaussian sensitivity.
    """
    from scipy.special import ndtri

    x = np.abs(np.asarray(z, dtype=float))
    n = len(x)
    out = np.ones(n)
    k = min(max(int(n_last), 0), n)
    if k == 0:
        return out
    gauss_q = float(ndtri(0.5 + quantile / 2))
    start = n - k
    lo = max(start - window, 0)
    seg = np.concatenate([np.full(window - (start - lo), np.nan), x[lo : n - 1]]) if start - lo < window else x[
        lo : n - 1
    ]
    # row j (j >= start) sees x[j-window:j]
    view = sliding_window_view(seg, window)[:k] if len(seg) >= window else np.empty((0, window))
    valid = ~np.isnan(view)
    count = valid.sum(axis=1)
    q = np.full(k, np.nan)
    full = count == window
    if full.any():
        q[full] = np.quantile(view[full], quantile, axis=1)
    part = ~full & (count >= min_count)
    if part.any():
        q[part] = np.nanquantile(view[part], quantile, axis=1)
    factor = np.where(np.isfinite(q), np.maximum(q / gauss_q, 1.0), 1.0)
    out[start:] = factor
    return out


def trailing_count_ge(
    x: np.ndarray, window: int, n_last: int, episodes: bool = False, block: int = 4096
) -> np.ndarray:
    """For each of the last ``n_last`` rows ``j``: how many of the ``window`` values before it are at
    least ``x[j]`` (NaN values never count) -- or, with ``episodes``, how many runs of consecutive
    such values there are; 0 for earlier rows. Computed per window from scratch, so a row's count
    depends only on the rows before it (chunk invariant)."""
    x = np.asarray(x, dtype=float)
    n = len(x)
    out = np.zeros(n, dtype=np.int64)
    k = min(max(int(n_last), 0), n)
    if k == 0 or window <= 0:
        return out
    padded = np.concatenate([np.full(window, np.nan), x])
    view = sliding_window_view(padded, window)  # row j of view = x[j-window:j]
    for lo in range(n - k, n, block):
        hi = min(lo + block, n)
        with np.errstate(invalid="ignore"):
            ge = view[lo:hi] >= x[lo:hi, None]
            if episodes:
                out[lo:hi] = ge[:, 0] + (ge[:, 1:] & ~ge[:, :-1]).sum(axis=1)
            else:
                out[lo:hi] = ge.sum(axis=1)
    return out
