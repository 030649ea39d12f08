"""What the console pages show, read from stored data only (artifact store + state store + Airflow's DB).

Nothing here calls an AWS API other than the artifact bucket (S3) the platform itself wrote; every
section degrades to ``{"error": ...}`` so one broken store never takes a page down. "Now" is the
platform's own clock: the metrics watermark (the end of the newest complete extraction), so a
replayed or simulated account reads as of its data, and a live one as of a few minutes ago.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter, OrderedDict, defaultdict
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import desc, func, select

from aiops.anomaly.store import AnomalyStore
from aiops.compliance import history
from aiops.compliance.exceptions import load_exceptions
from aiops.compliance.registry import checks
from aiops.core.artifacts import ArtifactStore
from aiops.core.state import (
    StateStore,
    alert_dead_letters,
    alert_ledger,
    audit_log,
    compliance_results,
    compliance_sweeps,
    incidents,
    remediation_requests,
    slo_history,
    watermarks,
)
from aiops.cost import decisions
from aiops.cost.rightsizing import DATASET, DOMAIN, FILENAME
from aiops.incidents import store as istore
from aiops.logs.store import LogsStore
from aiops.metrics.model import series_id
from aiops.metrics.pipeline import SERIES_KEY, WATERMARK
from aiops.metrics.store import MetricsStore, day_range, empty_frame
from aiops.metrics.windowed import empty
from aiops.traces.store import TracesStore

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger(__name__)
T = TypeVar("T")

RANGES = {"6h": timedelta(hours=6), "24h": timedelta(hours=24), "3d": timedelta(days=3),
          "7d": timedelta(days=7), "14d": timedelta(days=14)}
KEY_METRICS = ("CPUUtilization", "RequestCount", "HTTPCode_Target_5XX_Count", "TargetResponseTime",
               "DatabaseConnections", "FreeStorageSpace", "ReadLatency", "NetworkIn")
PENDING_REQUEST = ("awaiting_approval", "planned")


def safe(fn: Callable[[], T], what: str) -> T | dict[str, str]:
    try:
        return fn()
    except Exception as exc:  # a page shows the failing part, never a 500
        log.warning("console: %s failed: %s", what, exc, exc_info=True)
        return {"error": f"{what}: {type(exc).__name__}: {exc}"}


def _utc(value: Any) -> Any:
    if isinstance(value, datetime) and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


def _row(mapping: Any) -> dict[str, Any]:
    return {k: _utc(v) for k, v in dict(mapping).items()}


_CACHE: OrderedDict[tuple[str, str, str], Any] = OrderedDict()  # (kind, key, etag) -> parsed object
_CACHE_SIZE = 512
# Listings are reused for a few seconds across requests: a page may lag a new partition by this much.
LISTING_TTL_SECONDS = 5.0
_LISTINGS: dict[tuple[str, str], tuple[float, dict[str, str]]] = {}
_cache_lock = threading.Lock()


class CachingArtifacts(ArtifactStore):
    """The artifact store as the console reads it: one listing per dataset prefix and request gives
    every object's ETag; parsed objects are kept across requests keyed by (key, ETag), so a page
    re-reads only what changed since (a re-run or backfill rewrites an object: new ETag, re-read).
    The cached frames are shared: callers filter them (new frames) and never modify them in place."""

    def __init__(self) -> None:
        super().__init__()
        self._listings: dict[str, dict[str, str]] = {}

    @staticmethod
    def _dataset_prefix(key: str) -> str:
        return key.split("/", 1)[0] + "/"  # one listing per domain (metrics/, anomaly/, logs/, ...)

    def _listing(self, prefix: str) -> dict[str, str]:
        if prefix not in self._listings:
            now = time.monotonic()
            with _cache_lock:
                hit = _LISTINGS.get((self.bucket, prefix))
            if hit and now - hit[0] < LISTING_TTL_SECONDS:
                self._listings[prefix] = hit[1]
                return hit[1]
            self.ensure_bucket()
            found: dict[str, str] = {}
            for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix):
                found.update({o["Key"]: o["ETag"] for o in page.get("Contents", [])})
            self._listings[prefix] = found
            with _cache_lock:
                _LISTINGS[(self.bucket, prefix)] = (now, found)
        return self._listings[prefix]

    def _cached(self, kind: str, key: str, load: Callable[[], Any]) -> Any:
        etag = self._listing(self._dataset_prefix(key)).get(key)
        if etag is None:
            return None
        token = (kind, key, etag)
        with _cache_lock:
            if token in _CACHE:
                _CACHE.move_to_end(token)
                return _CACHE[token]
        value = load()
        with _cache_lock:
            _CACHE[token] = value
            while len(_CACHE) > _CACHE_SIZE:
                _CACHE.popitem(last=False)
        return value

    def list_keys(self, prefix: str) -> list[str]:
        return sorted(k for k in self._listing(self._dataset_prefix(prefix)) if k.startswith(prefix))

    def read_parquet(self, key: str) -> Any:
        return self._cached("parquet", key, lambda: ArtifactStore.read_parquet(self, key))

    def get_json(self, key: str) -> Any:
        return self._cached("json", key, lambda: ArtifactStore.get_json(self, key))

    def get_bytes(self, key: str) -> bytes | None:
        return self._cached("bytes", key, lambda: ArtifactStore.get_bytes(self, key))


class Context:
    """One request's view of the stores (clients and small lookups are shared by its sections)."""

    def __init__(self) -> None:
        self.state = StateStore()
        self.state.migrate()
        self.artifacts = CachingArtifacts()
        self._refs: list[dict[str, Any]] | None = None
        self.day_index: dict[str, dict[str, tuple[tuple[str, str], ...]]] = {}

    # -- the clock ---------------------------------------------------------------------------------
    def metrics_watermark(self) -> datetime | None:
        """The newest metrics watermark of any account, from the state store (no STS call: the
        console reads stored data only)."""
        with self.state.engine.connect() as conn:
            wm = conn.execute(select(func.max(watermarks.c.value)).where(watermarks.c.name == WATERMARK)).scalar()
        return _utc(wm) if wm else None

    def as_of(self) -> datetime:
        wm = self.metrics_watermark()
        return wm if wm else datetime.now(UTC).replace(second=0, microsecond=0)

    # -- series and services -----------------------------------------------------------------------
    def series_refs(self) -> list[dict[str, Any]]:
        if self._refs is None:
            self._refs = self.artifacts.get_json(SERIES_KEY) or []
        return self._refs

    def services(self) -> list[str]:
        names = {s for r in self.series_refs() for s in (r.get("tags", {}).get("service") or "").split(",")}
        with self.state.engine.connect() as conn:
            names |= {r[0] for r in conn.execute(select(incidents.c.service).distinct())}
            names |= {r[0] for r in conn.execute(select(slo_history.c.service).distinct())}
        return sorted(n for n in names if n)


