"""Derived series: per-service series computed from logs and traces, scored like CloudWatch series.

A collector that derives series (``traces_collect``: fault rate and p99 latency per service;
``logs_collect``: error lines per 5 minutes) publishes them here, in the metrics store's own shape
(:data:`aiops.metrics.model.STORE_COLUMNS`, one row per series and timestamp) under its own dataset
``metrics/derived-<source>/dt=.../`` and with its own series list
``metrics/series/latest/derived-<source>.json`` (separate per source, so two collectors never
write the same object). Anomaly detection enumerates and reads series through :func:`series_refs`
and :func:`read`, which put the CloudWatch series and every derived source side by side: one
scoring path, one alert shape (service / env / team on the series' tags, so alerting routes them).

Series ids follow the CloudWatch convention with an ``AIOps/...`` namespace and a ``Service``
dimension, e.g. ``AIOps/Traces|P99Latency|Service=checkout|p99``; the metric names fall in the
existing model families (``*Latency`` seconds, ``*Percent*``, ``*Count``).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from aiops.core.artifacts import ArtifactStore
from aiops.core.settings import get_settings
from aiops.metrics.collect import SeriesRef
from aiops.metrics.model import STORE_COLUMNS
from aiops.metrics.pipeline import SERIES_KEY as CLOUDWATCH_SERIES_KEY
from aiops.metrics.store import MetricsStore, empty_frame

if TYPE_CHECKING:
    import pandas as pd


@dataclass(frozen=True)
class DerivedMetric:
    """One derived series kind: how it is named and what it means."""

    source: str  # "traces" | "logs"
    namespace: str
    metric: str
    stat: str
    label: str  # for people: "p99 latency"
    unit: str  # "s" (shown in ms), "%", "count"


P99_LATENCY = DerivedMetric("traces", "AIOps/Traces", "P99Latency", "p99", "p99 latency", "s")
FAULT_RATE = DerivedMetric("traces", "AIOps/Traces", "FaultRatePercent", "Average", "fault rate (15 min)", "%")
LOG_ERRORS = DerivedMetric("logs", "AIOps/Logs", "ErrorCount", "Sum", "log errors per 5 min", "count")
METRICS = (P99_LATENCY, FAULT_RATE, LOG_ERRORS)
SOURCES = ("traces", "logs")
#: The DAG (and watermark name) that collects each source: anomaly_detection waits for a live one.
COLLECTORS = {"traces": "traces_collect", "logs": "logs_collect"}
NAMESPACES = {m.namespace for m in METRICS}


def dataset(source: str) -> str:
    return f"derived-{source}"


def series_key(source: str) -> str:
    return f"metrics/series/latest/derived-{source}.json"


def is_derived(namespace: str | None) -> bool:
    return namespace in NAMESPACES


def kind_of(namespace: str, metric: str) -> DerivedMetric | None:
    return next((m for m in METRICS if m.namespace == namespace and m.metric == metric), None)


def store(source: str, artifacts: ArtifactStore | None = None) -> MetricsStore:
    return MetricsStore(artifacts or ArtifactStore(), dataset=dataset(source))


def service_tags(artifacts: ArtifactStore | None = None) -> dict[str, dict[str, str]]:
    """service -> {"env", "team"}: the most common tags of the service's CloudWatch resources
    (the estate's tags, as discovered by metrics_extract; no extra AWS calls)."""
    raw = (artifacts or ArtifactStore()).get_json(CLOUDWATCH_SERIES_KEY) or []
    seen: dict[str, Counter[tuple[str, str]]] = {}
    for r in raw:
        tags = r.get("tags") or {}
        if tags.get("service"):
            seen.setdefault(tags["service"], Counter())[(tags.get("env", ""), tags.get("team", ""))] += 1
    out = {}
    for service, counts in seen.items():
        prod = [k for k in counts if k[0] == "prod"]
        env, team = max(prod, key=lambda k: counts[k]) if prod else counts.most_common(1)[0][0]
        out[service] = {"env": env, "team": team}
    return out


def ref(kind: DerivedMetric, service: str, tags: dict[str, str], region: str | None = None) -> SeriesRef:
    clean = {k: v for k, v in {"service": service, **tags}.items() if v}
    return SeriesRef(kind.namespace, kind.metric, (("Service", service),), kind.stat,
                     region or get_settings().regions[0], service, tuple(sorted(clean.items())))


def publish(source: str, points: pd.DataFrame, start: datetime, end: datetime, *,
            tags: dict[str, dict[str, str]] | None = None, artifacts: ArtifactStore | None = None) -> dict[str, Any]:
    """Store derived points (columns ``kind`` (a :class:`DerivedMetric`'s metric name), ``service``,
    ``timestamp``, ``value``) for [start, end) and register their series. Series absent from ``points`` keep their
    stored rows (the metrics store's upsert: nothing replaces data but data). When the estate's tags
    are known, only its services get series (X-Ray also names remote dependencies: redis, a payment
    gateway), so every derived alert has a service, env and team to route on."""
    import pandas as pd

    artifacts = artifacts or ArtifactStore()
    tags = service_tags(artifacts) if tags is None else tags
    refs: dict[str, SeriesRef] = {}
    parts = []
    kinds = {m.metric: m for m in METRICS if m.source == source}
    for (name, service), g in points.groupby(["kind", "service"], sort=True) if len(points) else []:
        if tags and str(service) not in tags:
            continue  # not one of the estate's services (a remote dependency in the trace graph): no owner to page
        r = ref(kinds[str(name)], str(service), {k: v for k, v in tags.get(str(service), {}).items() if k in ("env", "team")})
        refs[r.series_id] = r
        parts.append(pd.DataFrame({
            "series_id": r.series_id, "timestamp": pd.to_datetime(g["timestamp"], utc=True),
            "value": g["value"].astype(float).to_numpy(), "namespace": r.namespace, "metric": r.metric,
            "stat": r.stat, "dimensions": f"Service={service}", "resource_id": r.resource_id,
            "service": str(service), "env": r.tag("env"), "team": r.tag("team")}))
    frame = (pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=list(STORE_COLUMNS)))
    written = store(source, artifacts).upsert(frame.astype(STORE_COLUMNS), start, end)
    if refs:
        known = {SeriesRef.from_dict(d).series_id: d for d in artifacts.get_json(series_key(source)) or []}
        known.update({sid: r.to_dict() for sid, r in refs.items()})
        artifacts.put_json(series_key(source), [known[sid] for sid in sorted(known)])
    return {"series": sorted(refs), "rows": len(frame), "partitions": written}


