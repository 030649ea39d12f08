"""Which range a metrics_extract run pulls (pure planning logic)."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest

from aiops.core.settings import Settings
from aiops.metrics.pipeline import plan_range, split_days

END = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
START = END - timedelta(minutes=15)
S = Settings(metrics_history_days=14, metrics_settle_minutes=10)


def test_empty_store_pulls_the_history_window_in_one_run():
    start, end, reason = plan_range(START, END, {}, None, S)
    assert (start, end) == (END - timedelta(days=14), END)
    assert "first run" in reason


def test_steady_state_pulls_the_interval_plus_the_settle_overlap():
    start, end, _ = plan_range(START, END, {}, START, S)
    assert (start, end) == (START - timedelta(minutes=10), END)


def test_gap_after_downtime_resumes_from_the_watermark():
    watermark = END - timedelta(hours=5)
    start, _, reason = plan_range(START, END, {}, watermark, S)
    assert start == watermark
    assert "gap" in reason


def test_gap_longer_than_history_is_capped():
    start, _, _ = plan_range(START, END, {}, END - timedelta(days=40), S)
    assert start == END - timedelta(days=14)


def test_backfill_days_from_conf():
    start, end, _ = plan_range(START, END, {"backfill_days": 3}, START, S)
    assert (start, end) == (END - timedelta(days=3), END)


def test_explicit_range_from_conf_is_aligned_to_the_period():
    start, end, _ = plan_range(START, END, {"start": "2026-11-01T00:02:00Z", "end": "2026-11-02T00:00:00Z"},
                               START, S)
    assert start == datetime(2026, 11, 1, 0, 0, tzinfo=UTC)
    assert end == datetime(2026, 11, 2, tzinfo=UTC)


@pytest.mark.parametrize(
    ("conf", "message"),
    [
        pytest.param({"start": "2026-11-01T00:00:00Z"}, "both 'start' and 'end'", id="start_without_end"),
        pytest.param({"backfill_days": 90}, "backfill_days", id="backfill_beyond_retention"),
        pytest.param({"start": "2026-11-02T00:00:00Z", "end": "2026-11-01T00:00:00Z"}, "empty", id="reversed"),
    ],
)
def test_bad_conf_is_rejected_with_a_clear_message(conf, message):
    with pytest.raises(ValueError, match=message):
        plan_range(START, END, conf, None, S)


def test_split_days_cuts_at_utc_midnight_and_covers_the_range():
    chunks = split_days(datetime(2026, 11, 18, 22, 0, tzinfo=UTC), datetime(2026, 11, 20, 1, 0, tzinfo=UTC))
    assert [(c.start.hour, c.end.day, c.end.hour) for c in chunks] == [(22, 19, 0), (0, 20, 0), (0, 20, 1)]
    assert all(a.end == b.start for a, b in itertools.pairwise(chunks))


def test_fourteen_day_history_is_fifteen_tasks_not_thousands():
    start, end, _ = plan_range(START, END, {}, None, S)
    assert len(split_days(start, end)) == 15


@pytest.mark.parametrize(
    ("window_s", "expected"),
    [
        pytest.param(900, 500, id="15_minutes_full_batches"),
        pytest.param(86_400, 350, id="one_day_fits_100800_points"),
        pytest.param(14 * 86_400, 25, id="fourteen_days"),
    ],
)
def test_batch_size_keeps_one_response_per_batch(window_s, expected):
    from aiops.metrics.collect import queries_per_call

    assert queries_per_call(window_s, 300) == expected


@pytest.mark.parametrize(
    ("n", "window_s", "expected"),
    [
        pytest.param(1000, 900, 2, id="query_limit_binds"),
        pytest.param(1000, 86_400, 3, id="datapoint_limit_binds"),
    ],
)
def test_minimum_calls(n, window_s, expected):
    from aiops.metrics.collect import minimum_calls

    assert minimum_calls(n, window_s, 300) == expected
