"""Great Expectations validation of metric frames: bad series are named and quarantined."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest

from aiops.metrics.model import STORE_COLUMNS, load_catalog
from aiops.metrics.quality import validate_metrics

START = datetime(2026, 11, 20, 11, tzinfo=UTC)
END = START + timedelta(hours=1)


def frame(rows):
    records = []
    for sid_suffix, metric, minutes, value in rows:
        records.append({
            "series_id": f"AWS/EC2|{metric}|InstanceId={sid_suffix}|Average", "timestamp": START + timedelta(minutes=minutes),
            "value": value, "namespace": "AWS/EC2", "metric": metric, "stat": "Average",
            "dimensions": f"InstanceId={sid_suffix}", "resource_id": sid_suffix, "service": "s", "env": "prod",
            "team": "t"})
    return pd.DataFrame(records).astype(STORE_COLUMNS)


def run(df, **kw):
    return validate_metrics(df, load_catalog(), window_start=START, window_end=END,
                            freshness=timedelta(minutes=30), **kw)


GOOD = [("i-ok", "CPUUtilization", m, 40.0) for m in range(0, 60, 5)]


@pytest.mark.parametrize(
    ("bad_rows", "expectation"),
    [
        pytest.param([("i-bad", "CPUUtilization", 0, 140.0)], "AWS/EC2/CPUUtilization", id="cpu_above_100"),
        pytest.param([("i-bad", "NetworkIn", 0, -5.0)], "AWS/EC2/NetworkIn", id="negative_bytes"),
        pytest.param([("i-bad", "CPUUtilization", 5, 1.0), ("i-bad", "CPUUtilization", 5, 2.0)],
                     "compound_columns_to_be_unique", id="duplicate_timestamp"),
        pytest.param([("i-bad", "CPUUtilization", 5, float("nan"))], "not_be_null(value)", id="nan_value"),
        pytest.param([("i-bad", "CPUUtilization", 75, 3.0)], "between(timestamp)", id="outside_window"),
    ],
)
def test_bad_series_is_quarantined_with_the_failed_expectation_named(bad_rows, expectation):
    good, bad, report = run(frame(GOOD + bad_rows))
    assert report.quarantined == {f"AWS/EC2|{bad_rows[0][1]}|InstanceId=i-bad|Average"}
    assert any(expectation in i.expectation for i in report.issues if i.severity == "quarantine")
    assert set(good["resource_id"]) == {"i-ok"}
    assert len(good) == len(GOOD)
    assert set(bad["resource_id"]) == {"i-bad"}


def test_clean_frame_passes_untouched():
    good, bad, report = run(frame(GOOD))
    assert report.issues == []
    assert len(good) == len(GOOD)
    assert bad.empty


def test_stale_and_silent_series_are_warnings_not_quarantine():
    stale = [("i-stale", "CPUUtilization", 0, 5.0)]
    good, _, report = run(frame(GOOD + stale), expected_series=["AWS/EC2|CPUUtilization|InstanceId=i-gone|Average"])
    assert report.quarantined == set()
    assert {i.series_id.split("=")[1].split("|")[0] for i in report.warnings} == {"i-stale", "i-gone"}
    assert "i-stale" in set(good["resource_id"])


def test_frame_missing_a_column_is_rejected():
    from aiops.core.errors import ValidationFailure

    with pytest.raises(ValidationFailure, match="resource_id"):
        run(frame(GOOD).drop(columns=["resource_id"]))