# -- overview --------------------------------------------------------------------------------------
def overview(ctx: Context) -> dict[str, Any]:
    now = ctx.as_of()
    services = ctx.services()
    rows: dict[str, dict[str, Any]] = {s: {"service": s, "open_incidents": 0, "anomalies_24h": 0,
                                           "budget_left": None, "fastest_burn": None, "slo": None,
                                           "mtd_usd": None, "forecast_usd": None, "failing": 0}
                                       for s in services}
    with ctx.state.engine.connect() as conn:
        for service, n in conn.execute(select(incidents.c.service, func.count()).where(
                incidents.c.state.in_(("detected", "triaged", "remediating", "escalated")))
                .group_by(incidents.c.service)):
            rows.setdefault(service or "(none)", {"service": service or "(none)"})["open_incidents"] = n
    anomalies = safe(lambda: anomaly_counts(ctx, now - timedelta(hours=24), now), "anomalies")
    if isinstance(anomalies, dict) and "error" not in anomalies:
        for service, n in anomalies.items():
            if service in rows:
                rows[service]["anomalies_24h"] = n
    for s in slo_latest(ctx, now):
        row = rows.get(s["service"])
        if row is None:
            continue
        if row["budget_left"] is None or (s["budget_remaining"] is not None
                                          and s["budget_remaining"] < row["budget_left"]):
            row["budget_left"], row["slo"] = s["budget_remaining"], s["slo_id"]
        burn = s.get("fastest_burn")
        if burn and (row["fastest_burn"] is None or burn[1] > row["fastest_burn"][1]):
            row["fastest_burn"] = burn
    cost = latest_cost_summary(ctx, now.date())
    if cost and "error" not in cost:
        for t in cost.get("tables", {}).get("service_tag", []):
            if t["key"] in rows:
                rows[t["key"]]["mtd_usd"] = t.get("mtd_usd")
                rows[t["key"]]["dod_pct"] = t.get("dod_pct")
    failing = compliance_failing_by_service(ctx)
    for service, n in failing.items():
        if service in rows:
            rows[service]["failing"] = n
    return {"as_of": now, "rows": list(rows.values()), "cost": cost,
            "compliance": safe(lambda: compliance_latest(ctx), "compliance"),
            "pending": safe(lambda: pending_approvals(ctx), "approvals"),
            "freshness": safe(lambda: freshness(ctx, now), "freshness")}


