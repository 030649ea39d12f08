"""Model specifications: one reviewed YAML per metric family under ``include/models/``.

A :class:`ModelSpec` holds everything tunable about the detector for a family of CloudWatch series:
which series use it (``match`` globs on namespace and metric), how the reason text names and formats
the value, the Prophet settings, the refit schedule, the cold start, the scoring components and the
decision threshold. :func:`load_specs` loads a directory; a malformed file is reported as a
:class:`~aiops.core.errors.ConfigError` naming the file and the field while the other files still load.
"""

from __future__ import annotations

import fnmatch
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from aiops.core.config import read_yaml, validate_data
from aiops.core.errors import ConfigError

DEFAULT_FAMILY = "default"


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class MatchRule(_Frozen):
    """Glob patterns (``fnmatch``, case-sensitive) on the CloudWatch namespace and metric name."""

    namespace: str = "*"
    metric: str = "*"

    def matches(self, namespace: str, metric: str) -> bool:
        return fnmatch.fnmatchcase(namespace, self.namespace) and fnmatch.fnmatchcase(metric, self.metric)


class Seasonality(_Frozen):
    name: str
    period_days: float = Field(gt=0)
    fourier_order: int = Field(ge=1, le=50)
    min_history_days: float = Field(
        2.0, ge=0, description="Added only when the fit history covers at least this many days."
    )


class ProphetSettings(_Frozen):
    growth: Literal["linear", "flat"] = "linear"
    seasonalities: list[Seasonality] = Field(
        default_factory=lambda: [
            Seasonality(name="daily", period_days=1, fourier_order=10, min_history_days=2),
            Seasonality(name="weekly", period_days=7, fourier_order=3, min_history_days=14),
        ]
    )
    seasonality_mode: Literal["additive", "multiplicative"] = "additive"
    changepoint_prior_scale: float = Field(0.05, gt=0)
    seasonality_prior_scale: float = Field(10.0, gt=0)
    changepoint_range: float = Field(0.9, gt=0, le=1)
    interval_width: float = Field(0.95, gt=0, lt=1, description="Width of the reported band (lower-upper).")
    robust_fit: bool = Field(False, description="Drop isolated outliers from the history before fitting.")


class Refit(_Frozen):
    every_hours: float = Field(24, gt=0, description="Refit at UTC multiples of this (24 = UTC midnight).")
    history_days: float = Field(14, gt=0, description="Trailing history a fit uses.")
    min_history_hours: float = Field(12, ge=0, description="Cold start: no model before this much data ...")
    min_history_points: int = Field(48, ge=3, description="... and before this many non-NaN points.")


