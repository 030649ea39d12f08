"""Triage: the evidence an on-call engineer would gather by hand, gathered automatically.

:func:`gather_evidence` returns one JSON-able dict per incident:

* ``signals`` - every metric the incident's alerts are about, and the ``primary`` one;
* ``metric`` - a snapshot of the primary signal around the incident (CloudWatch GetMetricData)
  with its forecast band: the anomaly detector's band (``aiops.anomaly.store`` scores) where it
  scored the series, else a seasonal baseline band (median +- 3 MAD of the same time of day over
  the previous days) computed here;
* ``related_alerts`` - the incident's alerts plus other open incidents of the same service;
* ``logs`` - ERROR lines from the service's CloudWatch Logs groups around the incident
  (``logs.filter_log_events``), counted by message;
* ``changes`` - CloudTrail records mentioning the affected resources in the day before
  (``aiops.security.collect.events_between``, the trail's S3 files);
* ``runbooks`` - catalog runbooks whose rule in ``include/incidents/runbooks.yaml`` matches;
* ``derived`` - the service's derived series (p99 latency, fault rate, log errors per 5 minutes,
  :mod:`aiops.metrics.derived`) at their worst during the incident against their expected band,
  e.g. "p99 latency 850 ms vs expected 120-180 ms".

Every part is best effort: a failing source is recorded as ``{"error": ...}`` and triage goes on.
"""

from __future__ import annotations

import json
import logging
import re
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

from aiops.account.permissions import permissions
from aiops.anomaly.store import AnomalyStore
from aiops.core import aws
from aiops.core.settings import get_settings
from aiops.incidents import series
from aiops.incidents.runbook_rules import baseline_band, matching_runbooks
from aiops.metrics import derived
from aiops.metrics.model import parse_series_id, series_id

PERMISSIONS = permissions(
    "incident evidence: log lines (metric series: aiops.incidents.series)",
    reader=(
        "logs:DescribeLogGroups",
        "logs:FilterLogEvents",
    ),
)

log = logging.getLogger(__name__)

BAND_HISTORY_DAYS = series.BAND_HISTORY_DAYS
SNAPSHOT_BEFORE = timedelta(hours=3)
SNAPSHOT_AFTER = timedelta(minutes=30)
ERROR_LEVELS = ("ERROR", "FATAL", "CRITICAL")


# -- signals -----------------------------------------------------------------------------------
def signal_of(alert: dict[str, Any]) -> dict[str, Any] | None:
    """The metric an alert is about: from ``alert.metric`` (a series_id) or a CloudWatch alarm payload."""
    base = {"source": alert.get("source"), "severity": alert.get("severity"), "time": alert.get("time"),
            "resource": alert.get("resource"), "event_id": alert.get("event_id"), "title": alert.get("title")}
    sid = alert.get("metric")
    if sid and sid.count("|") == 3:
        namespace, name, dims, stat = parse_series_id(sid)
        return {**base, "series_id": sid, "namespace": namespace, "metric": name, "dimensions": dims, "stat": stat}
    detail = (alert.get("raw") or {}).get("detail") or {}
    for query in (detail.get("configuration") or {}).get("metrics") or []:
        stat_block: dict[str, Any] = query.get("metricStat") or {}
        metric: dict[str, Any] = stat_block.get("metric") or {}
        if metric.get("name"):
            dims = {str(k): str(v) for k, v in (metric.get("dimensions") or {}).items()}
            stat = stat_block.get("stat", "Average")
            return {**base, "namespace": metric.get("namespace"), "metric": metric["name"], "dimensions": dims,
                    "stat": stat, "series_id": series_id(metric.get("namespace", ""), metric["name"], dims, stat)}
    return None


def signals_of(incident: dict[str, Any]) -> list[dict[str, Any]]:
    out, seen = [], set()
    for alert in incident.get("alerts") or []:
        sig = signal_of(alert)
        if sig and sig["series_id"] not in seen:
            seen.add(sig["series_id"])
            out.append(sig)
    return out