def anomaly_counts(ctx: Context, start: datetime, end: datetime) -> dict[str, int]:
    frame = AnomalyStore(ctx.artifacts).read("anomalies", start, end)
    if frame is None or not len(frame):
        return {}
    col = frame["service"].fillna("(none)") if "service" in frame else None
    return {} if col is None else {str(k): int(v) for k, v in col.value_counts().items()}


def slo_latest(ctx: Context, now: datetime) -> list[dict[str, Any]]:
    """The newest history row per SLO at or before ``now``."""
    with ctx.state.engine.connect() as conn:
        latest = (select(slo_history.c.slo_id, func.max(slo_history.c.evaluated_at).label("at"))
                  .where(slo_history.c.evaluated_at <= now).group_by(slo_history.c.slo_id).subquery())
        rows = [_row(r._mapping) for r in conn.execute(
            select(slo_history).join(latest, (slo_history.c.slo_id == latest.c.slo_id)
                                     & (slo_history.c.evaluated_at == latest.c.at)).order_by(slo_history.c.slo_id))]
    for r in rows:
        burns = {k: v for k, v in (r.get("burn_rates") or {}).items() if v is not None}
        r["fastest_burn"] = max(burns.items(), key=lambda kv: kv[1]) if burns else None
    return rows


def latest_cost_summary(ctx: Context, day: date) -> dict[str, Any] | None:
    days = [d for d in ctx.artifacts.partitions("cost", "reports") if d <= day.isoformat()]
    if not days:
        return None
    doc = ctx.artifacts.get_json(ctx.artifacts.key("cost", "reports", days[-1], "summary.json"))
    return doc if isinstance(doc, dict) else None


def _latest_sweep(ctx: Context) -> dict[str, Any] | None:
    with ctx.state.engine.connect() as conn:
        row = conn.execute(select(compliance_sweeps).order_by(desc(compliance_sweeps.c.as_of)).limit(1)).first()
    return _row(row._mapping) if row else None


def compliance_failing_by_service(ctx: Context) -> dict[str, int]:
    sweep = _latest_sweep(ctx)
    if not sweep:
        return {}
    by_resource: dict[str, str] = {}
    for r in ctx.series_refs():
        if r.get("tags", {}).get("service"):
            by_resource[r["resource_id"]] = r["tags"]["service"]
    out: Counter[str] = Counter()
    with ctx.state.engine.connect() as conn:
        for (rid,) in conn.execute(select(compliance_results.c.resource_id).where(
                compliance_results.c.sweep_id == sweep["sweep_id"], compliance_results.c.effective == "FAILED")):
            service = by_resource.get(rid)
            if service:
                out[service] += 1
    return dict(out)


def compliance_latest(ctx: Context) -> dict[str, Any] | None:
    sweep = _latest_sweep(ctx)
    if not sweep:
        return None
    return {"sweep_id": sweep["sweep_id"], "as_of": sweep["as_of"], "score": sweep["score"],
            "failed": (sweep["counts"] or {}).get("FAILED", 0), "diff": sweep.get("diff") or {}}


def pending_approvals(ctx: Context) -> list[dict[str, Any]]:
    with ctx.state.engine.connect() as conn:
        rows = conn.execute(select(remediation_requests).where(remediation_requests.c.status.in_(PENDING_REQUEST))
                            .order_by(remediation_requests.c.created_at))
        return [_row(r._mapping) for r in rows]


