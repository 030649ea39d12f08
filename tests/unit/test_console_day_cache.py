"""The service page's bucket reads are cached per day, keyed by that day's objects' ETags (issue 17):
after a run rewrites today's partitions, the next load reads only today again — the older days of a
14-day view come from memory — and what it shows is the same as an uncached read."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pandas as pd

from aiops.console import data

DAY0 = datetime(2026, 11, 7, tzinfo=UTC)


class Listing:
    def __init__(self, etags: dict[str, str]) -> None:
        self.etags = etags

    def _listing(self, domain: str) -> dict[str, str]:
        return {k: v for k, v in self.etags.items() if k.startswith(domain)}


class Ctx:
    def __init__(self, etags: dict[str, str]) -> None:
        self.artifacts = Listing(etags)
        self.day_index: dict = {}


def _frame(start: datetime, end: datetime, version: int) -> pd.DataFrame:
    ts = pd.date_range(start, end, freq="5min", inclusive="left", tz=UTC)
    return pd.DataFrame({"timestamp": ts, "value": [float(version)] * len(ts)})


def test_only_the_rewritten_day_is_read_again_and_the_view_is_the_same_as_uncached():
    data._DAY_PIECES.clear()
    days = [DAY0 + timedelta(days=i) for i in range(14)]
    etags = {f"metrics/cloudwatch/dt={d.date().isoformat()}/part.parquet": "v1" for d in days}
    version = {d.date(): 1 for d in days}
    reads: list[datetime] = []

    def read(a: datetime, b: datetime) -> pd.DataFrame:
        reads.append(a)
        return _frame(a, b, version[a.date()])

    start, end = DAY0 + timedelta(hours=12), days[-1] + timedelta(hours=12)
    first = data.by_day(Ctx(etags), "metrics/", ("metrics", ("s1",)), start, end, read)
    assert len(reads) == 14
    assert first["timestamp"].min() == start
    assert first["timestamp"].max() < end
    assert len(first) == 13 * 288

    # the same objects: nothing is read again
    reads.clear()
    again = data.by_day(Ctx(etags), "metrics/", ("metrics", ("s1",)), start, end, read)
    assert reads == []
    assert again.equals(first)

    # a run rewrites today's partition (new ETag): only today is read, and the new values show
    version[days[-1].date()] = 2
    etags[f"metrics/cloudwatch/dt={days[-1].date().isoformat()}/part.parquet"] = "v2"
    reads.clear()
    later = data.by_day(Ctx(etags), "metrics/", ("metrics", ("s1",)), start, end + timedelta(minutes=15), read)
    assert reads == [days[-1]]
    uncached = pd.concat([_frame(d, d + timedelta(days=1), version[d.date()]) for d in days], ignore_index=True)
    uncached = uncached[(uncached["timestamp"] >= start) & (uncached["timestamp"] < end + timedelta(minutes=15))]
    assert later.reset_index(drop=True).equals(uncached.reset_index(drop=True))
    assert later[later["timestamp"] >= days[-1]]["value"].eq(2.0).all()


def test_pieces_are_per_part_so_services_do_not_share_them():
    data._DAY_PIECES.clear()
    etags = {f"logs/counts/dt={DAY0.date().isoformat()}/part.parquet": "v1"}
    calls: list[str] = []

    def reader(name: str):
        def read(a: datetime, b: datetime) -> pd.DataFrame:
            calls.append(name)
            return _frame(a, b, 1)
        return read

    end = DAY0 + timedelta(hours=6)
    data.by_day(Ctx(etags), "logs/", ("counts", ("checkout",)), DAY0, end, reader("checkout"))
    data.by_day(Ctx(etags), "logs/", ("counts", ("catalog",)), DAY0, end, reader("catalog"))
    data.by_day(Ctx(etags), "logs/", ("counts", ("checkout",)), DAY0, end, reader("checkout"))
    assert calls == ["checkout", "catalog"]


def test_the_warmer_reads_every_service_once_per_new_watermark(monkeypatch):
    mark = datetime(2026, 11, 20, 12, tzinfo=UTC)
    seen: list[tuple[str, str, datetime]] = []

    class FakeCtx:
        def metrics_watermark(self):
            return mark

        def services(self):
            return ["catalog", "checkout"]

    monkeypatch.setattr(data, "Context", FakeCtx)
    monkeypatch.setattr(data, "service_view", lambda ctx, s, rng, end=None: seen.append((s, rng, end)))
    assert data.warm_once(None) == mark
    assert seen == [("catalog", "14d", mark), ("checkout", "14d", mark)]
    seen.clear()
    assert data.warm_once(mark) == mark
    assert seen == []
    assert data.start_warmer(0) is None  # 0 turns it off


def test_the_warmer_starts_only_in_a_process_that_serves_the_console(monkeypatch):
    """Airflow builds the plugin's app in every process (task runners too): building it starts
    nothing; the first request does."""
    from fastapi.testclient import TestClient

    from aiops.console import app as ui
    from aiops.core.settings import get_settings

    started: list[float] = []
    monkeypatch.setattr(data, "start_warmer", lambda every: started.append(every))
    monkeypatch.setenv("AIOPS_CONSOLE_WARM_SECONDS", "60")
    get_settings.cache_clear()
    try:
        app = ui.create_app()
        assert started == []
        TestClient(app, raise_server_exceptions=False).get("/status")
        assert started == [60]
    finally:
        get_settings.cache_clear()
