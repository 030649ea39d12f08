"""The traces store: Parquet in the artifact store, one file per dataset and UTC day.

* ``traces/stats/dt=YYYY-MM-DD/stats.parquet``: one row per (service, edge, 5-minute window);
  ``edge`` is "" for the service itself, else the downstream service's name.
* ``traces/slow/dt=YYYY-MM-DD/slow.parquet``: the slowest and the faulty trace ids per service and hour.

Writes replace a time window (same convention as the metrics and logs stores): idempotent re-runs
and backfills.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from aiops.core.artifacts import ArtifactStore
from aiops.metrics.store import day_range

if TYPE_CHECKING:
    import pandas as pd

DOMAIN = "traces"
STATS_COLUMNS = {"service": "string", "edge": "string", "timestamp": "datetime64[ns, UTC]", "requests": "int64",
                 "errors": "int64", "faults": "int64", "throttles": "int64", "error_rate": "float64",
                 "fault_rate": "float64", "mean": "float64", "p50": "float64", "p95": "float64", "p99": "float64"}
SLOW_COLUMNS = {"service": "string", "timestamp": "datetime64[ns, UTC]", "trace_id": "string", "duration": "float64",
                "response_time": "float64", "error": "bool", "fault": "bool", "url": "string", "status": "int64"}
DATASETS = {"stats": ("stats.parquet", STATS_COLUMNS, ["service", "edge", "timestamp"]),
            "slow": ("slow.parquet", SLOW_COLUMNS, ["service", "timestamp", "trace_id"])}


def frame(dataset: str, rows: list[dict[str, Any]]) -> pd.DataFrame:
    import pandas as pd

    columns = DATASETS[dataset][1]
    return pd.DataFrame(rows, columns=list(columns)).astype(columns)


@dataclass
class TracesStore:
    artifacts: ArtifactStore = field(default_factory=ArtifactStore)

    def key(self, dataset: str, day: Any) -> str:
        return self.artifacts.key(DOMAIN, dataset, day, DATASETS[dataset][0])

    def read_day(self, dataset: str, day: Any) -> pd.DataFrame:
        got = self.artifacts.read_parquet(self.key(dataset, day))
        return frame(dataset, []) if got is None else got

    def upsert(self, dataset: str, new: pd.DataFrame, start: datetime, end: datetime) -> list[str]:
        import pandas as pd

        _, columns, order = DATASETS[dataset]
        written = []
        for day in day_range(start, end):
            day_start = datetime(day.year, day.month, day.day, tzinfo=UTC)
            lo, hi = max(start, day_start), min(end, day_start + timedelta(days=1))
            existing = self.read_day(dataset, day)
            keep = existing[(existing["timestamp"] < lo) | (existing["timestamp"] >= hi)]
            add = new[(new["timestamp"] >= lo) & (new["timestamp"] < hi)]
            merged = pd.concat([keep, add], ignore_index=True) if len(keep) else add.reset_index(drop=True)
            merged = merged.astype(columns).sort_values(order, kind="stable").reset_index(drop=True)
            written.append(self.artifacts.put_parquet(self.key(dataset, day), merged))
        return written

    def read(self, dataset: str, start: datetime, end: datetime, services: list[str] | None = None) -> pd.DataFrame:
        import pandas as pd

        parts = []
        for day in day_range(start, end):
            got = self.read_day(dataset, day)
            got = got[(got["timestamp"] >= start) & (got["timestamp"] < end)]
            if services is not None:
                got = got[got["service"].isin(services)]
            parts.append(got)
        return pd.concat(parts, ignore_index=True) if parts else frame(dataset, [])

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
        return self.artifacts.partitions(DOMAIN, dataset)
