"""The logs store: Parquet in the artifact store, one file per dataset and UTC day.

* ``logs/counts/dt=YYYY-MM-DD/counts.parquet``: one row per (service, env, 5-minute bucket) with
  error, warning and line counts (buckets without lines are absent: zero).
* ``logs/signatures/dt=YYYY-MM-DD/signatures.parquet``: one row per (service, env, bucket, error
  signature) with its count and one sample line.

Writes replace a time window like the metrics store (:class:`aiops.metrics.windowed.DatasetStore`):
re-running or backfilling an interval rewrites its rows and never duplicates them. Rows failing a
check (negative counts, more errors than lines, ...) quarantine their (service, env) in
``logs/quarantine/dt=.../`` and that series keeps its stored rows.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from aiops.core.artifacts import ArtifactStore
from aiops.metrics.windowed import Dataset, DatasetStore

if TYPE_CHECKING:
    import pandas as pd

DOMAIN = "logs"
COUNT_COLUMNS = {"service": "string", "env": "string", "timestamp": "datetime64[ns, UTC]", "errors": "int64",
                 "warnings": "int64", "lines": "int64"}
SIGNATURE_COLUMNS = {"service": "string", "env": "string", "timestamp": "datetime64[ns, UTC]",
                     "signature": "string", "count": "int64", "sample": "string"}
DATASETS = {
    "counts": Dataset("counts", "counts.parquet", COUNT_COLUMNS, ("service", "env", "timestamp"), ("service", "env"), (
        ("counts_not_negative", lambda f: (f[["errors", "warnings", "lines"]] < 0).any(axis=1), "negative counts"),
        ("levels_within_lines", lambda f: f["errors"] + f["warnings"] > f["lines"],
         "more errors and warnings than lines"),
    )),
    "signatures": Dataset("signatures", "signatures.parquet", SIGNATURE_COLUMNS,
                          ("service", "env", "timestamp", "signature"), ("service", "env"), (
        ("count_positive", lambda f: f["count"] < 1, "a signature counted less than once"),
    )),
}


class LogsStore(DatasetStore):
    def __init__(self, artifacts: ArtifactStore | None = None) -> None:
        super().__init__(DOMAIN, DATASETS, artifacts or ArtifactStore())

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
        frame = self.read("signatures", start, end, [service])
        return top(list(zip(frame["signature"], frame["count"].astype(int), frame["sample"], strict=True)), limit)

    def days(self, dataset: str = "counts") -> list[str]:
        return super().days(dataset)


def top(signatures: list[tuple[str, int, str]], limit: int = 10) -> list[dict[str, Any]]:
    """The ``limit`` most frequent signatures of ``(signature, count, sample)`` rows, with a sample each."""
    totals: Counter[str] = Counter()
    samples: dict[str, str] = {}
    for sig, n, sample in signatures:
        totals[sig] += n
        samples.setdefault(sig, sample)
    return [{"signature": s, "count": n, "sample": samples[s]} for s, n in totals.most_common(limit)]