class Components(_Frozen):
    """The scoring pipeline around the forecast; each part can be switched off (ablation)."""

    hold_trend: bool = Field(True, description="Hold Prophet's trend at the end of the fit history.")
    adaptation: bool = Field(True, description="Re-centre the forecast on the recent median residual.")
    adapt_window: int = Field(36, ge=3, description="Points in that median (36 = 3 h at 5 min).")
    robust_scale: bool = Field(True, description="Scale = MAD of the recent residuals, not the fit's sigma.")
    scale_window: int = Field(288, ge=12, description="Points in the trailing residual distribution (1 day).")
    seasonal_envelope: bool = Field(
        True, description="A deviation seen at the same time of day on a recent day is explained."
    )
    envelope_days: int = Field(3, ge=1, description="Previous days searched.")
    envelope_min_days: int = Field(1, ge=1, description="Days the deviation must have been seen on.")
    envelope_tolerance_minutes: float = Field(60, ge=0, description="+- minutes around the same time of day.")
    envelope_margin: float = Field(
        1.0, ge=0, description="A recurring deviation explains (1 + this) x itself."
    )
    envelope_min_z: float = Field(3.0, ge=0, description="Only deviations of at least this z can recur.")
    likelihood: bool = Field(False, description="Add the HTM-style anomaly likelihood channel.")
    likelihood_short: int = Field(6, ge=1, description="Points in the short mean of point surprises.")
    likelihood_window: int = Field(
        288, ge=12, description="Points in the trailing distribution of short means."
    )
    likelihood_cap: float = Field(
        10.0, gt=0, description="Point surprises are capped at this before averaging."
    )
    likelihood_min_std: float = Field(0.2, gt=0, description="Floor of the trailing std of the short mean.")
    level_shift: bool = Field(
        False, description="Add the level-shift channel (recent median vs the one before)."
    )
    shift_window: int = Field(12, ge=2, description="Points in the recent median.")
    shift_scale: float = Field(1.0, gt=0, description="Shift z = median change / (residual scale * this).")
    tail_calibration: bool = Field(
        False,
        description="Calibrate the deviation against this series' own history: divide it by how much "
        "heavier than Gaussian the trailing deviations' `calibration_quantile` is (never amplifies).",
    )
    calibration_window: int = Field(2016, ge=12, description="Points in that history (7 days at 5 min).")
    calibration_quantile: float = Field(0.99, gt=0.5, lt=1, description="Tail quantile compared.")
    calibration_min_points: int = Field(288, ge=12, description="Calibrate only with this much history.")
    repeat_discount: bool = Field(
        False,
        description="Calibrate the surprise against this series' own history: a deviation at least as "
        "surprising as k of the previous `repeat_window` points is (1 + k) ** `repeat_power` times as likely.",
    )
    repeat_window: int = Field(
        4032, ge=12, description="Points in that history (14 days at 5 min: the history a fit sees)."
    )
    repeat_episodes: bool = Field(
        False, description="Count runs of such points (how often it happened), not points (how long)."
    )
    repeat_normal_after: int = Field(
        0,
        ge=0,
        description="A deviation the series produced in at least this many separate episodes within "
        "`repeat_window` is normal for it: scored by its empirical frequency there (0 = off).",
    )
    repeat_power: float = Field(1.0, gt=0, description="Exponent of the discount (1 = (1 + k) x the tail).")
    suppression: bool = Field(True, description="No repeat alarm within `suppress_points` of one.")
    suppress_points: int = Field(72, ge=0, description="72 = 6 h at 5 min.")
    suppress_escalation: float = Field(
        0.0,
        ge=0,
        description="Alarm again while suppressed when the surprise is this x the last alarm's (0 = never).",
    )
    suppress_rearm_points: int = Field(
        0,
        ge=0,
        description="End the quiet period early once this many consecutive points scored below "
        "`suppress_rearm_level` (the episode is over; 0 = never).",
    )
    suppress_rearm_level: float = Field(
        0.4, ge=0, le=1, description="'Calm' for the re-arm rule: every score below this (z < ~2.9)."
    )
    single_point_min_score: float = Field(
        0.0,
        ge=0,
        le=1,
        description="A lone point alarms only at this score or more; below it, the previous point must "
        "also be over the threshold (CloudWatch's '2 of 2 datapoints'; 0 = every point may alarm).",
    )
    suppressed_score_factor: float = Field(
        0.0, ge=0, le=1, description="Scores of suppressed rows are damped."
    )
    score_half: float = Field(3.6, gt=0, description="Surprise (-log10 p) that maps to anomaly_score 0.5.")


class ModelSpec(_Frozen):
    """One metric family's detector configuration (``include/models/<family>.yaml``)."""

    family: str = Field(pattern=r"^[a-z0-9_]+$")
    description: str = ""
    match: list[MatchRule] = Field(default_factory=list)
    label: str = "Value"
    unit: Literal["", "percent", "bytes", "bytes_per_second", "count", "seconds", "milliseconds"] = ""
    precision: int = Field(3, ge=1, le=8, description="Significant digits in the reason text.")
    prophet: ProphetSettings = Field(default_factory=ProphetSettings)
    refit: Refit = Field(default_factory=Refit)
    components: Components = Field(default_factory=Components)
    threshold: float = Field(
        0.5, gt=0, lt=1, description="anomaly_score at or above which is_anomaly is true."
    )

    @model_validator(mode="after")
    def _check(self) -> ModelSpec:
        names = [s.name for s in self.prophet.seasonalities]
        if len(set(names)) != len(names):
            raise ValueError(f"duplicate seasonality names: {names}")
        return self

    def matches(self, namespace: str, metric: str) -> bool:
        return any(rule.matches(namespace, metric) for rule in self.match)

    def with_components(self, **changes: object) -> ModelSpec:
        """A copy with some component settings changed (used by the ablation)."""
        return self.model_copy(update={"components": self.components.model_copy(update=changes)})

    def format_value(self, value: float) -> str:
        return format_value(value, self.unit, self.precision)


