"""Where anomaly detection keeps its work in the artifact store.

* ``anomaly/models/dt=<day>/batch-<b>.json.gz``: fitted models used to score ``<day>`` (each fit
  only on data before that day), ``{series_id: FittedModel.to_json()}``.
* ``anomaly/state/dt=<day>/batch-<b>.json.gz``: detector state at 00:00 UTC of ``<day>``; a run
  re-scores from its day's checkpoint, so any interval can be re-run or backfilled exactly.
* ``anomaly/scores/dt=<day>/batch-<b>.parquet``: every scored point (score, decision, band, reason).
* ``anomaly/anomalies/dt=<day>/batch-<b>.parquet``: the anomalous points with series metadata.

Batches are ``stable_batch(series_id, n)``: a series stays in its batch as long as the number of
batches (``AIOPS_ANOMALY_BATCHES``) is unchanged; changing it re-warms state from history.
"""

from __future__ import annotations

import gzip
import hashlib
import json
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from aiops.core.artifacts import ArtifactStore
from aiops.metrics.store import day_range

if TYPE_CHECKING:
    import pandas as pd

DOMAIN = "anomaly"
SCORE_STORE_COLUMNS = {
    "series_id": "string",
    "timestamp": "datetime64[ns, UTC]",
    "value": "float64",
    "anomaly_score": "float64",
    "is_anomaly": "bool",
    "forecast": "float64",
    "lower": "float64",
    "upper": "float64",
    "reason": "string",
    "cw_lower": "float64",  # CloudWatch Anomaly Detection band, where the account has a detector
    "cw_upper": "float64",
}


def stable_batch(series_id: str, batches: int) -> int:
    digest = hashlib.blake2b(series_id.encode(), digest_size=4).digest()
    return int.from_bytes(digest, "big") % batches


@dataclass
class AnomalyStore:
    artifacts: ArtifactStore = field(default_factory=ArtifactStore)

    def _blob_key(self, dataset: str, day: date, batch: int) -> str:
        return self.artifacts.key(DOMAIN, dataset, day, f"batch-{batch:03d}.json.gz")

    def _put_blob(self, dataset: str, day: date, batch: int, blob: dict[str, str]) -> str:
        # level 6 (zlib's default): 3x faster than gzip's 9 on the models blob, 4% larger
        data = gzip.compress(json.dumps(blob, separators=(",", ":")).encode(), compresslevel=6, mtime=0)
        return self.artifacts.put_bytes(self._blob_key(dataset, day, batch), data, "application/gzip")

    def _get_blob(self, dataset: str, day: date, batch: int) -> dict[str, str]:
        data = self.artifacts.get_bytes(self._blob_key(dataset, day, batch))
        return {} if data is None else json.loads(gzip.decompress(data))

    # models ------------------------------------------------------------------------------------
    def load_models(self, day: date, batch: int) -> dict[str, str]:
        return self._get_blob("models", day, batch)

    def save_models(self, day: date, batch: int, models: dict[str, str]) -> str:
        return self._put_blob("models", day, batch, models)

    # state checkpoints at 00:00 UTC ------------------------------------------------------------
    def load_state(self, day: date, batch: int) -> dict[str, str]:
        return self._get_blob("state", day, batch)

    def save_state(self, day: date, batch: int, states: dict[str, str]) -> str:
        return self._put_blob("state", day, batch, states)

    # scores and anomalies: one Parquet file per (day, batch), so mapped tasks never contend --------
    def _frame_key(self, dataset: str, day: date, batch: int) -> str:
        return self.artifacts.key(DOMAIN, dataset, day, f"batch-{batch:03d}.parquet")

    def upsert(self, dataset: str, batch: int, frame: pd.DataFrame, start: datetime, end: datetime) -> list[str]:
        """Replace [start, end) of this batch's file in each touched day partition with ``frame``."""
        import pandas as pd

        written = []
        for day in day_range(start, end):
            key = self._frame_key(dataset, day, batch)
            existing = self.artifacts.read_parquet(key)
            new = frame[frame["timestamp"].dt.date == day] if len(frame) else frame
            if existing is not None and len(existing):
                keep = existing[(existing["timestamp"] < start) | (existing["timestamp"] >= end)]
                merged = pd.concat([keep, new], ignore_index=True) if len(new) else keep
            else:
                merged = new
            merged = merged.sort_values(["series_id", "timestamp"], kind="stable").reset_index(drop=True)
            written.append(self.artifacts.put_parquet(key, merged))
        return written

    def read(self, dataset: str, start: datetime, end: datetime) -> pd.DataFrame | None:
        """All batches' rows with start <= timestamp < end (None when nothing is stored)."""
        import pandas as pd

        parts = []
        for day in day_range(start, end):
            prefix = f"{DOMAIN}/{dataset}/dt={day.isoformat()}/"
            for key in self.artifacts.list_keys(prefix):
                frame = self.artifacts.read_parquet(key)
                if frame is not None and len(frame):
                    parts.append(frame[(frame["timestamp"] >= start) & (frame["timestamp"] < end)])
        return pd.concat(parts, ignore_index=True) if parts else None

    def describe(self) -> dict[str, Any]:
        return {dataset: self.artifacts.partitions(DOMAIN, dataset) for dataset in ("models", "state", "anomalies")}
