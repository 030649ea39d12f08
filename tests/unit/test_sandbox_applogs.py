"""The simulated application log lines: structured JSON, daily shape, injected bursts, and
PutLogEvents batching."""

from __future__ import annotations

import itertools
import json
from datetime import UTC, datetime, timedelta

import pytest

from aiops_sandbox.applogs import (
    MAX_BATCH_SPAN_MS,
    PUT_LOG_EVENTS_OVERHEAD,
    LogBurst,
    build_app_log_events,
    chunk_log_events,
)

ANCHOR = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
ANCHOR_MS = int(ANCHOR.timestamp() * 1000)
WINDOW_START_MS = ANCHOR_MS - 48 * 3_600_000
BURST = LogBurst(
    start=ANCHOR - timedelta(hours=5),
    end=ANCHOR - timedelta(hours=4, minutes=30),
    level="ERROR",
    messages=[
        "upstream payment-gateway timeout after 3000ms",
        "HTTP 503 returned to client",
        "FATAL: remaining connection slots are reserved",
    ],
    rate_per_min=20.0,
    tag="payment-gateway-outage",
)


def build(**overrides):
    kwargs = {"service": "checkout", "env": "prod", "anchor": ANCHOR, "seed": 7}
    kwargs.update(overrides)
    return build_app_log_events(**kwargs)


@pytest.fixture(scope="module")
def events() -> list[dict]:
    return build(bursts=[BURST])


@pytest.fixture(scope="module")
def background() -> list[dict]:
    return build()


def lines(events: list[dict]) -> list[dict]:
    return [json.loads(e["message"]) for e in events]


def burst_ms(burst: LogBurst) -> tuple[int, int]:
    return int(burst.start.timestamp() * 1000), int(burst.end.timestamp() * 1000)


# ----------------------------------------------------------------------------- generation


def test_same_arguments_give_identical_events(events):
    assert build(bursts=[BURST]) == events


def test_different_seed_gives_different_events(background):
    assert build(seed=8) != background


def test_events_are_sorted_by_timestamp(events):
    stamps = [e["timestamp"] for e in events]
    assert stamps == sorted(stamps)


def test_events_lie_inside_the_window(events):
    assert all(WINDOW_START_MS <= e["timestamp"] < ANCHOR_MS for e in events)


def test_events_have_only_timestamp_and_message(events):
    assert all(set(e) == {"timestamp", "message"} and isinstance(e["timestamp"], int) for e in events)


def test_messages_are_structured_json_lines(events):
    for line in lines(events):
        assert {"ts", "level", "service", "env", "msg"} <= set(line)
        assert (line["service"], line["env"]) == ("checkout", "prod")
        assert line["level"] in ("INFO", "WARN", "ERROR")


def test_json_ts_matches_the_event_timestamp(events):
    for event, line in zip(events, lines(events), strict=True):
        parsed = datetime.fromisoformat(line["ts"].replace("Z", "+00:00"))
        assert int(parsed.timestamp() * 1000) == event["timestamp"]


def test_access_lines_carry_http_fields(background):
    access = [line for line in lines(background) if "status" in line and "method" in line]
    assert len(access) > len(background) / 2
    assert all(isinstance(line["latency_ms"], int) and len(line["trace_id"]) == 32 for line in access)


@pytest.mark.parametrize(
    "bursts",
    [
        pytest.param([], id="background-only"),
        pytest.param([BURST], id="one-burst"),
        pytest.param(
            [
                LogBurst(
                    ANCHOR - timedelta(hours=10), ANCHOR - timedelta(hours=8), "ERROR", ["boom"], 60.0, "huge"
                )
            ],
            id="burst-over-budget",
        ),
    ],
)
def test_total_stays_under_3000_events_for_48_hours(bursts):
    assert len(build(bursts=bursts)) <= 3000


def test_background_has_occasional_warnings(background):
    levels = [line["level"] for line in lines(background)]
    assert 0.01 < levels.count("WARN") / len(levels) < 0.10


def test_background_errors_are_rare_and_isolated(background):
    errors = [
        e["timestamp"]
        for e, line in zip(background, lines(background), strict=True)
        if line["level"] == "ERROR"
    ]
    assert len(errors) <= 12
    assert all(b - a >= 30 * 60 * 1000 for a, b in itertools.pairwise(errors))


def test_traffic_has_a_daily_shape(background):
    by_hour = [0] * 24
    for event in background:
        by_hour[datetime.fromtimestamp(event["timestamp"] / 1000, tz=UTC).hour] += 1
    assert sum(by_hour[13:18]) > 2 * sum(by_hour[1:6])


# ----------------------------------------------------------------------------- bursts


def added_by_bursts(events: list[dict], background: list[dict]) -> list[dict]:
    base = {(e["timestamp"], e["message"]) for e in background}
    return [e for e in events if (e["timestamp"], e["message"]) not in base]


