"""What every windowed collector shares (logs_collect, traces_collect): day-partitioned datasets whose
writes replace a time window, per-series quarantine of bad rows, and the watermark plan/publish steps.

* :class:`DatasetStore`: ``<domain>/<dataset>/dt=YYYY-MM-DD/<file>.parquet``; :meth:`DatasetStore.write`
  validates a window's rows, replaces the window with the good ones and puts the bad series aside in
  ``<domain>/quarantine/dt=.../`` with a report. Like the metrics store, a quarantined series keeps
  the rows it has stored for that window: nothing replaces good data but good data.
* :class:`Collection`: plan a run's range (conf ``start``/``end`` or ``backfill_days``, the
  watermark after downtime, else the data interval) in day chunks, and publish (advance the
  watermark, never backwards; sum the chunks' counts).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from aiops.core.artifacts import ArtifactStore
from aiops.core.state import StateStore
from aiops.metrics.pipeline import plan_range, split_days
from aiops.metrics.store import day_range

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger(__name__)

#: A row check: (name, frame -> boolean mask of the *bad* rows, what is wrong with them).
Check = tuple[str, Callable[["pd.DataFrame"], "pd.Series"], str]


@dataclass(frozen=True)
class Dataset:
    name: str
    filename: str
    columns: dict[str, str]
    order: tuple[str, ...]  # sort order, also the row's unique key
    identity: tuple[str, ...]  # the columns naming one series (what is quarantined as a whole)
    checks: tuple[Check, ...] = ()


def empty(columns: dict[str, str]) -> pd.DataFrame:
    import pandas as pd

    return pd.DataFrame({c: pd.Series(dtype=t) for c, t in columns.items()})


def typed(columns: dict[str, str], rows: list[dict[str, Any]]) -> pd.DataFrame:
    import pandas as pd

    return pd.DataFrame(rows, columns=list(columns)).astype(columns)


def validate(ds: Dataset, frame: pd.DataFrame, start: datetime,
             end: datetime) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, Any]]:
    """(good rows, quarantined rows, report). A series (``ds.identity``) with any bad row is
    quarantined whole: null keys, a timestamp outside [start, end), a duplicate key, or a failed check."""
    import pandas as pd

    checks: list[Check] = [
        ("keys_not_null", lambda f: f[list(ds.order)].isna().any(axis=1), "null key columns"),
        ("timestamp_in_window", lambda f: (f["timestamp"] < pd.Timestamp(start)) | (f["timestamp"] >= pd.Timestamp(end)),
         f"timestamp outside [{start.isoformat()}, {end.isoformat()})"),
        ("unique_key", lambda f: f.duplicated(list(ds.order), keep=False), f"duplicate ({', '.join(ds.order)})"),
        *ds.checks,
    ]
    report: dict[str, Any] = {"dataset": ds.name, "start": start.isoformat(), "end": end.isoformat(),
                              "rows_checked": len(frame), "quarantined": [], "issues": []}
    if not len(frame):
        return frame, frame, report
    ident = frame[list(ds.identity)].astype(str).agg("/".join, axis=1)
    bad_ids: set[str] = set()
    for name, bad_rows, detail in checks:
        mask = bad_rows(frame).fillna(False).astype(bool)
        for sid, n in ident[mask].value_counts().sort_index().items():
            report["issues"].append({"series": sid, "check": name, "detail": detail, "rows": int(n)})
            bad_ids.add(str(sid))
    report["quarantined"] = sorted(bad_ids)
    for issue in report["issues"]:
        log.warning("%s: quarantined %s: %s (%d row(s))", ds.name, issue["series"], issue["detail"], issue["rows"])
    bad = ident.isin(bad_ids)
    return frame[~bad].reset_index(drop=True), frame[bad].reset_index(drop=True), report


@dataclass
class DatasetStore:
    """A domain's day-partitioned datasets in the artifact store."""

    domain: str
    datasets: dict[str, Dataset]
    artifacts: ArtifactStore = field(default_factory=ArtifactStore)

    def key(self, dataset: str, day: Any) -> str:
        return self.artifacts.key(self.domain, dataset, day, self.datasets[dataset].filename)

    def frame(self, dataset: str, rows: list[dict[str, Any]]) -> pd.DataFrame:
        return typed(self.datasets[dataset].columns, rows)

    def read_day(self, dataset: str, day: Any) -> pd.DataFrame:
        got = self.artifacts.read_parquet(self.key(dataset, day))
        return empty(self.datasets[dataset].columns) if got is None else got

    def upsert(self, dataset: str, new: pd.DataFrame, start: datetime, end: datetime,
               held: set[str] | None = None) -> list[str]:
        """Replace [start, end) of each touched day with ``new``'s rows of that day; the series in
        ``held`` (identities, e.g. quarantined ones) keep their stored rows of the window."""
        import pandas as pd

        ds = self.datasets[dataset]
        written = []
        for day in day_range(start, end):
            day_start = datetime(day.year, day.month, day.day, tzinfo=UTC)
            lo, hi = max(start, day_start), min(end, day_start + timedelta(days=1))
            existing = self.read_day(dataset, day)
            outside = (existing["timestamp"] < lo) | (existing["timestamp"] >= hi)
            if held and len(existing):
                outside |= existing[list(ds.identity)].astype(str).agg("/".join, axis=1).isin(held)
            keep = existing[outside]
            add = new[(new["timestamp"] >= lo) & (new["timestamp"] < hi)]
            merged = pd.concat([keep, add], ignore_index=True) if len(keep) else add.reset_index(drop=True)
            merged = merged.astype(ds.columns).sort_values(list(ds.order), kind="stable").reset_index(drop=True)
            written.append(self.artifacts.put_parquet(self.key(dataset, day), merged))
        return written

    def quarantine(self, dataset: str, bad: pd.DataFrame, report: dict[str, Any], start: datetime,
                   end: datetime) -> str | None:
        if not len(bad) and not report.get("issues"):
            return None
        stem = f"{dataset}-{start:%H%M}-{end:%H%M}" if end - start < timedelta(days=1) else f"{dataset}-day"
        key = self.artifacts.key(self.domain, "quarantine", start, f"{stem}.parquet")
        if len(bad):
            self.artifacts.put_parquet(key, bad)
        self.artifacts.put_json(key.replace(".parquet", ".report.json"), report)
        return self.artifacts.uri(key)

    def write(self, dataset: str, frame: pd.DataFrame, start: datetime, end: datetime) -> dict[str, Any]:
        """Validate, store the good rows (window replaced), quarantine the bad series (their stored rows kept)."""
        good, bad, report = validate(self.datasets[dataset], frame, start, end)
        written = self.upsert(dataset, good, start, end, held=set(report["quarantined"]))
        return {"rows": len(good), "partitions": written, "quarantined": report["quarantined"],
                "quarantine": self.quarantine(dataset, bad, report, start, end)}

    def read(self, dataset: str, start: datetime, end: datetime, services: list[str] | None = None) -> pd.DataFrame:
        import pandas as pd

        parts = []
        for day in day_range(start, end):
            got = self.read_day(dataset, day)
            got = got[(got["timestamp"] >= start) & (got["timestamp"] < end)]
            if services is not None:
                got = got[got["service"].isin(services)]
            parts.append(got)
        return pd.concat(parts, ignore_index=True) if parts else empty(self.datasets[dataset].columns)

    def days(self, dataset: str) -> list[str]:
        return self.artifacts.partitions(self.domain, dataset)