# -- metric snapshot + band --------------------------------------------------------------------
def _detector_band(sid: str, start: datetime, end: datetime) -> dict[datetime, tuple[float, float, float]]:
    frame = AnomalyStore().read("scores", start, end)
    if frame is None or not len(frame):
        return {}
    frame = frame[frame["series_id"] == sid]
    return {ts.to_pydatetime(): (float(f), float(lo), float(hi))
            for ts, f, lo, hi in zip(frame["timestamp"], frame["forecast"], frame["lower"], frame["upper"], strict=True)
            if lo == lo and hi == hi}  # NaN-free rows only


def metric_snapshot(signal: dict[str, Any], start: datetime, end: datetime, *, period: int = 300,
                    incident_start: datetime | None = None) -> dict[str, Any]:
    history = series.get_series(signal, start - timedelta(days=BAND_HISTORY_DAYS), end, period)
    window = [(ts, v) for ts, v in history if start <= ts < end]
    band_source = "seasonal_baseline"
    try:
        detector = _detector_band(signal["series_id"], start, end)
    except Exception as exc:  # the anomaly store may not exist yet
        log.info("no detector band for %s: %s", signal["series_id"], exc)
        detector = {}
    fallback = series.seasonal_band(history, [ts for ts, _ in window], period=period)
    if not any(fallback) and incident_start is not None:
        # too little history for a seasonal band: the pre-incident baseline instead

        flat = baseline_band(history, incident_start)
        fallback = [flat] * len(window)
        band_source = "pre_incident_baseline"
    bands: list[tuple[float, float, float] | None] = list(fallback)
    if detector and sum(ts in detector for ts, _ in window) >= len(window) // 2:
        # The detector scores what metrics_extract has stored, 15-25 minutes behind CloudWatch: the
        # newest points — the incident itself, during a live triage — have no detector band yet. They
        # are judged against the fallback band, never left unjudged (an RDS storm at 495 connections vs
        # ~130 was once reported as "0 points outside band" that way).
        newest = sum(1 for ts, _ in window if ts not in detector)
        bands = [detector.get(ts) or fb for (ts, _), fb in zip(window, fallback, strict=True)]
        band_source = "anomaly_detector" + (f" (+{band_source} for {newest} newest point(s))" if newest else "")
    points = []
    for (ts, value), band in zip(window, bands, strict=True):
        point: dict[str, Any] = {"t": ts.isoformat(), "value": value}
        if band:
            point.update(forecast=band[0], lower=band[1], upper=band[2],
                         outside=not band[1] <= value <= band[2])
        points.append(point)
    return {"series_id": signal["series_id"], "period": period, "band_source": band_source,
            "start": start.isoformat(), "end": end.isoformat(), "points": points,
            "outside_band": sum(1 for p in points if p.get("outside"))}


def band_now(signal: dict[str, Any], at: datetime, *, period: int = 300) -> tuple[float, float, float] | None:
    """The band at ``at`` (seasonal baseline from CloudWatch history): what 'back in band' is judged against."""
    history = series.get_series(signal, at - timedelta(days=BAND_HISTORY_DAYS, minutes=10), at, period)
    return series.seasonal_band(history, [at], period=period)[0]


# -- derived series (logs, traces) ---------------------------------------------------------------
def _fmt(value: float, unit: str) -> str:
    if unit == "s":
        return f"{value * 1000:.0f} ms"
    return f"{value:.1f}%" if unit == "%" else f"{value:.0f}"


def _fmt_range(lo: float, hi: float, unit: str) -> str:
    lo = max(lo, 0.0)
    if unit == "s":
        return f"{lo * 1000:.0f}-{hi * 1000:.0f} ms"
    return f"{lo:.1f}-{hi:.1f}%" if unit == "%" else f"{lo:.0f}-{hi:.0f}"


