"""X-Ray trace segments for the simulated account's history, consistent with its metrics and incidents.

Each prod service that has an application log group gets sampled traces (``PER_BUCKET`` per 5
minutes, X-Ray's sampling of a steady request stream): a root segment with the HTTP request and
response, and one ``remote`` subsegment per downstream call (``applogs`` upstreams). Latency is
log-normal around the service's median; a few requests are 4xx (errors) and rare ones 5xx (faults).
The ground truth's anomalies shape the traffic the way they shaped the metrics:

* a CPU spike on one of the service's instances or its database: 40 % of requests 5x slower (p99 up);
* an HTTP 5xx surge on the service's target group: 30 % faults while it lasts (8 % for an open-ended one);
* a response-time level shift: every request 1.8x slower from then on;
* an instance dropping off the network: 20 % faults (its share of the traffic) while it lasts.

Pure functions build the documents (same arguments, same documents); ``seed_traces`` bulk-loads
them through the sandbox's ``/aiops-sandbox/xray`` action (the documents ``PutTraceSegments``
takes, without 40,000 HTTP calls).
"""

from __future__ import annotations

import json
import math
import random
from dataclasses import dataclass
from datetime import datetime
from typing import Any

PER_BUCKET = 3
STEP = 300
UPSTREAMS: dict[str, list[str]] = {
    "checkout": ["payments", "inventory", "payment-gateway"],
    "payments": ["payment-gateway", "fraud-scoring"],
    "inventory": ["postgres", "warehouse-api"],
    "catalog": ["search-cluster", "redis"],
}
MEDIAN_S = {"checkout": 0.120, "payments": 0.080, "inventory": 0.045, "catalog": 0.060}
ROUTES = {"checkout": ["POST /api/checkout", "GET /api/cart", "POST /api/cart/items"],
          "payments": ["POST /api/payments", "GET /api/payments/{id}"],
          "inventory": ["GET /api/stock/{id}", "POST /api/reservations"],
          "catalog": ["GET /api/products", "GET /api/products/{id}", "GET /api/search"]}


@dataclass(frozen=True)
class Effect:
    service: str
    start: float
    end: float | None
    slow_share: float = 0.0
    slow_factor: float = 1.0
    fault_share: float = 0.0

    def active(self, t: float) -> bool:
        return self.start <= t and (self.end is None or t < self.end)


def _ts(value: str | None) -> float | None:
    return None if value is None else datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def effects(manifest: dict[str, Any]) -> list[Effect]:
    """What each ground-truth anomaly does to its service's requests."""
    out = []
    for a in manifest.get("anomalies", []):
        service = a["resource"].split("/")[0].split("-prod")[0]
        start, end = _ts(a["start"]), _ts(a.get("end"))
        if start is None:
            continue
        if a["metric"] in ("CPUUtilization", "DatabaseConnections") and a["kind"] == "spike":
            out.append(Effect(service, start, end, slow_share=0.4, slow_factor=5.0))
        elif a["metric"] == "HTTPCode_Target_5XX_Count" and a["kind"] == "surge":
            out.append(Effect(service, start, end, fault_share=0.3 if end else 0.08))
        elif a["metric"] == "TargetResponseTime" and a["kind"] == "level_shift":
            out.append(Effect(service, start, end, slow_share=1.0, slow_factor=1.8))
        elif a["kind"] == "dropout" and a["metric"] == "NetworkIn":
            out.append(Effect(service, start, end, fault_share=0.2))
    return out


def services(manifest: dict[str, Any]) -> list[str]:
    groups = (manifest.get("resources") or {}).get("log_groups") or {}
    found = {g.split("/")[2] for g in groups if g.startswith("/matcarv/") and g.split("/")[3:4] == ["prod"]}
    return sorted(s for s in found if s in MEDIAN_S)


def _id(rng: random.Random, bits: int) -> str:
    return f"{rng.getrandbits(bits):0{bits // 4}x}"


def build_documents(manifest: dict[str, Any], start: float, end: float, *, seed: int = 7,
                    per_bucket: int = PER_BUCKET) -> list[str]:
    """PutTraceSegments documents (JSON strings) for [start, end) of the history."""
    return documents_for(services(manifest), effects(manifest), start, end, seed=seed, per_bucket=per_bucket)


