"""Anomaly detection on CloudWatch metrics: a causal, Prophet-backed streaming detector.

The contract every caller (the anomaly_detection DAG, `aiops anomaly score`, the NAB benchmark,
tests) relies on:

* :class:`~aiops.anomaly.detector.Detector` built from a
  :class:`~aiops.anomaly.spec.ModelSpec` (YAML under ``include/models/``).
* ``Detector.fit(history) -> FittedModel``: fit on a history series (UTC-indexed ``pd.Series``);
  ``FittedModel.to_json()/from_json()`` round-trip (Prophet's JSON serialisation inside).
* ``Detector.new_state() -> DetectorState``; ``DetectorState.to_json()/from_json()``.
* ``Detector.step(points, model, state) -> (scored, state)``: score new points in time order using
  only the model and the state (strictly causal); ``scored`` has the columns of
  :data:`SCORE_COLUMNS`. Running ``step`` over a series in one call or in any split into
  consecutive chunks gives identical rows.
* ``Detector.score_series(series) -> pd.DataFrame``: the full causal loop on one series (refit on
  the spec's schedule using only data before each refit time); what the CLI and the benchmark run.
"""

from __future__ import annotations

SCORE_COLUMNS = [
    "timestamp",  # UTC
    "value",
    "anomaly_score",  # [0, 1]
    "is_anomaly",  # bool: the detector's own decision at its threshold
    "forecast",  # Prophet's expected value (NaN during cold start)
    "lower",  # forecast band
    "upper",
    "reason",  # short human text, e.g. "CPU 94% vs expected 31-48%"; "insufficient history" in cold start
]