def freshness(ctx: Context, now: datetime) -> dict[str, Any]:
    wm = ctx.metrics_watermark()
    quarantined = []
    for key in ctx.artifacts.list_keys("metrics/quarantine/"):
        if key.endswith(".report.json"):
            quarantined.append(key)
    with ctx.state.engine.connect() as conn:
        dead = conn.execute(select(func.count()).select_from(alert_dead_letters)).scalar() or 0
        last_dead = conn.execute(select(func.max(alert_dead_letters.c.received_at))).scalar()
    return {"watermark": _utc(wm), "lag": (now - _utc(wm)) if wm else None, "quarantined": quarantined[-10:],
            "quarantined_total": len(quarantined), "dead_letters": dead, "last_dead_letter": _utc(last_dead),
            "dags": safe(dag_runs, "Airflow DAG runs")}


def dag_runs() -> list[dict[str, Any]]:
    """The last successful run of every DAG (Airflow's metadata DB, read-only)."""
    from airflow.models.dag import DagModel
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session
    from airflow.utils.state import DagRunState

    with create_session() as session:
        dags = [d for (d,) in session.execute(select(DagModel.dag_id).where(DagModel.is_stale.is_(False))
                                               .order_by(DagModel.dag_id))]
        good = dict(session.execute(select(DagRun.dag_id, func.max(DagRun.end_date))
                                    .where(DagRun.state == DagRunState.SUCCESS).group_by(DagRun.dag_id)).all())
        last = dict(session.execute(select(DagRun.dag_id, func.max(DagRun.run_after)).group_by(DagRun.dag_id)).all())
        failed = dict(session.execute(select(DagRun.dag_id, func.max(DagRun.end_date))
                                      .where(DagRun.state == DagRunState.FAILED).group_by(DagRun.dag_id)).all())
    out = []
    for d in dags:
        ok, bad = good.get(d), failed.get(d)
        out.append({"dag_id": d, "last_success": _utc(ok), "last_run": _utc(last.get(d)),
                    "failed_since": bool(bad is not None and (ok is None or bad > ok))})
    return out


# -- service ---------------------------------------------------------------------------------------
_VIEWS: OrderedDict[tuple[Any, ...], dict[str, Any]] = OrderedDict()  # service page parts read from the bucket
_VIEWS_SIZE = 64
STORED_DOMAINS = ("metrics/", "anomaly/", "logs/", "traces/")


def stored_fingerprint(ctx: Context, start: datetime, end: datetime) -> tuple[tuple[str, str], ...]:
    """(key, ETag) of every bucket object a service page over [start, end) may read: unchanged
    fingerprint, unchanged page parts (a re-run or backfill changes an ETag)."""
    days = {d.isoformat() for d in day_range(start, end)}
    found = []
    for domain in STORED_DOMAINS:
        for key, etag in ctx.artifacts._listing(domain).items():
            dt = key.split("/dt=", 1)[1][:10] if "/dt=" in key else None
            if dt is None or dt in days:
                found.append((key, etag))
    return tuple(sorted(found))


_DAY_PIECES: OrderedDict[tuple[Any, ...], Any] = OrderedDict()  # (part, day, day's ETags) -> filtered frame
_DAY_PIECES_SIZE = 4096


def _day_fingerprints(ctx: Context, domain: str) -> dict[str, tuple[tuple[str, str], ...]]:
    """``day -> ((key, ETag), ...)`` of one domain's partitioned objects (one listing per request)."""
    cached = ctx.day_index.get(domain)
    if cached is None:
        found: defaultdict[str, list[tuple[str, str]]] = defaultdict(list)
        for key, etag in ctx.artifacts._listing(domain).items():
            if "/dt=" in key:
                found[key.split("/dt=", 1)[1][:10]].append((key, etag))
        cached = ctx.day_index[domain] = {day: tuple(sorted(v)) for day, v in found.items()}
    return cached


