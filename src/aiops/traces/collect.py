"""X-Ray into rows: GetServiceGraph per 5-minute window (nodes and edges with their statistics and
response-time histograms -> counts, error/fault rates, p50/p95/p99), GetTraceSummaries per chunk
(the slowest and the faulty traces per service and hour).

Percentiles come from the graph's ``ResponseTimeHistogram`` (X-Ray's own aggregation of the sampled
traces), so they are as exact as X-Ray's histogram buckets.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from aiops.account.permissions import permissions
from aiops.core import aws

PERMISSIONS = permissions(
    "X-Ray service graph and trace summaries",
    reader=("xray:GetServiceGraph", "xray:GetTraceSummaries"),
)

BUCKET = timedelta(minutes=5)
SLOW_PER_HOUR = 3  # slowest traces kept per service and hour (plus every faulty one, up to FAULTY_PER_HOUR)
FAULTY_PER_HOUR = 5


def percentile(histogram: Iterable[dict[str, Any]], q: float) -> float | None:
    """The q-quantile (0..1) of an X-Ray histogram ``[{"Value": seconds, "Count": n}]``."""
    buckets = sorted((float(h["Value"]), int(h["Count"])) for h in histogram if h.get("Count"))
    total = sum(n for _, n in buckets)
    if not total:
        return None
    rank, seen = q * total, 0
    for value, n in buckets:
        seen += n
        if seen >= rank:
            return value
    return buckets[-1][0]


def _stats_row(service: str, edge: str, at: datetime, stats: dict[str, Any],
               histogram: list[dict[str, Any]]) -> dict[str, Any] | None:
    total = int(stats.get("TotalCount") or 0)
    if not total:
        return None
    errors = int((stats.get("ErrorStatistics") or {}).get("TotalCount") or 0)
    throttles = int((stats.get("ErrorStatistics") or {}).get("ThrottleCount") or 0)
    faults = int((stats.get("FaultStatistics") or {}).get("TotalCount") or 0)
    return {"service": service, "edge": edge, "timestamp": at, "requests": total, "errors": errors,
            "faults": faults, "throttles": throttles, "error_rate": errors / total, "fault_rate": faults / total,
            "mean": float(stats.get("TotalResponseTime") or 0.0) / total,
            "p50": percentile(histogram, 0.50), "p95": percentile(histogram, 0.95), "p99": percentile(histogram, 0.99)}


def graph_rows(graph: dict[str, Any], at: datetime) -> list[dict[str, Any]]:
    """Rows for one window's service graph: one per service node (edge "") and one per edge."""
    names = {s["ReferenceId"]: s.get("Name") or "" for s in graph.get("Services", [])}
    rows = []
    for node in graph.get("Services", []):
        if node.get("Type") == "client" or not node.get("Name"):
            continue
        row = _stats_row(node["Name"], "", at, node.get("SummaryStatistics") or {},
                         node.get("ResponseTimeHistogram") or [])
        if row:
            rows.append(row)
        for edge in node.get("Edges", []):
            row = _stats_row(node["Name"], names.get(edge["ReferenceId"], str(edge["ReferenceId"])), at,
                             edge.get("SummaryStatistics") or {}, edge.get("ResponseTimeHistogram") or [])
            if row:
                rows.append(row)
    return rows


def service_graph_rows(start: datetime, end: datetime, client: Any = None) -> list[dict[str, Any]]:
    xray = client or aws.client("xray")
    rows: list[dict[str, Any]] = []
    at = start
    while at < end:
        nxt = min(at + BUCKET, end)
        for page in xray.get_paginator("get_service_graph").paginate(StartTime=at, EndTime=nxt):
            rows.extend(graph_rows(page, at))
        at = nxt
    return rows


def trace_summaries(start: datetime, end: datetime, client: Any = None) -> Iterable[dict[str, Any]]:
    xray = client or aws.client("xray")
    pages = xray.get_paginator("get_trace_summaries").paginate(StartTime=start, EndTime=end,
                                                                TimeRangeType="TraceId", Sampling=False)
    for page in pages:
        yield from page.get("TraceSummaries", [])


def _trace_start(trace_id: str) -> datetime:
    """X-Ray trace ids are ``1-<epoch seconds, 8 hex>-<96 bits>``: the request start."""
    return datetime.fromtimestamp(int(trace_id.split("-")[1], 16), UTC)


def slow_rows(summaries: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per entry service and hour: the SLOW_PER_HOUR slowest traces and up to FAULTY_PER_HOUR faulty ones."""
    groups: dict[tuple[str, datetime], list[dict[str, Any]]] = defaultdict(list)
    for s in summaries:
        entry = (s.get("EntryPoint") or {}).get("Name") or next(
            (x.get("Name") for x in s.get("ServiceIds", []) if x.get("Name")), None)
        if not entry:
            continue
        start = s.get("StartTime") or _trace_start(s["Id"])
        if isinstance(start, int | float):
            start = datetime.fromtimestamp(start, UTC)
        start = start.astimezone(UTC)
        http = s.get("Http") or {}
        groups[(entry, start.replace(minute=0, second=0, microsecond=0))].append({
            "service": entry, "timestamp": start, "trace_id": s["Id"],
            "duration": float(s.get("Duration") or 0.0), "response_time": float(s.get("ResponseTime") or 0.0),
            "error": bool(s.get("HasError")), "fault": bool(s.get("HasFault")), "url": http.get("HttpURL") or "",
            "status": int(http.get("HttpStatus") or 0)})
    rows = []
    for items in groups.values():
        slowest = sorted(items, key=lambda r: -r["response_time"])[:SLOW_PER_HOUR]
        faulty = [r for r in items if r["fault"] and r not in slowest][:FAULTY_PER_HOUR]
        rows.extend(slowest + faulty)
    return rows
