"""Score one series from a CSV offline, with the same detector and configuration as the DAG.

Input ``timestamp,value``; output ``timestamp,value,anomaly_score,is_anomaly`` followed by the other
columns of :data:`~aiops.anomaly.SCORE_COLUMNS` (``forecast,lower,upper,reason``). This is the
engine of ``aiops anomaly score``; reading and writing the two files is its only I/O.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from aiops.anomaly import SCORE_COLUMNS
from aiops.anomaly.detector import Detector
from aiops.anomaly.spec import DEFAULT_FAMILY, load_specs
from aiops.core.errors import ConfigError
from aiops.core.settings import get_settings

OUTPUT_COLUMNS = ["timestamp", "value", "anomaly_score", "is_anomaly", "forecast", "lower", "upper", "reason"]


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
    df = pd.read_csv(input_path)
    missing = {"timestamp", "value"} - set(df.columns)
    if missing:
        raise ConfigError(
            input_path, ",".join(sorted(missing)), "missing column(s); expected timestamp,value"
        )
    series = pd.Series(
        pd.to_numeric(df["value"], errors="coerce").to_numpy(dtype=float),
        index=pd.to_datetime(df["timestamp"], utc=True),
    )
    scored = Detector(specs[name]).score_series(series)
    assert list(scored.columns) == SCORE_COLUMNS
    out = scored[OUTPUT_COLUMNS].copy()
    out["timestamp"] = pd.DatetimeIndex(out["timestamp"]).strftime("%Y-%m-%dT%H:%M:%SZ")
    out["is_anomaly"] = out["is_anomaly"].astype(int)
    Path(output_path).parent.mkdir(parents=True, exist_ok=True)
    out.to_csv(output_path, index=False)
    return scored
