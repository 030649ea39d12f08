"""The traces store: Parquet in the artifact store, one file per dataset and UTC day.

* ``traces/stats/dt=YYYY-MM-DD/stats.parquet``: one row per (service, edge, 5-minute window);
  ``edge`` is "" for the service itself, else the downstream service's name.
* ``traces/slow/dt=YYYY-MM-DD/slow.parquet``: the slowest and the faulty trace ids per service and hour.

Writes replace a time window (same convention as the metrics and logs stores,
:class:`aiops.metrics.windowed.DatasetStore`): idempotent re-runs and backfills. Rows failing a
check (faults beyond requests, a rate outside [0, 1], p99 below p50, ...) quarantine their
(service, edge) in ``traces/quarantine/dt=.../`` and that series keeps its stored rows.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from aiops.core.artifacts import ArtifactStore
from aiops.metrics.windowed import Dataset, DatasetStore, typed

if TYPE_CHECKING:
    import pandas as pd

DOMAIN = "traces"
STATS_COLUMNS = {"service": "string", "edge": "string", "timestamp": "datetime64[ns, UTC]", "requests": "int64",
                 "errors": "int64", "faults": "int64", "throttles": "int64", "error_rate": "float64",
                 "fault_rate": "float64", "mean": "float64", "p50": "float64", "p95": "float64", "p99": "float64"}
SLOW_COLUMNS = {"service": "string", "timestamp": "datetime64[ns, UTC]", "trace_id": "string", "duration": "float64",
                "response_time": "float64", "error": "bool", "fault": "bool", "url": "string", "status": "int64"}
DATASETS = {
    "stats": Dataset("stats", "stats.parquet", STATS_COLUMNS, ("service", "edge", "timestamp"), ("service", "edge"), (
        ("requests_positive", lambda f: f["requests"] < 1, "a window without requests"),
        ("counts_within_requests",
         lambda f: (f[["errors", "faults", "throttles"]] < 0).any(axis=1)
         | (f[["errors", "faults"]].max(axis=1) > f["requests"]), "error/fault counts outside [0, requests]"),
        ("rates_in_unit_interval", lambda f: ~f["error_rate"].between(0, 1) | ~f["fault_rate"].between(0, 1),
         "error or fault rate outside [0, 1]"),
        ("latency_ordered", lambda f: (f[["mean", "p50", "p95", "p99"]] < 0).any(axis=1)
         | (f["p50"] > f["p95"]) | (f["p95"] > f["p99"]), "negative latency or percentiles out of order"),
    )),
    "slow": Dataset("slow", "slow.parquet", SLOW_COLUMNS, ("service", "timestamp", "trace_id"), ("service",), (
        ("durations_not_negative", lambda f: (f["duration"] < 0) | (f["response_time"] < 0), "negative durations"),
    )),
}


def frame(dataset: str, rows: list[dict[str, Any]]) -> pd.DataFrame:
    return typed(DATASETS[dataset].columns, rows)


class TracesStore(DatasetStore):
    def __init__(self, artifacts: ArtifactStore | None = None) -> None:
        super().__init__(DOMAIN, DATASETS, artifacts or ArtifactStore())

    def read_stats(self, start: datetime, end: datetime, services: list[str] | None = None) -> pd.DataFrame:
        return self.read("stats", start, end, services)

    def slow_traces(self, start: datetime, end: datetime, *, service: str, limit: int = 10) -> list[dict[str, Any]]:
        got = self.read("slow", start, end, [service])
        got = got.sort_values(["fault", "response_time"], ascending=[False, False]).head(limit)
        return [{**r, "start": r["timestamp"].to_pydatetime()} for r in got.to_dict("records")]

    def edges(self, start: datetime, end: datetime, *, service: str) -> list[dict[str, Any]]:
        got = self.read("stats", start, end, [service])
        got = got[got["edge"] != ""]
        out = []
        for edge, g in got.groupby("edge"):
            n = int(g["requests"].sum())
            out.append({"edge": str(edge), "requests": n, "fault_rate": float(g["faults"].sum()) / n if n else 0.0,
                        "p99": float(g["p99"].max())})
        return sorted(out, key=lambda e: -e["requests"])

    def days(self, dataset: str = "stats") -> list[str]:
        return super().days(dataset)
