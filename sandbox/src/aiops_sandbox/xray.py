"""Sandbox extension 5: X-Ray's read APIs computed from the segments the account sent.

moto 5.2.5 stores ``PutTraceSegments`` documents but answers ``GetServiceGraph`` with an empty
graph and ``GetTraceSummaries`` with placeholders (``ResponseTime`` 1, integer ``Duration``, no
``ServiceIds``/``EntryPoint``/``Http``, no paging, naive local times). This module replaces those two
responses with ones computed from moto's stored segments, in the real API's shape
(``tests/unit/test_sandbox_xray.py`` validates them against botocore's service model):

* ``GetServiceGraph(StartTime, EndTime)``: one node per service (segment ``name``) whose root
  segments start in the window, with ``SummaryStatistics`` (ok / error (4xx) / throttle (429) /
  fault (5xx) counts, total response time), ``ResponseTimeHistogram`` and ``DurationHistogram``
  (1 ms buckets); one ``Edges`` entry per downstream service called (a ``remote`` subsegment whose
  ``name`` is the callee), with the same statistics for those calls; plus the ``client`` node.
* ``GetTraceSummaries(StartTime, EndTime, [FilterExpression], [NextToken])``: traces whose first
  segment starts in the window, 100 per page, with ``Id``, ``StartTime``, ``Duration``,
  ``ResponseTime``, ``HasError``/``HasFault``/``HasThrottle``, ``Http``, ``ServiceIds``,
  ``EntryPoint``. ``FilterExpression`` supports ``service("name")``, ``fault``, ``error`` and
  ``responsetime > N`` joined by ``AND``; anything else is an ``InvalidRequestException``.

An index (trace start -> trace) is rebuilt lazily when new segments arrive, so a 14-day history of
5-minute windows is answered without rescanning every trace per call. History is bulk-loaded into
that index (``load_history``, the sandbox's ``/aiops-sandbox/xray`` action) rather than through
moto's per-segment storage; those traces are not returned by ``BatchGetTraces``.
"""

from __future__ import annotations

import base64
import bisect
import json
import re
import threading
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

PAGE = 100
_lock = threading.Lock()


@dataclass
class Call:
    callee: str
    response_time: float
    error: bool
    fault: bool
    throttle: bool


@dataclass
class Trace:
    trace_id: str
    service: str
    start: float
    end: float
    error: bool
    fault: bool
    throttle: bool
    http: dict[str, Any]
    services: list[str]
    calls: list[Call] = field(default_factory=list)

    @property
    def response_time(self) -> float:
        return self.end - self.start


def _flags(doc: dict[str, Any]) -> tuple[bool, bool, bool]:
    status = int(((doc.get("http") or {}).get("response") or {}).get("status") or 0)
    fault = bool(doc.get("fault")) or status >= 500
    throttle = bool(doc.get("throttle")) or status == 429
    error = bool(doc.get("error")) or 400 <= status < 500
    return error, fault, throttle


def _trace_of(trace_id: str, segments: list[Any]) -> Trace | None:
    docs = []
    for seg in segments:
        try:
            docs.append(json.loads(seg.raw))
        except (TypeError, ValueError):
            continue
    roots = [d for d in docs if not d.get("parent_id") and d.get("end_time") is not None]
    if not roots:
        return None
    root = min(roots, key=lambda d: float(d["start_time"]))
    error, fault, throttle = _flags(root)
    request = (root.get("http") or {}).get("request") or {}
    response = (root.get("http") or {}).get("response") or {}
    http = {k: v for k, v in {"HttpURL": request.get("url"), "HttpMethod": request.get("method"),
                              "HttpStatus": response.get("status"), "ClientIp": request.get("client_ip"),
                              "UserAgent": request.get("user_agent")}.items() if v is not None}
    calls = []
    for doc in docs:
        for sub in doc.get("subsegments") or []:
            if sub.get("namespace") == "remote" and sub.get("end_time") is not None:
                e, f, t = _flags(sub)
                calls.append(Call(str(sub.get("name")), float(sub["end_time"]) - float(sub["start_time"]), e, f, t))
    others = {d["name"] for d in docs if d.get("name")} | {c.callee for c in calls}
    names = [root["name"], *sorted(others - {root["name"]})]
    return Trace(trace_id, root["name"], float(root["start_time"]), float(root["end_time"]), error or any(
        _flags(d)[0] for d in docs), fault or any(_flags(d)[1] for d in docs), throttle, http, names, calls)


@dataclass
class _Raw:
    raw: str