def test_burst_adds_error_lines_inside_its_window_with_its_messages(events, background):
    added = added_by_bursts(events, background)
    start, end = burst_ms(BURST)
    assert added
    for event in added:
        line = json.loads(event["message"])
        assert start <= event["timestamp"] < end
        assert line["level"] == "ERROR"
        assert line["msg"] in BURST.messages


def test_burst_rate_sets_its_line_count(events, background):
    assert len(events) - len(background) == round(BURST.rate_per_min * 30)


def test_burst_uses_every_message(events):
    start, end = burst_ms(BURST)
    seen = {
        line["msg"] for e, line in zip(events, lines(events), strict=True) if start <= e["timestamp"] < end
    }
    assert set(BURST.messages) <= seen


def test_bursts_do_not_change_the_background(events, background):
    assert len(added_by_bursts(events, background)) == len(events) - len(background)


def test_burst_partly_before_the_window_is_clipped():
    burst = LogBurst(ANCHOR - timedelta(hours=49), ANCHOR - timedelta(hours=47), "ERROR", ["x"], 5.0, "edge")
    added = [e for e in build(bursts=[burst]) if json.loads(e["message"])["msg"] == "x"]
    assert len(added) == 5 * 60
    assert all(WINDOW_START_MS <= e["timestamp"] < WINDOW_START_MS + 3_600_000 for e in added)


def test_burst_entirely_outside_the_window_adds_nothing(background):
    burst = LogBurst(
        ANCHOR + timedelta(hours=1), ANCHOR + timedelta(hours=2), "ERROR", ["late"], 10.0, "future"
    )
    assert build(bursts=[burst]) == background


@pytest.mark.parametrize(
    ("burst", "message"),
    [
        pytest.param(
            LogBurst(ANCHOR - timedelta(hours=1), ANCHOR - timedelta(hours=2), "ERROR", ["x"], 1.0, "b"),
            "ends before",
            id="reversed",
        ),
        pytest.param(
            LogBurst(ANCHOR - timedelta(hours=2), ANCHOR - timedelta(hours=1), "ERROR", [], 1.0, "b"),
            "no messages",
            id="no-messages",
        ),
        pytest.param(
            LogBurst(datetime(2025, 6, 1, 8), datetime(2025, 6, 1, 9), "ERROR", ["x"], 1.0, "b"),
            "timezone-aware",
            id="naive",
        ),
    ],
)
def test_invalid_bursts_are_rejected(burst, message):
    with pytest.raises(ValueError, match=message):
        build(bursts=[burst])


def test_naive_anchor_is_rejected():
    with pytest.raises(ValueError, match="timezone-aware"):
        build(anchor=datetime(2025, 6, 1, 12, 0))


# ----------------------------------------------------------------------------- batching


def event_size(event: dict) -> int:
    return len(event["message"].encode()) + PUT_LOG_EVENTS_OVERHEAD


def test_chunking_keeps_every_event_in_order(events):
    batches = chunk_log_events(events)
    assert [e for batch in batches for e in batch] == events


@pytest.mark.parametrize(
    "max_events", [pytest.param(1, id="one"), pytest.param(250, id="250"), pytest.param(10000, id="api-max")]
)
def test_chunking_respects_the_event_count_limit(events, max_events):
    assert all(len(batch) <= max_events for batch in chunk_log_events(events, max_events=max_events))


@pytest.mark.parametrize("max_bytes", [pytest.param(4_000, id="4kB"), pytest.param(1_000_000, id="api-max")])
def test_chunking_respects_the_byte_limit(events, max_bytes):
    for batch in chunk_log_events(events, max_bytes=max_bytes):
        assert sum(event_size(e) for e in batch) <= max_bytes


def test_chunking_never_spans_24_hours(events):
    batches = chunk_log_events(events)
    assert len(batches) >= 2
    assert all(batch[-1]["timestamp"] - batch[0]["timestamp"] < MAX_BATCH_SPAN_MS for batch in batches)


def test_chunking_counts_26_bytes_of_overhead_per_event():
    events = [{"timestamp": 1000 + n, "message": "x" * 74} for n in range(10)]
    assert [len(b) for b in chunk_log_events(events, max_bytes=300)] == [3, 3, 3, 1]


def test_chunking_sorts_unsorted_input():
    events = [
        {"timestamp": 3, "message": "c"},
        {"timestamp": 1, "message": "a"},
        {"timestamp": 2, "message": "b"},
    ]
    assert [e["message"] for e in chunk_log_events(events)[0]] == ["a", "b", "c"]


def test_chunking_nothing_gives_no_batches():
    assert chunk_log_events([]) == []


def test_chunking_rejects_an_event_larger_than_a_batch():
    with pytest.raises(ValueError, match="over the 100 limit"):
        chunk_log_events([{"timestamp": 1, "message": "y" * 200}], max_bytes=100)
