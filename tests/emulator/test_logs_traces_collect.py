"""logs_collect and traces_collect on the simulated account: the surge shows in both, re-runs and
backfills rewrite (never duplicate), and a run after downtime catches up from the watermark."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from aiops.logs import pipeline as logs
from aiops.logs.store import LogsStore
from aiops.traces import pipeline as traces
from aiops.traces.store import TracesStore

pytestmark = [pytest.mark.emulator]
SURGE = datetime(2026, 11, 20, 6, 0, tzinfo=UTC)  # checkout 5xx surge 06:00-06:45 (ground truth)


def _run(module, start: datetime, end: datetime) -> dict:
    chunks = module.plan(end - timedelta(minutes=15), end, {"start": start.isoformat(), "end": end.isoformat()})
    return module.publish([module.collect_chunk(c) for c in chunks])


def _frame(store, dataset: str, start: datetime, end: datetime):
    return store.read(dataset, start, end).sort_values(list(store_order(dataset))).reset_index(drop=True)


def store_order(dataset: str) -> tuple[str, ...]:
    return {"counts": ("service", "env", "timestamp"), "signatures": ("service", "env", "timestamp", "signature"),
            "stats": ("service", "edge", "timestamp"), "slow": ("service", "timestamp", "trace_id")}[dataset]


def test_logs_counts_and_signatures_show_the_surge(seeded, isolated_stores):
    _run(logs, SURGE - timedelta(hours=2), SURGE + timedelta(hours=2))
    store = LogsStore()
    counts = store.read_counts(SURGE - timedelta(hours=2), SURGE + timedelta(hours=2), services=["checkout"])
    during = counts[(counts["timestamp"] >= SURGE) & (counts["timestamp"] < SURGE + timedelta(minutes=45))]
    before = counts[counts["timestamp"] < SURGE]
    assert during["errors"].sum() > 10 * max(1, before["errors"].sum())
    assert set(counts["timestamp"].diff().dropna()) == {timedelta(minutes=5)}  # zero-filled 5-minute grid
    top = store.top_signatures(SURGE, SURGE + timedelta(hours=1), service="checkout", limit=3)
    assert top[0]["signature"] in {"upstream payment-gateway timeout after <n>ms",
                                   "HTTP <n> returned to client: circuit open"}
    assert top[0]["count"] > 10
    assert "payment-gateway" in top[0]["sample"] or "circuit open" in top[0]["sample"]


def test_logs_rerun_and_piecewise_backfill_are_idempotent(seeded, isolated_stores):
    start, end = SURGE - timedelta(hours=3), SURGE + timedelta(hours=3)
    _run(logs, start, end)
    store = LogsStore()
    whole = {d: _frame(store, d, start, end) for d in ("counts", "signatures")}
    _run(logs, start, end)  # a re-run
    _run(logs, SURGE - timedelta(hours=1), SURGE + timedelta(hours=1))  # a backfill of a piece
    for d in ("counts", "signatures"):
        again = _frame(store, d, start, end)
        assert len(again) == len(whole[d])
        assert again.equals(whole[d])


def test_logs_catch_up_from_the_watermark_after_a_gap(seeded, isolated_stores):
    _run(logs, SURGE - timedelta(hours=2), SURGE - timedelta(hours=1))
    # three hours later, a scheduled 15-minute interval: the plan starts at the watermark
    end = SURGE + timedelta(hours=2)
    chunks = logs.plan(end - timedelta(minutes=15), end, {})
    assert datetime.fromisoformat(chunks[0]["start"]) == SURGE - timedelta(hours=1)
    assert datetime.fromisoformat(chunks[-1]["end"]) == end


def test_traces_stats_show_the_surge_and_rewrite_on_rerun(seeded, isolated_stores):
    start, end = SURGE - timedelta(hours=2), SURGE + timedelta(hours=2)
    summary = _run(traces, start, end)
    assert summary["rows"] > 0
    store = TracesStore()
    stats = store.read_stats(start, end, services=["checkout"])
    own = stats[stats["edge"] == ""]
    during = own[(own["timestamp"] >= SURGE) & (own["timestamp"] < SURGE + timedelta(minutes=45))]
    before = own[own["timestamp"] < SURGE]
    assert during["faults"].sum() / during["requests"].sum() > 0.1
    assert before["faults"].sum() / before["requests"].sum() < 0.05
    assert (own["p99"] >= own["p50"]).all()
    assert {e["edge"] for e in store.edges(start, end, service="checkout")} >= {"payments", "payment-gateway"}
    slow = store.slow_traces(SURGE, SURGE + timedelta(hours=1), service="checkout")
    assert slow
    assert slow[0]["fault"]  # the faulty ones first
    first = {d: _frame(store, d, start, end) for d in ("stats", "slow")}
    _run(traces, SURGE - timedelta(hours=1), SURGE + timedelta(hours=1))
    for d in ("stats", "slow"):
        assert _frame(store, d, start, end).equals(first[d])


def test_console_service_view_rereads_what_a_run_rewrote(seeded, isolated_stores, monkeypatch):
    """The service page caches its bucket reads by ETag: a collection run that rewrites a day shows."""
    from aiops.console import data
    from aiops.core.state import StateStore
    from aiops.metrics.pipeline import WATERMARK

    StateStore().set_watermark(WATERMARK, SURGE + timedelta(hours=2))
    _run(logs, SURGE - timedelta(hours=2), SURGE - timedelta(hours=1))
    before = data.service_view(data.Context(), "checkout", "6h")["logs"]
    monkeypatch.setattr(data, "LISTING_TTL_SECONDS", 0.0)  # the next request lists again: the new ETag
    _run(logs, SURGE - timedelta(hours=2), SURGE + timedelta(hours=2))
    after = data.service_view(data.Context(), "checkout", "6h")["logs"]
    assert after["total_errors"] > (before or {}).get("total_errors", 0) + 10
