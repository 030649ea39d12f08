"""The logs store: Parquet in the artifact store, one file per dataset and UTC day.

* ``logs/counts/dt=YYYY-MM-DD/counts.parquet``: one row per (service, env, 5-minute bucket) with
  error, warning and line counts (buckets without lines are absent: zero).
* ``logs/signatures/dt=YYYY-MM-DD/signatures.parquet``: one row per (service, env, bucket, error
  signature) with its count and one sample line.

Writes replace a time window like the metrics store: re-running or backfilling an interval rewrites
its rows and never duplicates them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from aiops.core.artifacts import ArtifactStore
from aiops.metrics.store import day_range

if TYPE_CHECKING:
    import pandas as pd

DOMAIN = "logs"
COUNT_COLUMNS = {"service": "string", "env": "string", "timestamp": "datetime64[ns, UTC]", "errors": "int64",
                 "warnings": "int64", "lines": "int64"}
SIGNATURE_COLUMNS = {"service": "string", "env": "string", "timestamp": "datetime64[ns, UTC]",
                     "signature": "string", "count": "int64", "sample": "string"}
DATASETS = {"counts": ("counts.parquet", COUNT_COLUMNS, ["service", "env", "timestamp"]),
            "signatures": ("signatures.parquet", SIGNATURE_COLUMNS, ["service", "env", "timestamp", "signature"])}


def _empty(columns: dict[str, str]) -> pd.DataFrame:
    import pandas as pd

    return pd.DataFrame({c: pd.Series(dtype=t) for c, t in columns.items()})


@dataclass
class LogsStore:
    artifacts: ArtifactStore = field(default_factory=ArtifactStore)

    def key(self, dataset: str, day: Any) -> str:
        return self.artifacts.key(DOMAIN, dataset, day, DATASETS[dataset][0])

    def read_day(self, dataset: str, day: Any) -> pd.DataFrame:
        frame = self.artifacts.read_parquet(self.key(dataset, day))
        return _empty(DATASETS[dataset][1]) if frame is None else frame

    def upsert(self, dataset: str, frame: pd.DataFrame, start: datetime, end: datetime) -> list[str]:
        """Replace [start, end) of each touched day with ``frame``'s rows of that day."""
        import pandas as pd

        _, columns, order = DATASETS[dataset]
        written = []
        for day in day_range(start, end):
            day_start = datetime(day.year, day.month, day.day, tzinfo=UTC)
            lo, hi = max(start, day_start), min(end, day_start + timedelta(days=1))
            existing = self.read_day(dataset, day)
            keep = existing[(existing["timestamp"] < lo) | (existing["timestamp"] >= hi)]
            new = frame[(frame["timestamp"] >= lo) & (frame["timestamp"] < hi)]
            merged = pd.concat([keep, new], ignore_index=True) if len(keep) else new.reset_index(drop=True)
            merged = merged.astype(columns).sort_values(order, kind="stable").reset_index(drop=True)
            written.append(self.artifacts.put_parquet(self.key(dataset, day), merged))
        return written

    def read(self, dataset: str, start: datetime, end: datetime, services: list[str] | None = None) -> pd.DataFrame:
        import pandas as pd

        parts = []
        for day in day_range(start, end):
            frame = self.read_day(dataset, day)
            frame = frame[(frame["timestamp"] >= start) & (frame["timestamp"] < end)]
            if services is not None:
                frame = frame[frame["service"].isin(services)]
            parts.append(frame)
        return pd.concat(parts, ignore_index=True) if parts else _empty(DATASETS[dataset][1])

    def read_counts(self, start: datetime, end: datetime, services: list[str] | None = None) -> pd.DataFrame:
        """Counts per 5 minutes, summed over envs, with zero-filled buckets inside [start, end)."""
        import pandas as pd

        frame = self.read("counts", start, end, services)
        if not len(frame):
            return frame
        summed = frame.groupby(["service", "timestamp"], as_index=False)[["errors", "warnings", "lines"]].sum()
        grid = pd.date_range(start.replace(second=0, microsecond=0), end, freq="5min", inclusive="left", tz=UTC)
        out = []
        for service, g in summed.groupby("service"):
            g = (g.set_index("timestamp")[["errors", "warnings", "lines"]].reindex(grid, fill_value=0)
                 .rename_axis("timestamp").reset_index())
            g.insert(0, "service", service)
            out.append(g)
        return pd.concat(out, ignore_index=True)

    def top_signatures(self, start: datetime, end: datetime, *, service: str, limit: int = 10) -> list[dict[str, Any]]:
        from aiops.logs.collect import top

        frame = self.read("signatures", start, end, [service])
        return top(list(zip(frame["signature"], frame["count"].astype(int), frame["sample"], strict=True)), limit)

    def days(self, dataset: str = "counts") -> list[str]:
        return self.artifacts.partitions(DOMAIN, dataset)
