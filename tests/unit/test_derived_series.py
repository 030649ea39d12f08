"""Derived series (issue 17): fault rate and p99 latency from traces and log errors per 5 minutes become
series in the metrics store's shape, enumerated and read by anomaly detection next to CloudWatch's,
tagged for routing, and quoted by triage and the post-mortem; the collectors quarantine bad rows
without deleting stored good ones."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest

from aiops.core.artifacts import ArtifactStore
from aiops.incidents import postmortem, triage
from aiops.logs.pipeline import error_points
from aiops.logs.store import LogsStore
from aiops.metrics import derived
from aiops.metrics.pipeline import SERIES_KEY
from aiops.traces.pipeline import service_points
from aiops.traces.store import TracesStore, frame

T0 = datetime(2026, 11, 20, 0, 0, tzinfo=UTC)
P99 = "AIOps/Traces|P99Latency|Service=checkout|p99"
FAULTS = "AIOps/Traces|FaultRatePercent|Service=checkout|Average"


class MemoryArtifacts(ArtifactStore):
    """The artifact store in memory (same keys, same Parquet/JSON encoding)."""

    def __init__(self) -> None:
        super().__init__(bucket="memory", conn_id="none")
        self.objects: dict[str, bytes] = {}

    def put_bytes(self, key: str, data: bytes, content_type: str = "application/octet-stream") -> str:
        self.objects[key] = data
        return self.uri(key)

    def get_bytes(self, key: str) -> bytes | None:
        return self.objects.get(key)

    def list_keys(self, prefix: str) -> list[str]:
        return sorted(k for k in self.objects if k.startswith(prefix))


@pytest.fixture
def artifacts(monkeypatch) -> MemoryArtifacts:
    mem = MemoryArtifacts()
    mem.put_json(SERIES_KEY, [  # the CloudWatch series list: where a service's env and team come from
        {"namespace": "AWS/EC2", "metric": "CPUUtilization", "dimensions": {"InstanceId": "i-1"}, "stat": "Average",
         "region": "us-east-1", "resource_id": "i-1", "tags": {"service": "checkout", "env": "prod", "team": "storefront"}},
        {"namespace": "AWS/EC2", "metric": "CPUUtilization", "dimensions": {"InstanceId": "i-2"}, "stat": "Average",
         "region": "us-east-1", "resource_id": "i-2", "tags": {"service": "checkout", "env": "staging", "team": "qa"}},
    ])
    monkeypatch.setattr(derived, "ArtifactStore", lambda: mem)
    return mem


def stats_row(service: str, at: datetime, *, requests: int = 10, faults: int = 0, p50: float = 0.1,
              p99: float = 0.15, edge: str = "") -> dict:
    return {"service": service, "edge": edge, "timestamp": at, "requests": requests, "errors": 0, "faults": faults,
            "throttles": 0, "error_rate": 0.0, "fault_rate": faults / requests, "mean": p50, "p50": p50, "p95": p99,
            "p99": p99}


def test_traces_become_tagged_derived_series_that_anomaly_detection_enumerates_and_reads(artifacts):
    from aiops.anomaly import pipeline as anomaly

    end = T0 + timedelta(minutes=15)
    stats = frame("stats", [stats_row("checkout", T0 + timedelta(minutes=5 * k), faults=k, p99=0.1 * (k + 1))
                            for k in range(3)] + [stats_row("checkout", T0, edge="payments", p99=9.0)])
    summary = derived.publish("traces", service_points(stats, T0), T0, end)
    assert summary["series"] == [FAULTS, P99]  # the service's own rows only, not its edges
    refs = {r.series_id: r for r in derived.series_refs()}
    assert {P99, FAULTS, "AWS/EC2|CPUUtilization|InstanceId=i-1|Average"} <= set(refs)
    assert dict(refs[P99].tags) == {"service": "checkout", "env": "prod", "team": "storefront"}  # routable
    batches = [anomaly._series_refs(b, 2) for b in range(2)]
    assert P99 in batches[0] | batches[1]
    data = derived.read(T0, end, series_ids=[P99, FAULTS], columns=["series_id", "timestamp", "value"])
    assert sorted(data[data["series_id"] == P99]["value"].round(3)) == [0.1, 0.2, 0.3]
    # the fault rate over the trailing 15 minutes: 0/10, 1/20, 3/30
    assert sorted(data[data["series_id"] == FAULTS]["value"].round(1)) == [0.0, 5.0, 10.0]
    derived.publish("traces", service_points(stats), T0, end)  # a re-run rewrites, never duplicates
    again = derived.read(T0, end, series_ids=[P99])
    assert len(again) == 3
    assert len(artifacts.get_json(derived.series_key("traces"))) == 2


def test_an_anomaly_alert_on_a_derived_series_carries_service_env_team(artifacts):
    from aiops.anomaly.pipeline import episode_onsets

    ref = derived.ref(derived.P99_LATENCY, "checkout", {"env": "prod", "team": "storefront"})
    scores = pd.DataFrame({"series_id": [ref.series_id] * 2, "timestamp": [T0, T0 + timedelta(minutes=5)],
                           "value": [0.15, 0.85], "anomaly_score": [0.1, 0.99], "is_anomaly": [False, True],
                           "forecast": [0.15, 0.15], "lower": [0.12, 0.12], "upper": [0.18, 0.18],
                           "reason": ["", "above band"]})
    (alert,) = episode_onsets(scores, {ref.series_id: ref}, T0, T0 + timedelta(hours=1))
    assert (alert.service, alert.env, alert.team) == ("checkout", "prod", "storefront")
    assert alert.namespace == "AIOps/Traces"


def test_log_errors_become_a_zero_filled_series_of_the_services_env():
    counts = pd.DataFrame({"service": ["checkout", "checkout", "checkout"], "env": ["prod", "prod", "staging"],
                           "timestamp": [T0, T0 + timedelta(minutes=10), T0], "errors": [3, 5, 100],
                           "warnings": [0, 0, 0], "lines": [10, 10, 200]})
    points = error_points(counts, T0, T0 + timedelta(minutes=15), {"checkout": {"env": "prod"}})
    assert list(points["value"]) == [3.0, 0.0, 5.0]  # prod only, the empty bucket is a zero
    assert set(points["kind"]) == {"ErrorCount"}


def test_triage_and_the_post_mortem_quote_the_derived_series_against_its_band(artifacts, monkeypatch):
    monkeypatch.setattr(triage, "_detector_band", lambda *a, **k: {})  # not scored: the seasonal baseline
    incident_at = T0 + timedelta(days=4, hours=10)
    start = incident_at - timedelta(days=4)
    history = []
    at = start
    while at < incident_at + timedelta(minutes=30):
        day = (at - start).days  # 120, 140, 160, 180 ms on successive days
        history.append(stats_row("checkout", at, p99=0.85 if at >= incident_at else 0.12 + 0.02 * (day % 4)))
        at += timedelta(minutes=5)
    derived.publish("traces", service_points(frame("stats", history)), start, incident_at + timedelta(minutes=30))
    ev = triage.derived_evidence("checkout", incident_at - timedelta(minutes=15), incident_at + timedelta(minutes=30))
    item = next(i for i in ev["series"] if i["series_id"] == P99)
    assert item["outside"]
    assert item["text"].startswith("p99 latency 850 ms vs expected ")
    lo, hi = item["text"].rsplit(" ", 2)[-2].split("-")
    assert int(lo) <= 120  # the baseline's range, in ms
    assert 180 <= int(hi) < 850
    lines = dict(postmortem.evidence_lines({"links": {}}, {"derived": ev}))
    assert lines["p99 latency (from traces)"] == item["text"] + " — outside the band"


def test_a_bad_logs_row_quarantines_its_series_and_keeps_its_stored_rows():
    store = LogsStore(MemoryArtifacts())
    end = T0 + timedelta(minutes=15)

    def counts(rows):
        return store.frame("counts", [{"service": s, "env": "prod", "timestamp": T0 + timedelta(minutes=m),
                                       "errors": e, "warnings": 0, "lines": n} for s, m, e, n in rows])

    first = store.write("counts", counts([("checkout", 0, 1, 10), ("payments", 0, 2, 10), ("payments", 5, 3, 10)]),
                        T0, end)
    assert first["quarantined"] == []
    second = store.write("counts", counts([("checkout", 0, 4, 10), ("payments", 0, 50, 10)]), T0, end)
    assert second["quarantined"] == ["payments/prod"]
    stored = store.read("counts", T0, end).sort_values(["service", "timestamp"])
    assert list(zip(stored["service"], stored["errors"], strict=True)) == [("checkout", 4), ("payments", 2),
                                                                           ("payments", 3)]
    report = store.artifacts.get_json(second["quarantine"].replace("s3://memory/", "").replace(".parquet",
                                                                                                ".report.json"))
    assert report["issues"][0]["check"] == "levels_within_lines"
    aside = store.artifacts.read_parquet(second["quarantine"].replace("s3://memory/", ""))
    assert list(aside["errors"]) == [50]


def test_a_bad_traces_row_quarantines_only_its_service_edge():
    store = TracesStore(MemoryArtifacts())
    end = T0 + timedelta(minutes=15)
    good = [stats_row("checkout", T0), stats_row("checkout", T0, edge="payments")]
    store.write("stats", frame("stats", good), T0, end)
    bad = [stats_row("checkout", T0, p99=0.2), stats_row("checkout", T0, edge="payments", p50=0.5, p99=0.1),
           {**stats_row("catalog", T0), "timestamp": end}]  # p99 under p50; a row outside the window
    wrote = store.write("stats", frame("stats", bad), T0, end)
    assert wrote["quarantined"] == ["catalog/", "checkout/payments"]
    stored = store.read("stats", T0, end).sort_values("edge")
    assert list(zip(stored["edge"], stored["p99"], strict=True)) == [("", 0.2), ("payments", 0.15)]
    assert not stored.duplicated(["service", "edge", "timestamp"]).any()


# -- anomaly_detection waits for live derived collectors (same-cycle scoring) -----------------------
END = datetime(2026, 11, 20, 12, 15, tzinfo=UTC)
WAIT = timedelta(minutes=3)


def test_a_run_waits_for_a_live_collector_one_interval_behind():
    from aiops.anomaly.pipeline import derived_ready

    marks = {"logs_collect": END, "traces_collect": END - timedelta(minutes=15)}
    ready, reason = derived_ready(END, END + timedelta(seconds=40), marks, max_wait=WAIT)
    assert not ready
    assert "traces_collect" in reason
    assert "logs_collect" not in reason
    # once the collector has published the window, the run goes on
    ready, reason = derived_ready(END, END + timedelta(seconds=50), {**marks, "traces_collect": END}, max_wait=WAIT)
    assert ready, reason


def test_the_wait_is_bounded_and_says_what_was_left_for_the_next_run():
    from aiops.anomaly.pipeline import derived_ready

    marks = {"traces_collect": END - timedelta(minutes=15)}
    ready, reason = derived_ready(END, END + WAIT, marks, max_wait=WAIT)
    assert ready
    assert "traces_collect" in reason
    assert "next run" in reason


@pytest.mark.parametrize("mark", [None, END - timedelta(hours=2)], ids=["never-ran", "far-behind"])
def test_no_wait_for_a_collector_that_is_not_live(mark):
    from aiops.anomaly.pipeline import derived_ready

    ready, _ = derived_ready(END, END + timedelta(seconds=1), {"logs_collect": mark}, max_wait=WAIT)
    assert ready


def test_wait_for_derived_reads_the_collectors_watermarks(isolated_stores, monkeypatch):
    from aiops.anomaly.pipeline import wait_for_derived
    from aiops.core.state import StateStore

    batches = [{"batch": 0, "batches": 1, "start": (END - timedelta(minutes=15)).isoformat(), "end": END.isoformat()}]
    StateStore().set_watermark("logs_collect", END - timedelta(minutes=15))
    ready, reason = wait_for_derived(batches, now=END + timedelta(seconds=30))
    assert not ready
    assert "logs_collect" in reason
    StateStore().set_watermark("logs_collect", END)
    assert wait_for_derived(batches, now=END + timedelta(seconds=30))[0]
    # 0 turns the wait off
    StateStore().set_watermark("traces_collect", END - timedelta(minutes=15))
    monkeypatch.setenv("AIOPS_ANOMALY_DERIVED_WAIT_SECONDS", "0")
    from aiops.core.settings import get_settings

    get_settings.cache_clear()
    assert wait_for_derived(batches, now=END + timedelta(seconds=30))[0]

