"""Score one series from a CSV offline, with the same detector and configuration as the DAG.

Input ``timestamp,value``; output ``timestamp,value,anomaly_score,is_anomaly`` followed by the other
columns of :data:`~aiops.anomaly.SCORE_COLUMNS` (``forecast,lower,upper,reason``). This is the
engine of ``aiops anomaly score``; reading and writing the two files is its only I/O.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from aiops.anomaly import SCORE_COLUMNS
from aiops.anomaly.detector import Detector
from aiops.anomaly.spec import DEFAULT_FAMILY, load_specs
from aiops.core.errors import ConfigError
from aiops.core.settings import get_settings

OUTPUT_COLUMNS = ["timestamp", "value", "anomaly_score", "is_anomaly", "forecast", "lower", "upper", "reason"]


@dataclass
class CsvReport:
    """What reading the input CSV did to its rows: every dropped or coerced row by file line."""

    rows: int = 0
    bad_timestamp: list[int] = field(default_factory=list)  # dropped
    non_numeric: list[int] = field(default_factory=list)  # value coerced to missing (a gap)
    missing_value: list[int] = field(default_factory=list)  # empty value (a gap)
    duplicate_timestamp: list[int] = field(default_factory=list)  # dropped; the last row of a timestamp kept

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def lines(self) -> list[str]:
        def shown(lines: list[int]) -> str:
            head = ", ".join(str(n) for n in lines[:10])
            return head + (f" and {len(lines) - 10} more" if len(lines) > 10 else "")
        out = []
        if self.bad_timestamp:
            out.append(f"dropped {len(self.bad_timestamp)} row(s) with a bad timestamp: line(s) "
                       f"{shown(self.bad_timestamp)}")
        if self.non_numeric:
            out.append(f"coerced {len(self.non_numeric)} non-numeric value(s) to missing: line(s) "
                       f"{shown(self.non_numeric)}")
        if self.missing_value:
            out.append(f"{len(self.missing_value)} empty value(s) read as missing: line(s) {shown(self.missing_value)}")
        if self.duplicate_timestamp:
            out.append(f"dropped {len(self.duplicate_timestamp)} row(s) repeating an earlier timestamp (the last "
                       f"one is kept): line(s) {shown(self.duplicate_timestamp)}")
        return out


def read_series_csv(path: Path) -> tuple[pd.Series, CsvReport]:
    """``timestamp,value`` -> a float series indexed by UTC time, sorted; a :class:`CsvReport` of every
    row dropped or coerced (by file line, the header being line 1). An unreadable file, missing columns
    or no usable row -> :class:`ConfigError` naming the file (and the line where pandas says)."""
    report = CsvReport()
    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False, skipinitialspace=True)
    except FileNotFoundError:
        raise ConfigError(path, "", "file not found") from None
    except pd.errors.EmptyDataError:
        raise ConfigError(path, "", "empty file; expected a header timestamp,value and rows") from None
    except pd.errors.ParserError as exc:  # e.g. "Expected 2 fields in line 7, saw 3"
        raise ConfigError(path, "", f"not a valid CSV: {str(exc).strip()}") from None
    missing = {"timestamp", "value"} - set(df.columns)
    if missing:
        raise ConfigError(path, ",".join(sorted(missing)), "missing column(s); expected timestamp,value")
    report.rows = len(df)
    line = pd.Series(range(2, len(df) + 2), index=df.index)
    ts = pd.to_datetime(df["timestamp"].str.strip(), utc=True, errors="coerce", format="mixed")
    raw = df["value"].str.strip()
    values = pd.to_numeric(raw, errors="coerce")
    report.bad_timestamp = line[ts.isna()].tolist()
    ok = ts.notna()
    report.missing_value = line[ok & (raw == "")].tolist()
    report.non_numeric = line[ok & (raw != "") & values.isna()].tolist()
    frame = pd.DataFrame({"ts": ts, "value": values.astype(float), "line": line})[ok]
    dup = frame.duplicated("ts", keep="last")
    report.duplicate_timestamp = sorted(frame.loc[dup, "line"].tolist())
    frame = frame[~dup].sort_values("ts", kind="stable")
    if frame.empty:
        raise ConfigError(path, "timestamp", f"no row with a valid timestamp ({report.rows} row(s) read)")
    return pd.Series(frame["value"].to_numpy(dtype=float), index=pd.DatetimeIndex(frame["ts"])), report


def score_csv(input_path: Path, output_path: Path, spec_name: str | None = None) -> pd.DataFrame:
    """Score ``input_path`` with the family ``spec_name`` (default: ``default``) from
    ``include/models/``, write ``output_path`` and return the scored frame."""
    models_dir = get_settings().include_dir / "models"
    specs = load_specs(models_dir)
    name = spec_name or DEFAULT_FAMILY
    if name not in specs:
        known = ", ".join(sorted(specs.specs)) or "none"
        bad = "; ".join(str(e) for e in specs.errors)
        raise ConfigError(
            models_dir / f"{name}.yaml",
            "",
            f"no such model family (loaded: {known}){'; ' + bad if bad else ''}",
        )
    series, report = read_series_csv(Path(input_path))
    scored = Detector(specs[name]).score_series(series)
    scored.attrs["input_report"] = report.to_dict()
    assert list(scored.columns) == SCORE_COLUMNS
    out = scored[OUTPUT_COLUMNS].copy()
    out["timestamp"] = pd.DatetimeIndex(out["timestamp"]).strftime("%Y-%m-%dT%H:%M:%SZ")
    out["is_anomaly"] = out["is_anomaly"].astype(int)
    Path(output_path).parent.mkdir(parents=True, exist_ok=True)
    out.to_csv(output_path, index=False)
    return scored