def by_day(ctx: Context, domain: str, part: tuple[Any, ...], start: datetime, end: datetime,
           read: Callable[[datetime, datetime], pd.DataFrame | None]) -> pd.DataFrame | None:
    """``read(start, end)`` assembled from whole-day reads kept across requests, each keyed by the
    ETags of that day's objects in ``domain``: when a run rewrites today's partitions (every 15
    minutes) only today's piece is read and filtered again; the other days come from memory. The
    pieces are shared: callers get a new, clipped frame and never modify a piece."""
    import pandas as pd

    prints = _day_fingerprints(ctx, domain)
    pieces = []
    for day in day_range(start, end):
        token = (domain, part, day.isoformat(), prints.get(day.isoformat(), ()))
        with _cache_lock:
            piece = _DAY_PIECES.get(token, _MISSING)
            if piece is not _MISSING:
                _DAY_PIECES.move_to_end(token)
        if piece is _MISSING:
            day_start = datetime(day.year, day.month, day.day, tzinfo=UTC)
            piece = read(day_start, day_start + timedelta(days=1))
            with _cache_lock:
                _DAY_PIECES[token] = piece
                while len(_DAY_PIECES) > _DAY_PIECES_SIZE:
                    _DAY_PIECES.popitem(last=False)
        if piece is not None and len(piece):
            pieces.append(piece)
    if not pieces:
        return None
    frame = pd.concat(pieces, ignore_index=True) if len(pieces) > 1 else pieces[0]
    return frame[(frame["timestamp"] >= start) & (frame["timestamp"] < end)]


_MISSING = object()


def service_view(ctx: Context, service: str, rng: str, end: datetime | None = None) -> dict[str, Any]:
    end = end or ctx.as_of()
    start = end - RANGES.get(rng, RANGES["24h"])
    token = (service, start, end, stored_fingerprint(ctx, start, end))
    with _cache_lock:
        stored = _VIEWS.get(token)
        if stored is not None:
            _VIEWS.move_to_end(token)
    if stored is None:
        refs = [r for r in ctx.series_refs() if service in (r.get("tags", {}).get("service") or "").split(",")]
        stored = {"metrics": safe(lambda: service_metrics(ctx, refs, start, end), "metrics"),
                  "logs": safe(lambda: logs_view(ctx, service, start, end), "logs"),
                  "traces": safe(lambda: traces_view(ctx, service, start, end), "traces")}
        if not any(isinstance(v, dict) and "error" in v for v in stored.values()):
            with _cache_lock:
                _VIEWS[token] = stored
                while len(_VIEWS) > _VIEWS_SIZE:
                    _VIEWS.popitem(last=False)
    return {"service": service, "start": start, "end": end, "range": rng, "ranges": list(RANGES), **stored,
            "alarms": safe(lambda: alarms(ctx, service, start, end), "alarms"),
            "incidents": safe(lambda: service_incidents(ctx, service, start, end), "incidents")}


def _pick_series(refs: list[dict[str, Any]], limit: int = 8) -> list[dict[str, Any]]:
    order = {m: i for i, m in enumerate(KEY_METRICS)}
    ranked = sorted(refs, key=lambda r: (order.get(r["metric"], 99), r["resource_id"], r["metric"]))
    picked = []
    for r in ranked[:limit]:
        picked.append({**r, "series_id": series_id(r["namespace"], r["metric"], r["dimensions"], r["stat"])})
    return picked


def service_metrics(ctx: Context, refs: list[dict[str, Any]], start: datetime,
                    end: datetime) -> list[dict[str, Any]]:
    ids = sorted(series_id(r["namespace"], r["metric"], r["dimensions"], r["stat"]) for r in refs)
    if not ids:
        return []

    def read_scores(day_start: datetime, day_end: datetime) -> pd.DataFrame | None:
        got = AnomalyStore(ctx.artifacts).read("scores", day_start, day_end)
        return got[got["series_id"].isin(ids)] if got is not None else None

    frame = by_day(ctx, "metrics/", ("metrics", tuple(ids)), start, end,
                   lambda a, b: MetricsStore(ctx.artifacts).read(a, b, series_ids=ids,
                                                                 columns=["series_id", "timestamp", "value"]))
    if frame is None:
        frame = empty_frame()[["series_id", "timestamp", "value"]]
    scores = by_day(ctx, "anomaly/", ("scores", tuple(ids)), start, end, read_scores)
    anomalous = set(scores[scores["is_anomaly"]]["series_id"]) if scores is not None and len(scores) else set()
    # the anomalous series first, then the key metrics
    chosen = [r for r in _pick_series(refs, limit=len(refs)) if r["series_id"] in anomalous][:6]
    chosen += [r for r in _pick_series(refs) if r not in chosen][: max(0, 8 - len(chosen))]
    out = []
    by_series = {sid: g for sid, g in frame.groupby("series_id")} if len(frame) else {}
    by_score = {sid: g for sid, g in scores.groupby("series_id")} if scores is not None and len(scores) else {}
    for r in chosen:
        g = by_series.get(r["series_id"])
        sc = by_score.get(r["series_id"])
        points = list(zip(g["timestamp"].dt.to_pydatetime(), g["value"].astype(float), strict=True)) \
            if g is not None else []
        band, marks = [], []
        if sc is not None:
            band = [(t, lo, hi) for t, lo, hi in zip(sc["timestamp"].dt.to_pydatetime(), sc["lower"], sc["upper"],
                                                       strict=True) if lo == lo and hi == hi]
            an = sc[sc["is_anomaly"]]
            marks = [(t, float(v), f"anomaly {t:%m-%d %H:%M} value {v:.3g} score {s:.2f}")
                     for t, v, s in zip(an["timestamp"].dt.to_pydatetime(), an["value"], an["anomaly_score"],
                                        strict=True)]
        out.append({"series_id": r["series_id"], "metric": r["metric"], "resource_id": r["resource_id"],
                    "namespace": r["namespace"], "points": points, "band": band, "anomalies": marks})
    return out


