"""Production-like metric signals for the simulated account, as pure functions of time.

Every value is a deterministic function of (seed, series name, timestamp): history seeded today
and points fed live tomorrow come from the same functions, so the account keeps behaving the same
way while ``make run`` is up. Shapes follow what real fleets show: a traffic curve with a morning
ramp and an evening tail (two harmonics, not a sine), weekend dips, slow growth, AR(1) noise whose
size scales with load, rare short bursts, and metrics that move together because one latent
traffic signal per service drives requests, CPU, network and latency.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

STEP = 300  # seconds: CloudWatch's 5-minute period
DAY = 86_400
Signal = Callable[["np.ndarray"], "np.ndarray"]


def _key(*parts: object) -> int:
    return int.from_bytes(hashlib.blake2b("|".join(map(str, parts)).encode(), digest_size=8).digest(), "big")


def noise(seed: int, name: str, t: np.ndarray, phi: float = 0.6) -> np.ndarray:
    """Unit-variance AR(1) noise, generated per UTC day so any window is reproducible."""
    import numpy as np

    t = np.asarray(t, dtype=np.int64)
    out = np.empty(len(t))
    days = t // DAY
    for day in np.unique(days):
        rng = np.random.default_rng([_key(seed, name), int(day)])
        eps = rng.standard_normal(DAY // STEP)
        ar = np.empty_like(eps)
        ar[0] = eps[0]
        scale = np.sqrt(1 - phi**2)
        for i in range(1, len(eps)):
            ar[i] = phi * ar[i - 1] + scale * eps[i]
        mask = days == day
        out[mask] = ar[(t[mask] % DAY) // STEP]
    return out


def bursts(seed: int, name: str, t: np.ndarray, per_day: float, size: float) -> np.ndarray:
    """Rare short positive bursts (a cron job, a cache refill): ~``per_day`` a day, 1-3 steps long."""
    import numpy as np

    t = np.asarray(t, dtype=np.int64)
    out = np.zeros(len(t))
    if per_day <= 0:
        return out
    days = t // DAY
    for day in np.unique(days):
        rng = np.random.default_rng([_key(seed, name, "burst"), int(day)])
        n = rng.poisson(per_day)
        slots = rng.integers(0, DAY // STEP, size=n)
        lengths = rng.integers(1, 4, size=n)
        heights = size * (0.5 + rng.random(n))
        mask = days == day
        steps = (t[mask] % DAY) // STEP
        vals = np.zeros(mask.sum())
        for s, ln, h in zip(slots, lengths, heights, strict=True):
            vals[(steps >= s) & (steps < s + ln)] += h
        out[mask] = vals
    return out


def daily_shape(t: np.ndarray, peak_hour: float = 15.0, amplitude: float = 0.5) -> np.ndarray:
    """Traffic-like day: trough before dawn, steep morning ramp, broad afternoon peak."""
    import numpy as np

    hours = (np.asarray(t) % DAY) / 3600.0
    phase = 2 * np.pi * (hours - peak_hour) / 24.0
    shape = 0.75 * np.cos(phase) + 0.25 * np.cos(2 * phase + 0.6)
    return 1.0 + amplitude * shape


def weekly_shape(t: np.ndarray, weekend_dip: float = 0.25) -> np.ndarray:
    import numpy as np

    weekday = ((np.asarray(t) // DAY) + 3) % 7  # 1970-01-01 was a Thursday -> Monday = 0
    return np.where(weekday >= 5, 1.0 - weekend_dip, 1.0)


@dataclass(frozen=True)
class Traffic:
    """A service's latent request rate (requests per 5 minutes)."""

    name: str
    peak_per_step: float
    amplitude: float = 0.55
    weekend_dip: float = 0.3
    growth_per_day: float = 0.0008
    noise: float = 0.06
    peak_hour: float = 15.0
    epoch: float = 1_767_225_600.0  # 2026-01-01: growth is measured from here

    def __call__(self, seed: int, t: np.ndarray) -> np.ndarray:
        import numpy as np

        t = np.asarray(t, dtype=float)
        growth = 1.0 + self.growth_per_day * (t - self.epoch) / DAY
        base = self.peak_per_step / (1 + self.amplitude)
        level = base * daily_shape(t, self.peak_hour, self.amplitude) * weekly_shape(t, self.weekend_dip)
        level = level * growth * (1 + self.noise * noise(seed, self.name, t))
        return np.maximum(level, 0.0)


@dataclass(frozen=True)
class Anomaly:
    """An injected truth: how a series departs from normal in [start, end) (epoch seconds)."""

    kind: str  # spike | level_shift | slow_leak | dropout | surge
    start: float
    end: float
    magnitude: float  # spike: level; level_shift: factor; slow_leak: added at end; surge: rate

    def apply(self, t: np.ndarray, values: np.ndarray) -> np.ndarray:
        import numpy as np

        t = np.asarray(t, dtype=float)
        inside = (t >= self.start) & (t < self.end)
        out = values.copy()
        if self.kind == "spike":
            out[inside] = np.maximum(out[inside], self.magnitude * (0.97 + 0.03 * np.cos(t[inside])))
        elif self.kind == "level_shift":
            out[t >= self.start] *= self.magnitude
        elif self.kind == "slow_leak":
            frac = np.clip((t - self.start) / max(self.end - self.start, 1.0), 0.0, None)
            out[t >= self.start] += self.magnitude * frac[t >= self.start]
        elif self.kind == "dropout":
            out[inside] = self.magnitude
        elif self.kind != "surge":  # surge changes an error *rate*: see error_counts()
            raise ValueError(f"unknown anomaly kind {self.kind!r}")
        return out


def error_counts(seed: int, name: str, t: np.ndarray, requests: np.ndarray, base_rate: float,
                 anomalies: tuple[Anomaly, ...] = ()) -> np.ndarray:
    """5xx counts: ``requests x rate`` with binomial-sized noise; the rate surges inside surge
    windows. Noise comes from :func:`noise`, so a count depends only on its timestamp."""
    import numpy as np

    t = np.asarray(t, dtype=float)
    rate = np.full(len(t), base_rate)
    for a in anomalies:
        if a.kind == "surge":
            rate[(t >= a.start) & (t < a.end)] = a.magnitude
    mean = requests * rate
    jitter = np.sqrt(np.maximum(mean * (1 - rate), 0.0)) * noise(seed, f"{name}/errors", t, phi=0.0)
    return np.maximum(np.round(mean + jitter), 0.0)


def clip(values: np.ndarray, low: float | None = 0.0, high: float | None = None) -> np.ndarray:
    import numpy as np

    return np.clip(values, low, high)
