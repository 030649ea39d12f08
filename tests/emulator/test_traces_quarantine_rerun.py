"""Quarantine in traces_collect never deletes good rows (issue 17, like metrics in issue 15): a service
stored good by one run and quarantined when the same window is re-run (a clock-skewed segment makes its
latency negative) keeps its stored rows and its derived series; the other services are rewritten."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import boto3
import pytest

from aiops.metrics import derived
from aiops.traces import pipeline as traces
from aiops.traces.store import TracesStore

pytestmark = pytest.mark.emulator
T0 = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
END = T0 + timedelta(hours=1)


def run() -> dict:
    chunks = traces.plan(END - timedelta(minutes=15), END, {"start": T0.isoformat(), "end": END.isoformat()})
    return traces.publish([traces.collect_chunk(c) for c in chunks])


def test_rerun_that_quarantines_a_service_keeps_its_stored_rows(fresh_emulator, isolated_stores):
    from aiops_sandbox import traces as feed

    xray = boto3.client("xray", endpoint_url=fresh_emulator.endpoint, region_name="us-east-1",
                        aws_access_key_id="testing", aws_secret_access_key="testing")
    feed.put_live(xray, ["catalog", "checkout"], [], T0.timestamp(), END.timestamp())
    assert run()["quarantined"] == []
    store = TracesStore()
    first = store.read("stats", T0, END).sort_values(["service", "edge", "timestamp"]).reset_index(drop=True)
    first_derived = derived.read(T0, END).sort_values(["series_id", "timestamp"]).reset_index(drop=True)
    assert {"catalog", "checkout"} <= set(first_derived["service"])

    # a late segment with a skewed clock: catalog's window now has a negative mean latency
    at = (T0 + timedelta(minutes=20)).timestamp()
    xray.put_trace_segments(TraceSegmentDocuments=[json.dumps({
        "name": "catalog", "id": "0123456789abcdef", "trace_id": f"1-{int(at):08x}-{'0' * 24}",
        "start_time": at, "end_time": at - 600.0, "http": {"response": {"status": 200}}})])
    again = run()
    assert again["quarantined"] == ["catalog/"]
    after = store.read("stats", T0, END).sort_values(["service", "edge", "timestamp"]).reset_index(drop=True)
    assert after.equals(first)  # catalog's good rows kept, checkout's rewritten identically, nothing twice
    after_derived = derived.read(T0, END).sort_values(["series_id", "timestamp"]).reset_index(drop=True)
    assert after_derived.equals(first_derived)
    reports = [k for k in store.artifacts.list_keys("traces/quarantine/") if k.endswith(".report.json")]
    assert reports
    issues = store.artifacts.get_json(reports[0])["issues"]
    assert {(i["series"], i["check"]) for i in issues} == {("catalog/", "latency_ordered")}