def _day_cached_read(ctx: Context, store: Any, domain: str) -> Callable[..., pd.DataFrame]:
    """A windowed store's ``read(dataset, start, end, services)`` through :func:`by_day`."""
    plain = type(store).read

    def read(dataset: str, start: datetime, end: datetime, services: list[str] | None = None) -> pd.DataFrame:
        part = (dataset, tuple(sorted(services)) if services is not None else None)
        got = by_day(ctx, domain, part, start, end, lambda a, b: plain(store, dataset, a, b, services))
        return got if got is not None else empty(store.datasets[dataset].columns)

    return read


def logs_view(ctx: Context, service: str, start: datetime, end: datetime) -> dict[str, Any] | None:
    store = LogsStore(ctx.artifacts)
    store.read = _day_cached_read(ctx, store, "logs/")  # type: ignore[method-assign]
    counts = store.read_counts(start, end, services=[service])
    sigs = store.top_signatures(start, end, service=service, limit=8)
    if counts is None or not len(counts):
        return None
    points = sorted(zip(counts["timestamp"].dt.to_pydatetime(), counts["errors"].astype(float),
                        counts["warnings"].astype(float), strict=True))
    return {"errors": [(t, e) for t, e, _ in points], "warnings": [(t, w) for t, _, w in points],
            "total_errors": int(sum(e for _, e, _ in points)), "signatures": sigs}


def traces_view(ctx: Context, service: str, start: datetime, end: datetime) -> dict[str, Any] | None:
    store = TracesStore(ctx.artifacts)
    store.read = _day_cached_read(ctx, store, "traces/")  # type: ignore[method-assign]
    stats = store.read_stats(start, end, services=[service])
    if stats is None or not len(stats):
        return None
    stats = stats[stats["edge"] == ""].sort_values("timestamp")
    ts = stats["timestamp"].dt.to_pydatetime()
    return {"p50": list(zip(ts, stats["p50"], strict=True)), "p95": list(zip(ts, stats["p95"], strict=True)),
            "p99": list(zip(ts, stats["p99"], strict=True)),
            "error_rate": list(zip(ts, stats["error_rate"] * 100, strict=True)),
            "fault_rate": list(zip(ts, stats["fault_rate"] * 100, strict=True)),
            "requests": int(stats["requests"].sum()),
            "slow": store.slow_traces(start, end, service=service, limit=8),
            "edges": store.edges(start, end, service=service)}


def alarms(ctx: Context, service: str, start: datetime, end: datetime) -> list[dict[str, Any]]:
    with ctx.state.engine.connect() as conn:
        rows = conn.execute(select(alert_ledger.c.event_id, alert_ledger.c.time, alert_ledger.c.source,
                                   alert_ledger.c.state, alert_ledger.c.severity, alert_ledger.c.decision,
                                   alert_ledger.c.resource, alert_ledger.c.alert)
                            .where(alert_ledger.c.service == service, alert_ledger.c.time >= start,
                                   alert_ledger.c.time < end).order_by(alert_ledger.c.time).limit(200))
        out = []
        for r in rows:
            m = _row(r._mapping)
            m["title"] = (m.pop("alert") or {}).get("title") or m["resource"]
            out.append(m)
        return out