@dataclass
class TraceIndex:
    """Traces by start time: moto's stored segments plus bulk-loaded history documents."""

    seen: int = 0
    bulk: list[str] = field(default_factory=list)  # history documents not parsed yet
    bulk_traces: list[Trace] = field(default_factory=list)
    starts: list[float] = field(default_factory=list)
    traces: list[Trace] = field(default_factory=list)

    def refresh(self, collection: Any) -> None:
        items = collection._traces
        if len(items) == self.seen and not self.bulk:
            return
        for doc in self.bulk:
            trace = _trace_of(json.loads(doc)["trace_id"], [_Raw(doc)])
            if trace is not None:
                self.bulk_traces.append(trace)
        self.bulk = []
        built = list(self.bulk_traces)
        for tid, item in list(items.items()):
            if item.get("finished"):
                trace = _trace_of(tid, item["segments"])
                if trace is not None:
                    built.append(trace)
        built.sort(key=lambda t: t.start)
        self.traces, self.starts, self.seen = built, [t.start for t in built], len(items)

    def window(self, start: float, end: float) -> list[Trace]:
        return self.traces[bisect.bisect_left(self.starts, start):bisect.bisect_left(self.starts, end)]


_indexes: dict[int, TraceIndex] = {}


def index_of(backend: Any, refresh: bool = True) -> TraceIndex:
    with _lock:
        idx = _indexes.setdefault(id(backend), TraceIndex())
        if refresh:
            idx.refresh(backend._segment_collection)
        return idx


def load_history(backend: Any, documents: list[str]) -> int:
    """Bulk-load single-segment history traces (parsed on the next read): seeding 14 days of
    sampled traces through moto's per-segment storage takes ~10 s; this takes milliseconds.
    Such traces answer GetServiceGraph / GetTraceSummaries but not BatchGetTraces."""
    idx = index_of(backend, refresh=False)
    with _lock:
        idx.bulk.extend(documents)
    return len(documents)


def _epoch(value: Any) -> float:
    if isinstance(value, int | float):
        return float(value)
    text = str(value)
    try:
        return float(text)
    except ValueError:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC).timestamp()


def _histogram(values: list[float]) -> list[dict[str, Any]]:
    counts = Counter(round(v, 3) for v in values)
    return [{"Value": v, "Count": n} for v, n in sorted(counts.items())]


def _statistics(items: list[tuple[float, bool, bool, bool]]) -> dict[str, Any]:
    errors = sum(1 for _, e, f, t in items if e and not f and not t)
    throttles = sum(1 for _, _, f, t in items if t and not f)
    faults = sum(1 for _, _, f, _ in items if f)
    total = len(items)
    return {"OkCount": total - errors - throttles - faults,
            "ErrorStatistics": {"ThrottleCount": throttles, "OtherCount": errors, "TotalCount": errors + throttles},
            "FaultStatistics": {"OtherCount": faults, "TotalCount": faults},
            "TotalCount": total, "TotalResponseTime": round(sum(rt for rt, *_ in items), 6)}


def service_graph(backend: Any, start: Any, end: Any) -> dict[str, Any]:
    t0, t1 = _epoch(start), _epoch(end)
    traces = index_of(backend).window(t0, t1)
    names = sorted({t.service for t in traces} | {c.callee for t in traces for c in t.calls})
    ref = {name: i + 1 for i, name in enumerate(names)}
    nodes = []
    for name in names:
        own = [t for t in traces if t.service == name]
        inbound = [(c.response_time, c.error, c.fault, c.throttle) for t in traces for c in t.calls if c.callee == name]
        items = [(t.response_time, t.error, t.fault, t.throttle) for t in own] or inbound
        edges = []
        for callee in sorted({c.callee for t in own for c in t.calls}):
            calls = [(c.response_time, c.error, c.fault, c.throttle) for t in own for c in t.calls if c.callee == callee]
            edges.append({"ReferenceId": ref[callee], "StartTime": t0, "EndTime": t1,
                          "SummaryStatistics": _statistics(calls),
                          "ResponseTimeHistogram": _histogram([c[0] for c in calls]), "Aliases": []})
        nodes.append({"ReferenceId": ref[name], "Name": name, "Names": [name],
                      "Root": bool(own), "Type": "AWS::EC2::Instance" if own else "remote", "State": "active",
                      "StartTime": t0, "EndTime": t1, "Edges": edges,
                      "SummaryStatistics": _statistics(items),
                      "DurationHistogram": _histogram([i[0] for i in items]),
                      "ResponseTimeHistogram": _histogram([i[0] for i in items])})
    roots = [n for n in nodes if n["Root"]]
    if roots:  # the callers outside the graph, as X-Ray shows them
        nodes.append({"ReferenceId": 0, "Name": "client", "Names": ["client"], "Root": True, "Type": "client",
                      "State": "unknown", "StartTime": t0, "EndTime": t1, "SummaryStatistics": {},
                      "DurationHistogram": [], "ResponseTimeHistogram": [],
                      "Edges": [{"ReferenceId": n["ReferenceId"], "StartTime": t0, "EndTime": t1,
                                 "SummaryStatistics": n["SummaryStatistics"],
                                 "ResponseTimeHistogram": n["ResponseTimeHistogram"], "Aliases": []} for n in roots]})
    return {"StartTime": t0, "EndTime": t1, "Services": nodes, "ContainsOldGroupVersions": False}


