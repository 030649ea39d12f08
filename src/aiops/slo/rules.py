"""Service level objectives: the definitions (``include/slos/*.yaml``) and the arithmetic on them.

Everything here is a pure function of pandas frames and can be checked by hand:

* an SLI is ``good / total`` events over a window. Events are requests (``ratio``: e.g. ALB
  requests that were not 5xx) or 5-minute periods (``latency``, ``health``: a *time slice* is
  good when the period's value meets the threshold — CloudWatch gives per-period averages, not
  per-request latencies, so "95% of periods under 0.5 s" stands in for "95% of requests");
* the error budget is the allowed bad fraction, ``1 - objective``;
* the burn rate over a window is ``observed error rate / (1 - objective)``: 1x spends exactly the
  budget over the SLO window, 14.4x spends 2% of a 30-day budget in one hour;
* the budget remaining over the rolling window is ``1 - bad / ((1 - objective) x total)``, i.e.
  one minus the burn rate over the whole window. **Partial history**: when the metrics store holds
  less than the window (it keeps 14 days; SLOs look back 28), the budget is computed over the
  periods that do have data — as if the missing days behaved like the observed ones — and the
  fraction of the window with data is reported as ``coverage``;
* a burn-rate rule (Google SRE Workbook, "multiwindow, multi-burn-rate alerts") fires when BOTH
  its long and its short window burn at or above its threshold, and its long window has data for
  at least :data:`MIN_LONG_WINDOW_COVERAGE` of its length; the severity at a point is the
  highest of the firing rules';
* an alert *starts* at a point whose severity is higher than every severity in the quiet period
  before it (default 1 h), so a continuing or flapping burn raises one alert, and escalating from
  ticket to page raises the page.

Evaluation at ``t`` uses the periods ``[t - window, t)`` only, so evaluating a point again (a retry,
a backfill) gives the same row. Event counts are whole numbers and are summed as integers, so the
result does not depend on where a range starts.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    ValidationError,
    field_validator,
    model_validator,
)

from aiops.core.config import ConfigErrors, issues_of, read_yaml
from aiops.core.errors import ConfigError

if TYPE_CHECKING:
    import pandas as pd

PERIOD = timedelta(minutes=5)  # the metrics store's resolution; every window is a multiple of it
MIN_LONG_WINDOW_COVERAGE = 0.5  # a rule needs data for half its long window before it may fire
SEVERITY_RANK = {"none": 0, "ticket": 1, "page": 2}
TAG_COLUMNS = ("service", "env", "team")  # the resource tags the metrics store carries per row

_DURATION = re.compile(r"^\s*(\d+)\s*([mhd])\s*$")
_UNIT = {"m": timedelta(minutes=1), "h": timedelta(hours=1), "d": timedelta(days=1)}


def parse_duration(value: Any) -> Any:
    """``"5m"``, ``"1h"``, ``"28d"`` -> timedelta; anything else is left to pydantic (ISO 8601, seconds)."""
    if isinstance(value, str):
        match = _DURATION.match(value)
        if match:
            return int(match.group(1)) * _UNIT[match.group(2)]
    return value


def duration_label(value: timedelta) -> str:
    """The shortest ``<n><unit>`` spelling: 300 s -> ``5m``, 3 days -> ``3d``, 90 min -> ``90m``."""
    seconds = int(value.total_seconds())
    for unit, size in (("d", 86_400), ("h", 3_600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


Duration = Annotated[timedelta, BeforeValidator(parse_duration), PlainSerializer(duration_label, return_type=str)]


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# --- definitions -------------------------------------------------------------------------------
class Selector(_Frozen):
    """Which series of the metrics store feed the SLI: a namespace, tags and dimension globs."""

    namespace: str = "AWS/ApplicationELB"
    tags: dict[str, str] = Field(default_factory=dict, description="Resource tags the series must carry.")
    dimensions: dict[str, str] = Field(
        default_factory=dict, description="Dimension name -> fnmatch glob; '*' = the dimension must exist.")

    @field_validator("tags")
    @classmethod
    def _known_tags(cls, tags: dict[str, str]) -> dict[str, str]:
        unknown = sorted(set(tags) - set(TAG_COLUMNS))
        if unknown:
            raise ValueError(f"the metrics store carries the tags {list(TAG_COLUMNS)}; cannot match on {unknown}")
        return tags

    @model_validator(mode="after")
    def _not_everything(self) -> Selector:
        if not self.tags and not self.dimensions:
            raise ValueError("give tags and/or dimensions: an empty selector would match every series")
        return self

    def matches(self, namespace: str, tags: dict[str, str], dimensions: dict[str, str]) -> bool:
        if namespace != self.namespace:
            return False
        if any(tags.get(k) != v for k, v in self.tags.items()):
            return False
        return all(name in dimensions and fnmatch.fnmatchcase(dimensions[name], glob)
                   for name, glob in self.dimensions.items())


class RatioIndicator(_Frozen):
    """Good / total events from two count metrics (Sum): give ``bad`` (good = total - bad) or ``good``."""

    type: Literal["ratio"]
    total: str = "RequestCount"
    bad: str | None = None
    good: str | None = None

    @model_validator(mode="after")
    def _one_of(self) -> RatioIndicator:
        if (self.bad is None) == (self.good is None):
            raise ValueError("give exactly one of 'bad' or 'good' (the metric counting bad or good events)")
        return self

    @property
    def metrics(self) -> tuple[str, ...]:
        return (self.total, self.bad or self.good or "")


class LatencyIndicator(_Frozen):
    """Time slices: a 5-minute period is good when the (worst matched series') average is under the threshold."""

    type: Literal["latency"]
    metric: str = "TargetResponseTime"
    threshold_seconds: float = Field(gt=0)

    @property
    def metrics(self) -> tuple[str, ...]:
        return (self.metric,)


class HealthIndicator(_Frozen):
    """Time slices: a 5-minute period is good when at most ``max_unhealthy`` hosts failed health checks."""

    type: Literal["health"]
    metric: str = "UnHealthyHostCount"
    max_unhealthy: float = Field(0, ge=0)

    @property
    def metrics(self) -> tuple[str, ...]:
        return (self.metric,)


Indicator = Annotated[RatioIndicator | LatencyIndicator | HealthIndicator, Field(discriminator="type")]


class BurnRateRule(_Frozen):
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    severity: Literal["page", "ticket"]
    long_window: Duration
    short_window: Duration
    burn_rate: float = Field(gt=0, description="Fires when both windows burn at least this fast.")

    @model_validator(mode="after")
    def _windows(self) -> BurnRateRule:
        for name in ("long_window", "short_window"):
            value: timedelta = getattr(self, name)
            if value <= timedelta(0) or value % PERIOD:
                raise ValueError(f"{name} must be a positive multiple of 5 minutes, got {duration_label(value)}")
        if self.short_window >= self.long_window:
            raise ValueError("short_window must be shorter than long_window")
        return self


def default_rules() -> list[BurnRateRule]:
    """The SRE Workbook's defaults: 2% of the budget in 1 h, 5% in 6 h (page), 10% in 3 days (ticket)."""
    return [
        BurnRateRule(name="page-1h", severity="page", long_window=timedelta(hours=1),
                     short_window=timedelta(minutes=5), burn_rate=14.4),
        BurnRateRule(name="page-6h", severity="page", long_window=timedelta(hours=6),
                     short_window=timedelta(minutes=30), burn_rate=6.0),
        BurnRateRule(name="ticket-3d", severity="ticket", long_window=timedelta(days=3),
                     short_window=timedelta(hours=6), burn_rate=1.0),
    ]


class AlertingPolicy(_Frozen):
    rules: list[BurnRateRule] = Field(default_factory=default_rules, min_length=1)
    quiet_period: Duration = Field(
        timedelta(hours=1), description="An alert starts only above every severity seen this long before.")

    @model_validator(mode="after")
    def _unique(self) -> AlertingPolicy:
        names = [r.name for r in self.rules]
        if len(set(names)) != len(names):
            raise ValueError(f"duplicate rule names: {names}")
        if self.quiet_period < timedelta(0) or self.quiet_period % PERIOD:
            raise ValueError("quiet_period must be a multiple of 5 minutes")
        return self

    def windows(self) -> list[timedelta]:
        return sorted({w for r in self.rules for w in (r.long_window, r.short_window)})


class SloSpec(_Frozen):
    """One SLO (``include/slos/<service>.yaml``); see include/slos/README.md."""

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,98}$")
    service: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
    env: str = "prod"
    team: str | None = Field(None, description="Default: the matched series' team tag.")
    description: str = ""
    indicator: Indicator
    selector: Selector
    objective: float = Field(gt=0, lt=1, description="Target share of good events, e.g. 0.999.")
    window: Duration = Field(timedelta(days=28), description="Rolling window of the error budget.")
    alerting: AlertingPolicy = Field(default_factory=AlertingPolicy)

    @field_validator("objective")
    @classmethod
    def _precision(cls, value: float) -> float:
        if round(value, 10) != value:
            raise ValueError("give the objective with at most 10 decimals")
        return value

    @field_validator("window")
    @classmethod
    def _window(cls, value: timedelta) -> timedelta:
        if not timedelta(days=1) <= value <= timedelta(days=90) or value % timedelta(days=1):
            raise ValueError(f"window must be whole days between 1d and 90d, got {duration_label(value)}")
        return value

    @property
    def error_budget(self) -> float:
        return error_budget(self.objective)

    def lookback(self) -> timedelta:
        """How far before a point its evaluation reads: the rolling window or the longest rule window."""
        return max(self.window, *self.alerting.windows())

    def describe_indicator(self) -> str:
        ind = self.indicator
        if isinstance(ind, RatioIndicator):
            what = f"{ind.total} not counted in {ind.bad}" if ind.bad else f"{ind.good} of {ind.total}"
            return f"share of requests that succeed ({what})"
        if isinstance(ind, LatencyIndicator):
            return f"share of 5-minute periods with average {ind.metric} under {ind.threshold_seconds:g} s"
        return f"share of 5-minute periods with {ind.metric} <= {ind.max_unhealthy:g}"