def format_value(value: float, unit: str, precision: int = 3) -> str:
    """``94%``, ``1.2 MB``, ``340 ms``, ``1.5k`` ... for the reason text."""
    if value is None or not math.isfinite(value):
        return "n/a"
    if unit == "percent":
        return f"{value:.{precision}g}%" if abs(value) < 10**precision else f"{value:.0f}%"
    if unit in ("bytes", "bytes_per_second"):
        suffix = "/s" if unit == "bytes_per_second" else ""
        mag = abs(value)
        for div, name in ((1e12, "TB"), (1e9, "GB"), (1e6, "MB"), (1e3, "kB")):
            if mag >= div:
                return f"{value / div:.{precision}g} {name}{suffix}"
        return f"{value:.{precision}g} B{suffix}"
    if unit == "seconds":
        if abs(value) < 1:
            return f"{value * 1000:.{precision}g} ms"
        return f"{value:.{precision}g} s"
    if unit == "milliseconds":
        return f"{value:.{precision}g} ms"
    mag = abs(value)
    for div, name in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if mag >= div:
            return f"{value / div:.{precision}g}{name}"
    return f"{value:.{precision}g}"


@dataclass
class SpecSet:
    """The loaded families plus the files that failed to load."""

    specs: dict[str, ModelSpec] = field(default_factory=dict)
    errors: list[ConfigError] = field(default_factory=list)

    def for_series(self, namespace: str, metric: str) -> ModelSpec:
        """The first family (alphabetical, ``default`` last) whose ``match`` covers the series."""
        for name in sorted(self.specs):
            if name != DEFAULT_FAMILY and self.specs[name].matches(namespace, metric):
                return self.specs[name]
        return self.default

    @property
    def default(self) -> ModelSpec:
        return self.specs.get(DEFAULT_FAMILY) or ModelSpec(family=DEFAULT_FAMILY)

    def __getitem__(self, family: str) -> ModelSpec:
        return self.specs[family]

    def __contains__(self, family: object) -> bool:
        return family in self.specs


def _deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in over.items():
        out[k] = _deep_merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def _read(path: Path) -> dict[str, Any]:
    raw, _ = read_yaml(path)
    if not isinstance(raw, dict):
        raise ConfigError(path, "", "expected a mapping of fields")
    return raw


def load_spec(path: Path, base: dict[str, Any] | None = None) -> ModelSpec:
    """Load and validate one YAML file, its fields laid over ``base`` (the default family's fields,
    less ``family``/``description``/``match``); errors name the file and the field."""
    raw = _read(path)
    if base:
        inherited = {k: v for k, v in base.items() if k not in ("family", "description", "match")}
        raw = _deep_merge(inherited, raw)

    spec = validate_data(path, ModelSpec, raw, read_yaml(path)[1])  # every error, with file/line/field
    if spec.family != Path(path).stem:
        raise ConfigError(
            path, "family", f"must equal the file name {Path(path).stem!r}, got {spec.family!r}"
        )
    return spec


def load_specs(directory: Path) -> SpecSet:
    """Every ``*.yaml`` in ``directory``. ``default.yaml`` is loaded first and the other families
    inherit its fields (a family file states only what differs). A malformed file lands in
    ``.errors`` as a :class:`ConfigError` naming the file and the field; the others still load."""
    result = SpecSet()
    directory = Path(directory)
    base: dict[str, Any] | None = None
    default_path = directory / f"{DEFAULT_FAMILY}.yaml"
    if default_path.exists():
        try:
            spec = load_spec(default_path)
            result.specs[spec.family] = spec
            base = _read(default_path)
        except ConfigError as exc:
            result.errors.append(exc)
    for path in sorted(directory.glob("*.yaml")):
        if path == default_path:
            continue
        try:
            spec = load_spec(path, base)
        except ConfigError as exc:
            result.errors.append(exc)
            continue
        result.specs[spec.family] = spec
    return result