class InvalidFilter(ValueError):
    pass


_TERM = re.compile(r'^(?:service\("(?P<service>[^"]+)"\)|(?P<flag>fault|error|throttle)(?:\s*=\s*true)?|'
                   r"responsetime\s*>\s*(?P<rt>[0-9.]+))$")


def _predicate(expression: str | None) -> Any:
    if not expression:
        return lambda t: True
    checks = []
    for term in re.split(r"\s+AND\s+", expression.strip(), flags=re.IGNORECASE):
        m = _TERM.match(term.strip())
        if not m:
            raise InvalidFilter(f"unsupported filter term {term!r} (the sandbox supports service(\"x\"), fault, "
                                "error, throttle, responsetime > N joined by AND)")
        if m["service"]:
            name = m["service"]
            checks.append(lambda t, n=name: n in t.services)
        elif m["flag"]:
            checks.append(lambda t, f=m["flag"]: getattr(t, f))
        else:
            checks.append(lambda t, v=float(m["rt"]): t.response_time > v)
    return lambda t: all(c(t) for c in checks)


def trace_summaries(backend: Any, request: dict[str, Any]) -> dict[str, Any]:
    t0, t1 = _epoch(request["StartTime"]), _epoch(request["EndTime"])
    keep = _predicate(request.get("FilterExpression"))
    matched = [t for t in index_of(backend).window(t0, t1) if keep(t)]
    offset = 0
    if request.get("NextToken"):
        offset = int(json.loads(base64.b64decode(request["NextToken"]))["offset"])
    page = matched[offset:offset + PAGE]
    out: dict[str, Any] = {
        "TraceSummaries": [{
            "Id": t.trace_id, "StartTime": t.start, "Duration": round(t.end - t.start, 3),
            "ResponseTime": round(t.response_time, 3), "HasFault": t.fault, "HasError": t.error,
            "HasThrottle": t.throttle, "IsPartial": False, "Http": t.http,
            "ServiceIds": [{"Name": n, "Names": [n], "Type": "AWS::EC2::Instance"} for n in t.services],
            "EntryPoint": {"Name": t.service, "Names": [t.service], "Type": "AWS::EC2::Instance"},
            "Annotations": {}, "Users": [], "ResourceARNs": []} for t in page],
        "ApproximateTime": t1, "TracesProcessedCount": len(matched)}
    if offset + PAGE < len(matched):
        out["NextToken"] = base64.b64encode(json.dumps({"offset": offset + PAGE}).encode()).decode()
    return out


def install() -> None:
    """Replace moto's XRay ``GetServiceGraph`` / ``GetTraceSummaries`` responses (idempotent)."""
    from moto.xray.responses import XRayResponse

    if getattr(XRayResponse, "_aiops_sandbox", False):
        return

    def _body(self: Any) -> dict[str, Any]:
        return json.loads(self.body or "{}")

    def get_service_graph(self: Any) -> Any:
        req = _body(self)
        if "StartTime" not in req or "EndTime" not in req:
            return json.dumps({"__type": "InvalidRequestException", "message": "StartTime and EndTime are required"}), \
                {"status": 400}
        return json.dumps(service_graph(self.xray_backend, req["StartTime"], req["EndTime"]))

    def get_trace_summaries(self: Any) -> Any:
        req = _body(self)
        if "StartTime" not in req or "EndTime" not in req:
            return json.dumps({"__type": "InvalidRequestException", "message": "StartTime and EndTime are required"}), \
                {"status": 400}
        try:
            return json.dumps(trace_summaries(self.xray_backend, req))
        except InvalidFilter as exc:
            return json.dumps({"__type": "InvalidRequestException", "message": str(exc)}), {"status": 400}

    XRayResponse.service_graph = get_service_graph  # type: ignore[method-assign]
    XRayResponse.trace_summaries = get_trace_summaries  # type: ignore[method-assign]
    XRayResponse._aiops_sandbox = True  # type: ignore[attr-defined]