@dataclass
class SloSet:
    """The loaded SLOs (by id) plus the files that failed to load."""

    slos: dict[str, SloSpec] = field(default_factory=dict)
    errors: list[ConfigError] = field(default_factory=list)
    sources: dict[str, Path] = field(default_factory=dict)

    def __iter__(self) -> Iterator[SloSpec]:
        return iter(self.slos.values())

    def __len__(self) -> int:
        return len(self.slos)

    def fingerprint(self) -> str:
        """Changes whenever any definition changes (dashboards are re-published then)."""
        canonical = json.dumps([s.model_dump(mode="json") for s in self.slos.values()], sort_keys=True)
        return hashlib.sha1(canonical.encode()).hexdigest()[:16]

    def services(self) -> list[str]:
        return sorted({s.service for s in self.slos.values()})


def _error_location(exc: ValidationError, prefix: str) -> tuple[str, str]:
    err = exc.errors()[0]
    loc = [str(p) for p in err["loc"]]
    # A discriminated union puts the chosen variant in the path ("indicator.ratio.bad"): drop it.
    if len(loc) >= 2 and loc[0] == "indicator" and loc[1] in {"ratio", "latency", "health"}:
        loc = [loc[0], *loc[2:]]
    where = ".".join(loc) or "(root)"
    return (f"{prefix}.{where}" if prefix else where), err["msg"]