def series_refs(artifacts: ArtifactStore | None = None) -> list[SeriesRef]:
    """Every series anomaly detection scores: the CloudWatch series list, then each derived source's."""
    artifacts = artifacts or ArtifactStore()
    keys = [CLOUDWATCH_SERIES_KEY, *(series_key(s) for s in SOURCES)]
    return [SeriesRef.from_dict(d) for key in keys for d in artifacts.get_json(key) or []]


def read(start: datetime, end: datetime, *, series_ids: list[str] | None = None,
         columns: list[str] | None = None, artifacts: ArtifactStore | None = None) -> pd.DataFrame:
    """Rows of the CloudWatch store and the derived stores, start <= timestamp < end."""
    import pandas as pd

    artifacts = artifacts or ArtifactStore()
    wanted = set(series_ids) if series_ids is not None else None
    parts = [MetricsStore(artifacts).read(start, end, series_ids=series_ids, columns=columns)]
    for source in SOURCES:
        ns = {m.namespace for m in METRICS if m.source == source}
        if wanted is not None and not any(sid.split("|", 1)[0] in ns for sid in wanted):
            continue  # no derived series of this source asked for: skip its reads
        parts.append(store(source, artifacts).read(start, end, series_ids=series_ids, columns=columns))
    parts = [p for p in parts if len(p)]
    if not parts:
        return empty_frame()[columns] if columns else empty_frame()
    return pd.concat(parts, ignore_index=True)


def points(series_id: str, start: datetime, end: datetime,
           artifacts: ArtifactStore | None = None) -> list[tuple[datetime, float]]:
    """(timestamp, value) of one derived series, oldest first (triage reads these, not CloudWatch)."""
    frame = read(start, end, series_ids=[series_id], columns=["timestamp", "value"], artifacts=artifacts)
    frame = frame.sort_values("timestamp")
    return [(ts.to_pydatetime(), float(v)) for ts, v in zip(frame["timestamp"], frame["value"], strict=True)]