def derived_evidence(service: str | None, start: datetime, end: datetime, *, period: int = 300) -> dict[str, Any]:
    """The service's derived series at their worst in [start, end) vs the expected band there (the
    anomaly detector's band where it scored the point, else the seasonal baseline of the series)."""
    if not service:
        return {"series": []}
    out = []
    for ref in derived.series_refs():
        kind = derived.kind_of(ref.namespace, ref.metric)
        if kind is None or dict(ref.dimensions).get("Service") != service:
            continue
        history = derived.points(ref.series_id, start - timedelta(days=BAND_HISTORY_DAYS), end)
        window = [(ts, v) for ts, v in history if start <= ts < end]
        if not window:
            continue
        at, value = max(window, key=lambda p: p[1])
        band = _detector_band(ref.series_id, at, at + timedelta(seconds=1)).get(at)
        source = "anomaly_detector"
        if band is None:
            band, source = series.seasonal_band(history, [at], period=period)[0], "seasonal_baseline"
        item: dict[str, Any] = {"series_id": ref.series_id, "label": kind.label, "unit": kind.unit,
                                "t": at.isoformat(), "value": value, "band_source": source if band else None}
        text = f"{kind.label} {_fmt(value, kind.unit)}"
        if band:
            item.update(forecast=band[0], lower=band[1], upper=band[2], outside=not band[1] <= value <= band[2])
            text += f" vs expected {_fmt_range(band[1], band[2], kind.unit)}"
        item["text"] = text
        out.append(item)
    return {"series": sorted(out, key=lambda i: (not i.get("outside"), i["label"]))}


# -- logs ----------------------------------------------------------------------------------------
def service_log_groups(service: str | None, env: str | None, resource: str | None = None) -> list[str]:
    logs = aws.client("logs")
    groups: list[str] = []
    prefixes = [f"/matcarv/{service}/{env}/" if env else f"/matcarv/{service}/"] if service else []
    if resource and ":db:" in resource:
        prefixes.append(f"/aws/rds/instance/{resource.rsplit(':', 1)[-1]}/")
    for prefix in prefixes:
        for page in logs.get_paginator("describe_log_groups").paginate(logGroupNamePrefix=prefix):
            groups.extend(g["logGroupName"] for g in page.get("logGroups", []))
    return groups


def _level_and_message(message: str) -> tuple[str, str]:
    try:
        record = json.loads(message)
        if isinstance(record, dict):
            return str(record.get("level", "")).upper(), str(record.get("msg") or record.get("message") or message)
    except ValueError:
        pass
    match = re.search(r"\b(ERROR|FATAL|CRITICAL)\b", message)
    return (match.group(1) if match else ""), message


def error_lines(groups: list[str], start: datetime, end: datetime, *, samples: int = 20,
                max_events: int = 5000) -> dict[str, Any]:
    logs = aws.client("logs")
    counts: Counter[str] = Counter()
    sample: list[dict[str, Any]] = []
    first: datetime | None = None
    total = 0
    for group in groups:
        kwargs: dict[str, Any] = {"logGroupName": group, "startTime": int(start.timestamp() * 1000),
                                  "endTime": int(end.timestamp() * 1000), "filterPattern": "ERROR"}
        pages = logs.get_paginator("filter_log_events").paginate(**kwargs, PaginationConfig={"MaxItems": max_events})
        for page in pages:
            for event in page.get("events", []):
                level, msg = _level_and_message(event.get("message", ""))
                if level not in ERROR_LEVELS:
                    continue
                total += 1
                counts[msg] += 1
                at = datetime.fromtimestamp(event["timestamp"] / 1000, UTC)
                first = at if first is None or at < first else first
                if len(sample) < samples:
                    sample.append({"t": at.isoformat(), "log_group": group, "message": event.get("message", "")})
    return {"log_groups": groups, "start": start.isoformat(), "end": end.isoformat(), "errors": total,
            "first_error": first.isoformat() if first else None,
            "top_messages": [{"message": m, "count": n} for m, n in counts.most_common(10)], "samples": sample}


# -- recent changes ------------------------------------------------------------------------------
def recent_changes(resource_ids: list[str], start: datetime, end: datetime, *, limit: int = 50) -> dict[str, Any]:
    try:
        from aiops.security.collect import events_between  # lazy: optional collector, ImportError fallback
    except ImportError:  # the CloudTrail collector is not installed in this deployment
        return {"source": "cloudtrail", "available": False, "events": []}
    records = events_between(start, end, resource_ids=resource_ids or None)
    writes = [r for r in records if not r.get("readOnly", False)]
    return {"source": "cloudtrail", "available": True, "start": start.isoformat(), "end": end.isoformat(),
            "total": len(writes), "events": [{
                "t": r.get("eventTime"), "event": f"{r.get('eventSource', '').split('.')[0]}:{r.get('eventName')}",
                "who": (r.get("userIdentity") or {}).get("arn") or (r.get("userIdentity") or {}).get("type"),
                "source_ip": r.get("sourceIPAddress"), "error": r.get("errorCode")} for r in writes[-limit:]]}