@dataclass(frozen=True)
class Collection:
    """A watermarked collector's plan and publish steps (its DAG maps one collect task per day chunk)."""

    watermark: str
    label: str  # for the log: "Logs", "Traces"
    totals: tuple[str, ...] = ()  # numeric chunk results summed by publish
    unions: tuple[str, ...] = ("quarantined",)  # list chunk results merged by publish

    def plan(self, interval_start: datetime, interval_end: datetime, conf: dict[str, Any] | None) -> list[dict[str, str]]:
        watermark = StateStore().get_watermark(self.watermark)
        start, end, reason = plan_range(interval_start, interval_end, conf, watermark)
        chunks = split_days(start, end)
        log.info("%s [%s, %s): %s; %d chunk(s)", self.label, start.isoformat(), end.isoformat(), reason, len(chunks))
        return [c.to_dict() for c in chunks]

    def publish(self, results: list[dict[str, Any]], run_id: str | None = None) -> dict[str, Any]:
        """Advance the watermark to the newest chunk end (never backwards) and sum the chunks."""
        if not results:
            return {"chunks": 0}
        end = max(datetime.fromisoformat(r["end"]) for r in results)
        store = StateStore()
        current = store.get_watermark(self.watermark)
        if current is None or end > current:
            store.set_watermark(self.watermark, end, run_id=run_id)
        return {"chunks": len(results), "end": end.isoformat(),
                **{k: sum(r.get(k, 0) for r in results) for k in self.totals},
                **{k: sorted({x for r in results for x in r.get(k, [])}) for k in self.unions}}