def load_file(path: Path) -> list[SloSpec]:
    """One YAML file: a single SLO mapping, or several under ``slos:``. Errors name file and field."""
    raw, lines = read_yaml(path)
    if not isinstance(raw, dict):
        raise ConfigError(path, "", "expected a mapping (one SLO) or 'slos:' with a list of SLOs")
    if "slos" in raw:
        if set(raw) != {"slos"} or not isinstance(raw["slos"], list) or not raw["slos"]:
            raise ConfigError(path, "slos", "expected 'slos:' alone, holding a non-empty list of SLOs")
        items = [(f"slos.{i}", item) for i, item in enumerate(raw["slos"])]
    else:
        items = [("", raw)]
    specs = []
    issues = []
    for prefix, item in items:
        try:
            specs.append(SloSpec.model_validate(item))
        except ValidationError as exc:
            loc = tuple(int(p) if p.isdigit() else p for p in prefix.split(".")) if prefix else ()
            issues += issues_of(Path(path), exc, raw, lines, prefix=loc)
    if issues:  # every problem of every SLO in the file, with line and field
        raise ConfigErrors(path, issues)
    return specs


def load_slos(directory: Path) -> SloSet:
    """Every ``*.yaml`` in ``directory``; a malformed file lands in ``.errors`` and the others load."""
    result = SloSet()
    for path in sorted(Path(directory).glob("*.yaml")):
        try:
            specs = load_file(path)
            for i, spec in enumerate(specs):
                if spec.id in result.slos:
                    where = f"slos.{i}.id" if len(specs) > 1 else "id"
                    raise ConfigError(path, where, f"{spec.id!r} is already defined in {result.sources[spec.id]}")
        except ConfigError as exc:
            result.errors.append(exc)
            continue
        for spec in specs:
            result.slos[spec.id] = spec
            result.sources[spec.id] = path
    return result