def service_incidents(ctx: Context, service: str, start: datetime, end: datetime) -> dict[str, Any]:
    with ctx.state.engine.connect() as conn:
        rows = [_row(r._mapping) for r in conn.execute(
            select(incidents).where(incidents.c.service == service, incidents.c.first_seen < end)
            .order_by(incidents.c.first_seen))]
        rows = [r for r in rows if (r["resolved_at"] or end) >= start]
        ids = [r["incident_id"] for r in rows]
        runs = [_row(r._mapping) for r in conn.execute(
            select(remediation_requests).where(remediation_requests.c.incident_id.in_(ids))
            .order_by(remediation_requests.c.created_at))] if ids else []
    changes: list[dict[str, Any]] = []
    for r in rows:
        key = (r.get("links") or {}).get("evidence")
        ev = ctx.artifacts.get_json(key) if key else None
        for c in ((ev or {}).get("changes") or {}).get("events", []) if isinstance(ev, dict) else []:
            changes.append({**c, "incident_id": r["incident_id"]})
    return {"incidents": rows, "executions": runs, "changes": changes}


# -- incidents -------------------------------------------------------------------------------------
def incident_list(ctx: Context, limit: int = 200) -> list[dict[str, Any]]:
    with ctx.state.engine.connect() as conn:
        return [_row(r._mapping) for r in conn.execute(
            select(incidents).order_by(incidents.c.detected_at.desc()).limit(limit))]


def incident_detail(ctx: Context, incident_id: str) -> dict[str, Any] | None:
    try:
        row = istore.get(incident_id, store=ctx.state)
    except istore.IncidentNotFound:
        return None
    timeline = istore.timeline(incident_id, store=ctx.state)
    links = row.get("links") or {}
    evidence = safe(lambda: ctx.artifacts.get_json(links["evidence"]) if links.get("evidence") else None, "evidence")
    with ctx.state.engine.connect() as conn:
        requests = [_row(r._mapping) for r in conn.execute(
            select(remediation_requests).where(remediation_requests.c.incident_id == incident_id)
            .order_by(remediation_requests.c.created_at))]
    postmortem = None
    if links.get("postmortem_md"):
        md = ctx.artifacts.get_bytes(links["postmortem_md"])
        postmortem = md.decode() if md else None
    return {"incident": row, "timeline": timeline, "evidence": evidence, "requests": requests,
            "postmortem_md": postmortem}


# -- cost ------------------------------------------------------------------------------------------
def cost_view(ctx: Context) -> dict[str, Any]:
    now = ctx.as_of()
    days = ctx.artifacts.partitions("cost", "reports")
    summary = latest_cost_summary(ctx, now.date() + timedelta(days=1))
    trend = []
    for d in days[-30:]:
        doc = ctx.artifacts.get_json(ctx.artifacts.key("cost", "reports", d, "summary.json")) if d != (
            summary or {}).get("day") else summary
        if isinstance(doc, dict):
            trend.append((datetime.fromisoformat(d).replace(tzinfo=UTC), float(doc["total"]["day_usd"])))
    rec_days = ctx.artifacts.partitions(DOMAIN, DATASET)
    recs = ctx.artifacts.get_json(ctx.artifacts.key(DOMAIN, DATASET, rec_days[-1], FILENAME)) if rec_days else None
    return {"as_of": now, "summary": summary, "report_days": days, "trend": trend,
            "recommendations": (recs or {}).get("recommendations", []),
            "decisions": safe(lambda: decisions.history(ctx.state), "decisions"),
            "savings": safe(lambda: decisions.realised_savings(now, ctx.state), "realised savings")}


# -- compliance ------------------------------------------------------------------------------------
def compliance_view(ctx: Context) -> dict[str, Any]:
    now = ctx.as_of()
    trend = history.trend(ctx.state, now + timedelta(days=365), limit=30)
    sweep = _latest_sweep(ctx)
    failing: dict[str, list[dict[str, Any]]] = defaultdict(list)
    if sweep:
        metas = {cid: c.meta for cid, c in checks().items()}
        with ctx.state.engine.connect() as conn:
            for r in conn.execute(select(compliance_results).where(
                    compliance_results.c.sweep_id == sweep["sweep_id"], compliance_results.c.effective == "FAILED")
                    .order_by(compliance_results.c.check_id)):
                m = _row(r._mapping)
                meta = metas.get(m["check_id"])
                m["title"] = meta.title if meta else m["check_id"]
                m["cis"] = ", ".join(meta.cis) if meta else ""
                failing[meta.cis_section if meta else "Other"].append(m)
    exceptions = safe(lambda: [e.model_dump() for e in load_exceptions()], "exceptions")
    return {"as_of": now, "trend": [(_utc(t["as_of"]), t["score"]) for t in trend if t["score"] is not None],
            "sweep": sweep, "failing": dict(sorted(failing.items())), "exceptions": exceptions}