# -- orchestration ---------------------------------------------------------------------------------
def _resource_ids(incident: dict[str, Any], signals: list[dict[str, Any]]) -> list[str]:
    ids: list[str] = []
    for value in [incident.get("root_resource"), *(a.get("resource") for a in incident.get("alerts") or [])]:
        if value:
            ids.append(str(value).rsplit("/", 1)[-1].rsplit(":", 1)[-1])
    for sig in signals:
        for dim in ("InstanceId", "DBInstanceIdentifier", "AutoScalingGroupName"):
            if dim in sig["dimensions"]:
                ids.append(sig["dimensions"][dim])
    return list(dict.fromkeys(i for i in ids if i))


def _safely(what: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
    try:
        return fn(*args, **kwargs)
    except Exception as exc:
        log.warning("triage: %s failed: %s", what, exc)
        return {"error": f"{type(exc).__name__}: {exc}"}


def gather_evidence(incident: dict[str, Any], *, now: datetime | None = None,
                    open_incidents: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    now = now or datetime.now(UTC)
    settings = get_settings()
    log_margin = timedelta(minutes=settings.incident_log_margin_minutes)
    first_seen: datetime = incident["first_seen"]
    last_seen: datetime = incident["last_seen"]
    signals = signals_of(incident)
    # The sources are independent network reads: gather them side by side (triage is on the
    # event -> remediation critical path).
    from concurrent.futures import ThreadPoolExecutor

    resource_ids = _resource_ids(incident, signals)
    log_window = (first_seen - log_margin, min(now, last_seen + log_margin))
    changes_window = (first_seen - timedelta(hours=settings.incident_changes_lookback_hours), last_seen)

    def logs_of() -> Any:
        groups = _safely("log groups", service_log_groups, incident.get("service"), incident.get("env"),
                         incident.get("root_resource"))
        return _safely("error lines", error_lines, groups, *log_window) if isinstance(groups, list) else groups

    with ThreadPoolExecutor(max_workers=4) as pool:
        logs_future = pool.submit(logs_of)
        changes_future = pool.submit(_safely, "recent changes", recent_changes, resource_ids, *changes_window)
        derived_future = pool.submit(_safely, "derived series", derived_evidence, incident.get("service"),
                                     first_seen - timedelta(minutes=15), min(now, last_seen + SNAPSHOT_AFTER))
        matches = _safely("runbook matching", matching_runbooks, incident, signals)
        primary = None
        if isinstance(matches, list) and matches:
            primary = next((s for s in signals if s["series_id"] == matches[0]["signal"]), None)
        primary = primary or (signals[0] if signals else None)
        snapshot_end = min(now, last_seen + SNAPSHOT_AFTER) + timedelta(minutes=5)
        metric = (_safely("metric snapshot", metric_snapshot, primary, first_seen - SNAPSHOT_BEFORE, snapshot_end,
                          incident_start=first_seen)
                  if primary else {"error": "no alert names a metric"})
        logs, changes, derived = logs_future.result(), changes_future.result(), derived_future.result()
    related = [{"incident_id": o["incident_id"], "title": o["title"], "state": o["state"],
                "severity": o["severity"], "first_seen": o["first_seen"].isoformat()}
               for o in open_incidents or [] if o["incident_id"] != incident["incident_id"]
               and o.get("service") and o.get("service") == incident.get("service")]
    return {
        "incident_id": incident["incident_id"], "title": incident["title"], "service": incident.get("service"),
        "env": incident.get("env"), "severity": incident["severity"], "gathered_at": now.isoformat(),
        "window": {"first_seen": first_seen.isoformat(), "last_seen": last_seen.isoformat()},
        "signals": signals, "primary_signal": primary, "resource_ids": resource_ids, "metric": metric,
        "related_alerts": {"alerts": [{k: a.get(k) for k in ("source", "event_id", "time", "title", "severity",
                                                             "resource", "metric")}
                                      for a in incident.get("alerts") or []],
                           "open_incidents_same_service": related},
        "logs": logs, "changes": changes, "runbooks": matches, "derived": derived,
    }