# --- arithmetic --------------------------------------------------------------------------------
def error_budget(objective: float) -> float:
    """Allowed bad fraction. Rounded so that 1 - 0.999 is 0.001, not 0.0010000000000000009."""
    return round(1.0 - objective, 10)


def burn_rate(good: Any, total: Any, objective: float) -> Any:
    """Observed error rate / error budget; NaN where there were no events. Scalars or arrays."""
    import numpy as np

    good, total = np.asarray(good, dtype=float), np.asarray(total, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        rate = np.where(total > 0, (total - good) / (total * error_budget(objective)), np.nan)
    return rate if rate.ndim else float(rate)


def budget_remaining(good: Any, total: Any, objective: float) -> Any:
    """Share of the window's error budget not yet spent: ``1 - burn rate over the window`` (< 0: overspent)."""
    return 1.0 - burn_rate(good, total, objective)


def sli(good: Any, total: Any) -> Any:
    import numpy as np

    good, total = np.asarray(good, dtype=float), np.asarray(total, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.where(total > 0, good / total, np.nan)
    return out if out.ndim else float(out)


# --- from metrics to events --------------------------------------------------------------------
def _dims(text: str) -> dict[str, str]:
    return dict(part.split("=", 1) for part in str(text).split(",") if "=" in part)


def select_series(frame: pd.DataFrame, slo: SloSpec) -> pd.DataFrame:
    """The metrics-store rows (any columns of the store) that feed ``slo``'s indicator."""
    if frame.empty:
        return frame
    wanted = frame[(frame["namespace"] == slo.selector.namespace)
                   & frame["metric"].isin(list(slo.indicator.metrics))]
    if wanted.empty:
        return wanted
    keys = wanted[["dimensions", *TAG_COLUMNS]].astype(object).where(wanted[["dimensions", *TAG_COLUMNS]].notna(), "")
    combos = keys.drop_duplicates()
    ok = {tuple(row): slo.selector.matches(slo.selector.namespace, dict(zip(TAG_COLUMNS, row[1:], strict=True)),
                                           _dims(row[0]))
          for row in combos.itertuples(index=False, name=None)}
    mask = [ok[tuple(row)] for row in keys.itertuples(index=False, name=None)]
    return wanted[mask]


def matched_series(frame: pd.DataFrame, slo: SloSpec) -> list[dict[str, Any]]:
    """Distinct series (metric, dimensions, team) an SLO reads: for dashboards and the team tag."""
    rows = select_series(frame, slo)
    if rows.empty:
        return []
    distinct = rows[["metric", "dimensions", "team"]].astype(object).fillna("").drop_duplicates()
    return [{"metric": m, "dimensions": _dims(d), "team": t}
            for m, d, t in sorted(distinct.itertuples(index=False, name=None))]


def period_events(frame: pd.DataFrame, slo: SloSpec) -> pd.DataFrame:
    """Good and total events per 5-minute period (index: period start, UTC), from metrics-store rows.

    * ratio: ``total`` = Sum of the total metric over the matched series; ``bad`` (or ``good``) the
      same for its metric, 0 when absent — CloudWatch publishes no 5xx datapoint for a period
      without errors — and clipped to ``[0, total]``. Periods without a total have no events.
    * latency / health: one event per period with data; good when the worst matched series meets
      the threshold (the largest average latency, the most unhealthy hosts).
    """
    import numpy as np
    import pandas as pd

    rows = select_series(frame, slo)
    empty = pd.DataFrame({"good": pd.Series(dtype="int64"), "total": pd.Series(dtype="int64")},
                         index=pd.DatetimeIndex([], tz="UTC", name="timestamp"))
    if rows.empty:
        return empty
    rows = rows[rows["value"].notna()]
    ind = slo.indicator
    if isinstance(ind, RatioIndicator):
        sums = rows.groupby(["timestamp", "metric"])["value"].sum().unstack("metric")
        if ind.total not in sums:
            return empty
        total = sums[ind.total].dropna()
        other = sums.get(ind.bad or ind.good or "", pd.Series(dtype=float)).reindex(total.index).fillna(0.0)
        total_n = np.rint(total.to_numpy()).astype("int64")
        other_n = np.clip(np.rint(other.to_numpy()).astype("int64"), 0, total_n)
        good_n = total_n - other_n if ind.bad else other_n
        out = pd.DataFrame({"good": good_n, "total": total_n}, index=total.index)
    else:
        worst = rows.groupby("timestamp")["value"].max()
        if isinstance(ind, LatencyIndicator):
            good = worst < ind.threshold_seconds
        else:
            good = worst <= ind.max_unhealthy
        out = pd.DataFrame({"good": good.astype("int64"), "total": np.ones(len(worst), dtype="int64")},
                           index=worst.index)
    out.index = pd.DatetimeIndex(out.index, name="timestamp").tz_convert("UTC")
    return out.sort_index()


# --- evaluation at points ----------------------------------------------------------------------
def evaluation_points(start: Any, end: Any, period: timedelta = PERIOD) -> pd.DatetimeIndex:
    """The points of the data intervals in ``[start, end)``: every period end ``t`` in ``(start, end]``."""
    import pandas as pd

    step = pd.Timedelta(period)
    first = pd.Timestamp(start).tz_convert("UTC").floor(step) + step
    last = pd.Timestamp(end).tz_convert("UTC").floor(step)
    if last < first:
        return pd.DatetimeIndex([], tz="UTC", name="evaluated_at")
    return pd.date_range(first, last, freq=step, name="evaluated_at")


@dataclass(frozen=True)
class WindowTotals:
    good: Any  # np.ndarray[int64], one per point
    total: Any
    periods_with_data: Any
    periods: int  # periods in the window


def window_totals(events: pd.DataFrame, points: pd.DatetimeIndex, window: timedelta,
                  period: timedelta = PERIOD) -> WindowTotals:
    """Sums of good and total events over ``[t - window, t)`` for every point ``t`` (integer prefix sums)."""
    import numpy as np
    import pandas as pd

    step = pd.Timedelta(period)
    n_window = int(window / period)
    if len(points) == 0:
        zero = np.zeros(0, dtype="int64")
        return WindowTotals(zero, zero, zero, n_window)
    origin = points.min() - pd.Timedelta(window)
    grid = pd.date_range(origin, points.max() - step, freq=step)
    aligned = events.reindex(grid)
    has = aligned["total"].notna().to_numpy().astype("int64")
    good = aligned["good"].fillna(0).to_numpy().astype("int64")
    total = aligned["total"].fillna(0).to_numpy().astype("int64")

    def prefix(x: Any) -> Any:
        return np.concatenate([[0], np.cumsum(x, dtype="int64")])

    pg, pt, ph = prefix(good), prefix(total), prefix(has)
    hi = ((points - origin) // step).to_numpy().astype("int64")
    lo = np.maximum(hi - n_window, 0)
    return WindowTotals(pg[hi] - pg[lo], pt[hi] - pt[lo], ph[hi] - ph[lo], n_window)


def evaluate(events: pd.DataFrame, slo: SloSpec, points: pd.DatetimeIndex,
             period: timedelta = PERIOD) -> pd.DataFrame:
    """One row per point: the rolling-window SLI and budget, the burn rate per window, the firing
    rules and the severity. Columns: ``evaluated_at, good, total, sli, budget_remaining, coverage,
    burn_<window>..., firing, severity``."""
    import numpy as np
    import pandas as pd

    rolling = window_totals(events, points, slo.window, period)
    out = pd.DataFrame({"evaluated_at": points, "good": rolling.good, "total": rolling.total})
    out["sli"] = sli(rolling.good, rolling.total)
    out["budget_remaining"] = budget_remaining(rolling.good, rolling.total, slo.objective)
    out["coverage"] = rolling.periods_with_data / rolling.periods
    burns, coverage = {}, {}
    for window in slo.alerting.windows():
        totals = window_totals(events, points, window, period)
        label = duration_label(window)
        burns[window] = burn_rate(totals.good, totals.total, slo.objective)
        coverage[window] = totals.periods_with_data / totals.periods
        out[f"burn_{label}"] = burns[window]
    firing: list[list[str]] = [[] for _ in range(len(points))]
    rank = np.zeros(len(points), dtype="int64")
    for rule in slo.alerting.rules:
        fires = rule_fires(burns[rule.long_window], burns[rule.short_window], rule.burn_rate,
                           coverage[rule.long_window])
        for i in np.flatnonzero(fires):
            firing[i].append(rule.name)
            rank[i] = max(rank[i], SEVERITY_RANK[rule.severity])
    names = {v: k for k, v in SEVERITY_RANK.items()}
    out["firing"] = firing
    out["severity"] = [names[int(r)] for r in rank]
    return out


def rule_fires(long_burn: Any, short_burn: Any, threshold: float, long_coverage: Any = 1.0) -> Any:
    """Multi-window AND: both windows at or above the threshold (NaN = no data = not burning)."""
    import numpy as np

    long_burn, short_burn = np.asarray(long_burn, dtype=float), np.asarray(short_burn, dtype=float)
    with np.errstate(invalid="ignore"):
        return ((np.nan_to_num(long_burn, nan=-1.0) >= threshold)
                & (np.nan_to_num(short_burn, nan=-1.0) >= threshold)
                & (np.asarray(long_coverage, dtype=float) >= MIN_LONG_WINDOW_COVERAGE))


def alert_onsets(severity: pd.Series, quiet_period: timedelta, period: timedelta = PERIOD) -> pd.Series:
    """Per point (consecutive, ``period`` apart): the severity of an alert that starts there, else None.

    An alert starts when the severity is higher than every severity of the ``quiet_period``
    before it. Points before the first one count as ``none``: evaluate from ``quiet_period``
    earlier than the range whose alerts you want."""
    import pandas as pd

    rank = severity.map(SEVERITY_RANK).astype("int64")
    k = int(quiet_period / period)
    before = rank.shift(1).rolling(k, min_periods=1).max().fillna(0) if k else pd.Series(0, index=rank.index)
    names = {v: k for k, v in SEVERITY_RANK.items()}
    return pd.Series([names[int(r)] if r > b else None for r, b in zip(rank, before, strict=True)],
                     index=severity.index, dtype=object)


def fingerprint(slo_id: str, severity: str, onset: Any) -> str:
    """Stable per alert start: re-sending it (a retry, a re-run) lets the intake de-duplicate."""
    import pandas as pd

    stamp = pd.Timestamp(onset).tz_convert("UTC").isoformat()
    return hashlib.sha1(f"slo_burn|{slo_id}|{severity}|{stamp}".encode()).hexdigest()[:16]
