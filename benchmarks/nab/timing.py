"""Cost of the detector vs bare Prophet on a 14-day, 5-minute series (4,032 points), one core.

Reproduce (from the repo root, on an otherwise idle machine)::

    .venv/bin/python benchmarks/nab/timing.py

Bare Prophet uses the spec's Prophet settings (seasonalities, changepoint range), so the ratio is
the cost of the pipeline around the forecast: serialising the model, the in-sample sanity check, the
scoring of the points and the reason texts.

* ``daily run``: what the platform does per series per day: fit on the trailing 14 days, then score
  the day's 288 points (``Detector.fit`` + ``Detector.step`` with a warm state) vs bare Prophet
  (``Prophet.fit`` + ``predict`` of the 288 points with ``uncertainty_samples=0``).
* ``backfill``: ``Detector.score_series`` over the 14 days (refit at every UTC midnight on the data
  before it) vs bare Prophet doing the same refits and predictions.

Prints seconds per series and the overhead ratio (pipeline / bare), and the fleet estimate for
1,000 series on 2 cores.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "src"))

from aiops.anomaly.detector import Detector  # noqa: E402
from aiops.anomaly.spec import load_specs  # noqa: E402


def series(days: int = 15, seed: int = 0) -> pd.Series:
    idx = pd.date_range("2026-03-01", periods=days * 288, freq="5min", tz="UTC")
    rng = np.random.default_rng(seed)
    h = (idx.hour + idx.minute / 60).to_numpy()
    y = 40 + 10 * np.sin(2 * np.pi * h / 24) + rng.normal(0, 2, len(idx))
    return pd.Series(y, index=idx)


SPEC = load_specs(REPO / "include" / "models").for_series("AWS/EC2", "CPUUtilization")


def bare_fit_predict(history: pd.Series, future: pd.DatetimeIndex, changepoint_range: float = 0.8) -> None:
    """Plain Prophet with the spec's settings (so the ratio measures the pipeline around Prophet)."""
    from prophet import Prophet

    m = Prophet(
        yearly_seasonality=False,
        weekly_seasonality=False,
        daily_seasonality=False,
        uncertainty_samples=0,
        changepoint_range=changepoint_range,
    )
    # the same seasonalities the detector fits (span counted as n x step, as in Detector.fit)
    span = (history.index[-1] - history.index[0] + pd.Timedelta(minutes=5)) / pd.Timedelta(days=1)
    for seas in SPEC.prophet.seasonalities:
        if span >= seas.min_history_days:
            m.add_seasonality(name=seas.name, period=seas.period_days, fourier_order=seas.fourier_order)
    m.fit(pd.DataFrame({"ds": history.index.tz_localize(None), "y": history.to_numpy()}))
    m.predict(pd.DataFrame({"ds": future.tz_localize(None)}))


def paired(a, b, repeat: int) -> tuple[float, float]:  # type: ignore[no-untyped-def]
    """Median seconds of ``a`` and ``b``, run alternately (a shared machine's load hits both alike)."""
    ta, tb = [], []
    for _ in range(repeat):
        t0 = time.perf_counter()
        a()
        t1 = time.perf_counter()
        b()
        ta.append(t1 - t0)
        tb.append(time.perf_counter() - t1)
    return statistics.median(ta), statistics.median(tb)


def main() -> int:
    import logging

    logging.getLogger("cmdstanpy").disabled = True
    spec = SPEC
    det = Detector(spec)
    cpr = spec.prophet.changepoint_range
    s = series()
    hist, day = s.iloc[: 14 * 288], s.iloc[14 * 288 :]
    warm_model = det.fit(hist.iloc[:-288])
    _, warm_state = det.step(hist, warm_model, det.new_state())

    def pipeline_daily() -> None:
        model = det.fit(hist, fitted_at=day.index[0])
        model_json = model.to_json()  # what the DAG persists
        det.step(day, model, warm_state)
        assert model_json

    def bare_daily() -> None:
        bare_fit_predict(hist, pd.DatetimeIndex(day.index), cpr)

    two_weeks = s.iloc[: 14 * 288]
    bounds = det.refit_boundaries(two_weeks)

    def pipeline_backfill() -> None:
        det.score_series(two_weeks)

    def bare_backfill() -> None:
        for i, b in enumerate(bounds):
            nxt = bounds[i + 1] if i + 1 < len(bounds) else two_weeks.index[-1] + pd.Timedelta(minutes=5)
            chunk = two_weeks[(two_weeks.index >= b) & (two_weeks.index < nxt)]
            bare_fit_predict(two_weeks[two_weeks.index < b], pd.DatetimeIndex(chunk.index), cpr)

    d_pipe, d_bare = paired(pipeline_daily, bare_daily, 9)
    b_pipe, b_bare = paired(pipeline_backfill, bare_backfill, 3)
    res: dict[str, Any] = {
        "daily_run": {"pipeline_s": d_pipe, "bare_prophet_s": d_bare},
        "backfill_14_days": {"pipeline_s": b_pipe, "bare_prophet_s": b_bare},
    }
    for r in res.values():
        r["overhead_ratio"] = r["pipeline_s"] / r["bare_prophet_s"]
    res["fleet_1000_series_2_cores_daily_run_s"] = 1000 * res["daily_run"]["pipeline_s"] / 2
    res["fleet_1000_series_2_cores_backfill_s"] = 1000 * res["backfill_14_days"]["pipeline_s"] / 2
    print(
        json.dumps(
            {
                k: (round(v, 3) if isinstance(v, float) else {kk: round(vv, 3) for kk, vv in v.items()})
                for k, v in res.items()
            },
            indent=2,
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
