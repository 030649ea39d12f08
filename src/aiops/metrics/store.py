"""The metrics store: Parquet in the artifact store, one file per UTC day.

``metrics/cloudwatch/dt=YYYY-MM-DD/metrics.parquet`` holds one row per (series_id, timestamp).
Writes are upserts of a time window: rows of that window are replaced, rows outside it are kept,
so re-running or backfilling an interval never duplicates. Quarantined series go to
``metrics/quarantine/dt=.../`` with the validation report.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from aiops.core.artifacts import ArtifactStore
from aiops.metrics.model import STORE_COLUMNS

if TYPE_CHECKING:
    import pandas as pd

DOMAIN = "metrics"
DATASET = "cloudwatch"
FILENAME = "metrics.parquet"


def empty_frame() -> pd.DataFrame:
    import pandas as pd

    return pd.DataFrame({c: pd.Series(dtype=t) for c, t in STORE_COLUMNS.items()})


def day_range(start: datetime, end: datetime) -> list[date]:
    days, d = [], start.astimezone(UTC).date()
    while datetime(d.year, d.month, d.day, tzinfo=UTC) < end:
        days.append(d)
        d += timedelta(days=1)
    return days


@dataclass
class MetricsStore:
    artifacts: ArtifactStore = field(default_factory=ArtifactStore)
    dataset: str = DATASET  # "cloudwatch"; derived series (``aiops.metrics.derived``) keep their own datasets

    def day_key(self, day: date) -> str:
        return self.artifacts.key(DOMAIN, self.dataset, day, FILENAME)

    def read_day(self, day: date) -> pd.DataFrame:
        frame = self.artifacts.read_parquet(self.day_key(day))
        return empty_frame() if frame is None else frame

    def upsert(self, frame: pd.DataFrame, window_start: datetime, window_end: datetime) -> list[str]:
        """Replace [window_start, window_end) of each series in ``frame`` in each touched day partition
        with ``frame``'s rows. Series absent from ``frame`` (quarantined on a rerun, or not returned)
        keep their stored rows: nothing replaces good data but good data."""
        import pandas as pd

        written = []
        incoming = set(frame["series_id"].unique()) if len(frame) else set()
        for day in day_range(window_start, window_end):
            day_start = datetime(day.year, day.month, day.day, tzinfo=UTC)
            lo, hi = max(window_start, day_start), min(window_end, day_start + timedelta(days=1))
            existing = self.read_day(day)
            keep = existing[(existing["timestamp"] < lo) | (existing["timestamp"] >= hi)
                            | ~existing["series_id"].isin(incoming)]
            new = frame[(frame["timestamp"] >= lo) & (frame["timestamp"] < hi)]
            merged = pd.concat([keep, new], ignore_index=True) if len(keep) else new.reset_index(drop=True)
            merged = merged.astype(STORE_COLUMNS).sort_values(["series_id", "timestamp"], kind="stable")
            written.append(self.artifacts.put_parquet(self.day_key(day), merged.reset_index(drop=True)))
        return written

    def read(self, start: datetime, end: datetime, *, series_ids: list[str] | None = None,
             columns: list[str] | None = None) -> pd.DataFrame:
        """Rows with start <= timestamp < end, optionally for some series."""
        import pandas as pd

        parts = []
        for day in day_range(start, end):
            frame = self.read_day(day)
            frame = frame[(frame["timestamp"] >= start) & (frame["timestamp"] < end)]
            if series_ids is not None:
                frame = frame[frame["series_id"].isin(series_ids)]
            parts.append(frame[columns] if columns else frame)
        if not parts:
            return empty_frame()[columns] if columns else empty_frame()
        return pd.concat(parts, ignore_index=True)

    def days(self) -> list[str]:
        return self.artifacts.partitions(DOMAIN, self.dataset)

    def quarantine(self, frame: pd.DataFrame, report: dict[str, Any], window_start: datetime,
                   window_end: datetime) -> str | None:
        if not len(frame) and not report.get("issues"):
            return None
        stem = f"{window_start:%H%M}-{window_end:%H%M}" if window_end - window_start < timedelta(days=1) \
            else "day"
        key = self.artifacts.key(DOMAIN, "quarantine", window_start, f"{stem}.parquet")
        if len(frame):
            self.artifacts.put_parquet(key, frame)
        self.artifacts.put_json(key.replace(".parquet", ".report.json"), report)
        return self.artifacts.uri(key)