GAME_DAY = {"cpu-pinned": {"slow_share": 0.4, "slow_factor": 5.0}, "5xx-surge": {"fault_share": 0.3},
            "rds-connection-storm": {"slow_share": 0.5, "slow_factor": 3.0}}


def game_day_effects(injections: list[Any], now: float) -> list[Effect]:
    """What active game-day injections (``aiops_sandbox.gameday``) do to live requests."""
    return [Effect(i.service, now - 86_400, None, **GAME_DAY[i.scenario]) for i in injections
            if i.state == "active" and i.scenario in GAME_DAY]


def put_live(xray: Any, services_: list[str], active: list[Effect], start: float, end: float) -> int:
    """Live traffic for [start, end) through PutTraceSegments (50 documents per call, as AWS allows)."""
    docs = documents_for(services_, active, start, end, seed=int(start))
    for i in range(0, len(docs), 50):
        xray.put_trace_segments(TraceSegmentDocuments=docs[i:i + 50])
    return len(docs)


def documents_for(services_: list[str], active: list[Effect], start: float, end: float, *, seed: int = 7,
                  per_bucket: int = PER_BUCKET) -> list[str]:
    rng = random.Random(f"traces:{seed}:{start}:{end}")
    docs = []
    for service in services_:
        mine = [e for e in active if e.service == service]
        t = start - start % STEP
        while t < end:
            for _ in range(per_bucket):
                t0 = t + rng.random() * STEP
                if not start <= t0 < end:
                    continue
                slow = next((e.slow_factor for e in mine if e.active(t0) and rng.random() < e.slow_share), 1.0)
                fault = any(e.active(t0) and rng.random() < e.fault_share for e in mine) or rng.random() < 0.002
                error = not fault and rng.random() < 0.015
                docs.append(_document(rng, service, t0, slow, fault, error))
            t += STEP
    return docs


def _document(rng: random.Random, service: str, t0: float, slow: float, fault: bool, error: bool) -> str:
    latency = rng.lognormvariate(math.log(MEDIAN_S[service]), 0.35) * slow
    status = 503 if fault else (404 if error else 200)
    route = rng.choice(ROUTES[service])
    method, path = route.split(" ", 1)
    path = path.replace("{id}", str(rng.randint(1000, 99999)))
    subs: list[dict[str, Any]] = []
    cursor = t0 + latency * 0.1
    for callee in UPSTREAMS.get(service, []):
        if rng.random() < 0.7:
            d = latency * rng.uniform(0.15, 0.5)
            sub: dict[str, Any] = {"id": _id(rng, 64), "name": callee, "namespace": "remote",
                                   "start_time": round(cursor, 6), "end_time": round(cursor + d, 6),
                                   "http": {"request": {"method": "POST", "url": f"http://{callee}.internal/"},
                                            "response": {"status": 503 if fault and not subs else 200}}}
            if fault and not subs:
                sub["fault"] = True
            subs.append(sub)
            cursor += d * 0.5
    doc: dict[str, Any] = {
        "name": service, "id": _id(rng, 64), "trace_id": f"1-{int(t0):08x}-{_id(rng, 96)}",
        "start_time": round(t0, 6), "end_time": round(t0 + latency, 6), "origin": "AWS::EC2::Instance",
        "http": {"request": {"method": method, "url": f"https://{service}.matcarv.internal{path}",
                             "client_ip": "10.0.1.10", "user_agent": "matcarv-web"},
                 "response": {"status": status}},
        "annotations": {"env": "prod"}, "subsegments": subs}
    if fault:
        doc["fault"] = True
    if error:
        doc["error"] = True
    return json.dumps(doc, separators=(",", ":"))


def seed_traces(endpoint: str, manifest: dict[str, Any], start: float, end: float, *, seed: int = 7,
                account_id: str = "123456789012", region: str = "us-east-1", batch: int = 5000) -> int:
    from aiops_sandbox import emulator

    docs = build_documents(manifest, start, end, seed=seed)
    for i in range(0, len(docs), batch):
        emulator.post(endpoint, "xray", {"account_id": account_id, "region": region, "documents": docs[i:i + batch]})
    return len(docs)