# -- SLOs ------------------------------------------------------------------------------------------
def slo_view(ctx: Context, rng: str = "7d") -> dict[str, Any]:
    now = ctx.as_of()
    start = now - RANGES.get(rng, RANGES["7d"])
    latest = slo_latest(ctx, now)
    with ctx.state.engine.connect() as conn:
        rows = conn.execute(select(slo_history.c.slo_id, slo_history.c.evaluated_at,
                                   slo_history.c.budget_remaining, slo_history.c.burn_rates)
                            .where(slo_history.c.evaluated_at > start, slo_history.c.evaluated_at <= now)
                            .order_by(slo_history.c.slo_id, slo_history.c.evaluated_at))
        series: dict[str, dict[str, Any]] = defaultdict(lambda: {"budget": [], "burn": defaultdict(list)})
        for sid, at, budget, burns in rows:
            at = _utc(at)
            if (at.minute % 30) and rng not in ("6h", "24h"):  # 30-minute points for the longer ranges
                continue
            series[sid]["budget"].append((at, None if budget is None else budget * 100))
            for window, v in (burns or {}).items():
                series[sid]["burn"][window].append((at, v))
    return {"as_of": now, "start": start, "range": rng, "ranges": list(RANGES), "latest": latest,
            "series": {k: {"budget": v["budget"], "burn": dict(v["burn"])} for k, v in series.items()}}


# -- audit -----------------------------------------------------------------------------------------
def audit_view(ctx: Context, limit: int = 300) -> dict[str, Any]:
    with ctx.state.engine.connect() as conn:
        reqs = [_row(r._mapping) for r in conn.execute(
            select(remediation_requests).order_by(remediation_requests.c.created_at.desc()).limit(limit))]
        entries = [_row(r._mapping) for r in conn.execute(
            select(audit_log).order_by(audit_log.c.id.desc()).limit(limit))]
    return {"requests": reqs, "entries": entries}


def timed(fn: Callable[..., T], *args: Any, **kwargs: Any) -> tuple[T, float]:
    t0 = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, (time.perf_counter() - t0) * 1000


# -- background warm-up ----------------------------------------------------------------------------
_warmer: threading.Thread | None = None


def warm_once(last: datetime | None = None) -> datetime | None:
    """Read every service's last 14 days into the day-piece cache when the metrics watermark moved
    since ``last``; returns the watermark it warmed for (``last`` when nothing moved)."""
    ctx = Context()
    mark = ctx.metrics_watermark()
    if mark is None or mark == last:
        return last
    t0 = time.perf_counter()
    services = ctx.services()
    for service in services:
        service_view(ctx, service, "14d", end=mark)
    log.info("console cache warmed for %d service(s) as of %s in %.0f ms", len(services), mark.isoformat(),
             (time.perf_counter() - t0) * 1000)
    return mark


def start_warmer(every_seconds: float) -> threading.Thread | None:
    """One daemon thread per process running :func:`warm_once` every ``every_seconds`` (errors are
    logged and retried next time: a page never waits for it). Started by the console app after its
    first request, so only a process that serves the console runs it (Airflow builds the plugin's
    app in every process it loads plugins in, task runners included)."""
    global _warmer
    if every_seconds <= 0 or (_warmer is not None and _warmer.is_alive()):
        return _warmer

    def loop() -> None:
        last = None
        while True:
            try:
                last = warm_once(last)
            except Exception:  # a missing bucket or store: the pages say so; try again later
                log.warning("console cache warm-up failed; retrying in %.0f s", every_seconds, exc_info=True)
            time.sleep(every_seconds)

    _warmer = threading.Thread(target=loop, name="aiops-console-warmer", daemon=True)
    _warmer.start()
    return _warmer
