"""Deterministic application log lines for one service's CloudWatch Logs group (pure: no I/O).

``build_app_log_events`` returns PutLogEvents-ready events ``{"timestamp": epoch_ms, "message":
str}`` for the ``hours`` before ``anchor``. Each message is one JSON line as a typical structured
logger writes it::

    {"ts": "2025-06-01T11:59:59.123Z", "level": "INFO", "service": "checkout", "env": "prod",
     "msg": "GET /api/cart 200", "method": "GET", "path": "/api/cart", "status": 200,
     "latency_ms": 43, "trace_id": "5f0c..."}

Background traffic is *sampled* access logging with a daily shape (about 0.25 lines/min at
03:00 UTC, 1.2 lines/min at 15:00 UTC, ~2,000 lines per 48 h): mostly INFO access lines, some
INFO housekeeping lines, ~4 % WARN (slow requests, retries, pool pressure, throttling) and rare
isolated ERRORs (at least 30 minutes apart). Each ``LogBurst`` adds ``rate_per_min`` lines per
minute of its (window-clipped) span at its level with its messages, uniformly spread. The total is
kept at or below ``MAX_EVENTS_PER_48H`` scaled to ``hours``: if the bursts would exceed what the
background leaves, their line counts are thinned proportionally (never below one line each).

Same arguments give identical events. The background depends only on (service, env, anchor,
seed, hours), so adding bursts never changes it.
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import cast

__all__ = [
    "MAX_BATCH_SPAN_MS",
    "MAX_EVENTS_PER_48H",
    "PUT_LOG_EVENTS_OVERHEAD",
    "LogBurst",
    "build_app_log_events",
    "chunk_log_events",
]

MAX_EVENTS_PER_48H = 3000
PUT_LOG_EVENTS_OVERHEAD = 26
MAX_BATCH_SPAN_MS = 24 * 3600 * 1000

_PEAK_PER_MIN = 1.2
_TROUGH_PER_MIN = 0.25
_PEAK_HOUR_UTC = 15
_ISOLATED_ERROR_GAP_MS = 30 * 60 * 1000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class LogBurst:
    """An injected burst: ``rate_per_min`` ``level`` lines per minute in ``[start, end)``."""

    start: datetime
    end: datetime
    level: str
    messages: list[str]
    rate_per_min: float
    tag: str


_ROUTES: dict[str, list[tuple[str, str, float]]] = {
    "checkout": [
        ("GET", "/api/cart", 5),
        ("POST", "/api/cart/items", 2),
        ("DELETE", "/api/cart/items/{id}", 0.5),
        ("POST", "/api/checkout", 1),
        ("GET", "/api/orders/{id}", 1.5),
    ],
    "payments": [
        ("POST", "/v1/payments", 3),
        ("GET", "/v1/payments/{id}", 2),
        ("POST", "/v1/payments/{id}/capture", 1.5),
        ("POST", "/v1/refunds", 0.3),
    ],
    "inventory": [
        ("GET", "/api/stock/{id}", 5),
        ("POST", "/api/reservations", 1.5),
        ("DELETE", "/api/reservations/{id}", 0.5),
        ("GET", "/api/warehouses", 0.3),
    ],
    "catalog": [
        ("GET", "/api/products", 4),
        ("GET", "/api/products/{id}", 5),
        ("GET", "/api/search", 3),
        ("GET", "/api/categories", 1),
    ],
}
_UPSTREAMS: dict[str, list[str]] = {
    "checkout": ["payments", "inventory", "payment-gateway"],
    "payments": ["payment-gateway", "fraud-scoring"],
    "inventory": ["postgres", "warehouse-api"],
    "catalog": ["search-cluster", "redis"],
}


def _routes(service: str) -> list[tuple[str, str, float]]:
    base = _ROUTES.get(service) or [
        ("GET", f"/api/{service}", 4),
        ("GET", f"/api/{service}/{{id}}", 4),
        ("POST", f"/api/{service}", 1.5),
        ("PUT", f"/api/{service}/{{id}}", 0.5),
    ]
    return [*base, ("GET", "/healthz", 1.0)]


def _iso_ms(ms: int) -> str:
    secs, millis = divmod(ms, 1000)
    return f"{datetime.fromtimestamp(secs, tz=UTC).strftime('%Y-%m-%dT%H:%M:%S')}.{millis:03d}Z"


def _epoch_ms(ts: datetime) -> int:
    return (ts - _EPOCH) // timedelta(milliseconds=1)


def _require_utc(ts: datetime, what: str) -> None:
    if ts.tzinfo is None or ts.utcoffset() is None:
        raise ValueError(f"{what} must be a timezone-aware datetime, got {ts!r}")


def _poisson(rng: random.Random, lam: float) -> int:
    """Knuth's method; fine for the small per-minute rates used here."""
    limit, k, p = math.exp(-lam), 0, 1.0
    while True:
        p *= rng.random()
        if p <= limit:
            return k
        k += 1


def _rate_per_min(minute_ms: int) -> float:
    hour = (minute_ms / 3_600_000) % 24
    shape = 0.5 + 0.5 * math.cos(2 * math.pi * (hour - _PEAK_HOUR_UTC) / 24)
    return _TROUGH_PER_MIN + (_PEAK_PER_MIN - _TROUGH_PER_MIN) * shape


def _line(ms: int, level: str, service: str, env: str, msg: str, **fields: object) -> dict[str, object]:
    record: dict[str, object] = {
        "ts": _iso_ms(ms),
        "level": level,
        "service": service,
        "env": env,
        "msg": msg,
    }
    record.update(fields)
    return {"timestamp": ms, "message": json.dumps(record, separators=(", ", ": "))}


def _trace(rng: random.Random) -> str:
    return f"{rng.getrandbits(128):032x}"


def _access(rng: random.Random, ms: int, service: str, env: str) -> dict[str, object]:
    routes = _routes(service)
    method, template, _ = rng.choices(routes, weights=[w for *_, w in routes])[0]
    path = template.replace("{id}", str(rng.randint(1000, 99999)))
    if template == "/healthz":
        status, latency = 200, rng.randint(1, 4)
    else:
        roll = rng.random()
        status = 201 if method == "POST" and roll < 0.6 else 204 if method == "DELETE" else 200
        if roll > 0.985:
            status = 404 if method == "GET" else 400
        latency = max(2, round(rng.lognormvariate(math.log(45), 0.45)))
    return _line(
        ms,
        "INFO",
        service,
        env,
        f"{method} {path} {status}",
        method=method,
        path=path,
        status=status,
        latency_ms=latency,
        trace_id=_trace(rng),
    )


def _housekeeping(rng: random.Random, ms: int, service: str, env: str) -> dict[str, object]:
    pick = rng.randrange(4)
    if pick == 0:
        return _line(
            ms, "INFO", service, env, f"cache refreshed ({rng.randint(800, 5000)} keys)", component="cache"
        )
    if pick == 1:
        return _line(
            ms,
            "INFO",
            service,
            env,
            f"db pool stats active={rng.randint(2, 12)} idle={rng.randint(4, 18)} max=30",
            component="db",
        )
    if pick == 2:
        return _line(
            ms,
            "INFO",
            service,
            env,
            f"scheduled job cleanup-expired completed in {rng.randint(40, 900)}ms",
            component="scheduler",
        )
    return _line(ms, "INFO", service, env, "config reloaded from parameter store", component="config")


def _warn(rng: random.Random, ms: int, service: str, env: str) -> dict[str, object]:
    upstream = rng.choice(_UPSTREAMS.get(service, ["postgres", "redis"]))
    pick = rng.randrange(4)
    trace = _trace(rng)
    if pick == 0:
        method, template, _ = _routes(service)[0]
        path = template.replace("{id}", str(rng.randint(1000, 99999)))
        took = rng.randint(1200, 2900)
        return _line(
            ms,
            "WARN",
            service,
            env,
            f"slow request: {method} {path} took {took}ms",
            method=method,
            path=path,
            status=200,
            latency_ms=took,
            trace_id=trace,
        )
    if pick == 1:
        return _line(
            ms,
            "WARN",
            service,
            env,
            f"retrying call to {upstream} (attempt 2/3) after timeout",
            upstream=upstream,
            trace_id=trace,
        )
    if pick == 2:
        pct = rng.randint(80, 92)
        return _line(ms, "WARN", service, env, f"connection pool at {pct}% capacity", component="db")
    return _line(
        ms,
        "WARN",
        service,
        env,
        "rate limited by client quota, returning 429",
        status=429,
        trace_id=trace,
    )


def _error(rng: random.Random, ms: int, service: str, env: str) -> dict[str, object]:
    upstream = rng.choice(_UPSTREAMS.get(service, ["postgres", "redis"]))
    message = rng.choice(
        [
            "unhandled exception in request handler: KeyError: 'sku'",
            f"call to {upstream} failed after 3 attempts: connection reset by peer",
            "failed to publish event to queue: send timeout after 5000ms",
            "request validation failed unexpectedly: NoneType has no attribute 'currency'",
        ]
    )
    return _line(ms, "ERROR", service, env, message, trace_id=_trace(rng))


def _background(
    service: str, env: str, start_ms: int, end_ms: int, rng: random.Random
) -> list[dict[str, object]]:
    events: list[dict[str, object]] = []
    last_error = -_ISOLATED_ERROR_GAP_MS * 10
    minute = start_ms
    while minute < end_ms:
        span = min(60_000, end_ms - minute)
        for _ in range(_poisson(rng, _rate_per_min(minute) * span / 60_000)):
            ms = minute + rng.randrange(span)
            roll = rng.random()
            if roll < 0.0025 and ms - last_error >= _ISOLATED_ERROR_GAP_MS:
                last_error = ms
                events.append(_error(rng, ms, service, env))
            elif roll < 0.04:
                events.append(_warn(rng, ms, service, env))
            elif roll < 0.10:
                events.append(_housekeeping(rng, ms, service, env))
            else:
                events.append(_access(rng, ms, service, env))
        minute += 60_000
    return events


def _burst_events(
    burst: LogBurst, count: int, service: str, env: str, start_ms: int, end_ms: int, rng: random.Random
) -> list[dict[str, object]]:
    out = []
    for _ in range(count):
        ms = start_ms + rng.randrange(end_ms - start_ms)
        out.append(_line(ms, burst.level, service, env, rng.choice(burst.messages), trace_id=_trace(rng)))
    return out


def build_app_log_events(
    *,
    service: str,
    env: str,
    anchor: datetime,
    seed: int,
    hours: int = 48,
    bursts: Sequence[LogBurst] = (),
) -> list[dict]:
    """CloudWatch Logs events for ``service`` over ``[anchor - hours, anchor)``, sorted by timestamp."""
    _require_utc(anchor, "anchor")
    if hours < 1:
        raise ValueError(f"hours must be >= 1, got {hours}")
    end_ms = _epoch_ms(anchor)
    start_ms = end_ms - hours * 3_600_000
    rng = random.Random(f"applogs:{seed}:{service}:{env}:{end_ms}:{hours}")
    events = _background(service, env, start_ms, end_ms, rng)

    clipped: list[tuple[LogBurst, int, int, float]] = []
    for n, burst in enumerate(bursts):
        _require_utc(burst.start, f"bursts[{n}].start")
        _require_utc(burst.end, f"bursts[{n}].end")
        if burst.end <= burst.start:
            raise ValueError(f"bursts[{n}] ({burst.tag!r}) ends before it starts")
        if not burst.messages:
            raise ValueError(f"bursts[{n}] ({burst.tag!r}) has no messages")
        if burst.rate_per_min < 0:
            raise ValueError(f"bursts[{n}] ({burst.tag!r}) has a negative rate")
        lo, hi = max(start_ms, _epoch_ms(burst.start)), min(end_ms, _epoch_ms(burst.end))
        if hi > lo and burst.rate_per_min > 0:
            clipped.append((burst, lo, hi, burst.rate_per_min * (hi - lo) / 60_000))

    budget = max(0, round(MAX_EVENTS_PER_48H * hours / 48) - len(events))
    wanted = sum(max(1.0, c) for *_, c in clipped)
    scale = min(1.0, budget / wanted) if wanted else 1.0
    for n, (burst, lo, hi, count) in enumerate(clipped):
        burst_rng = random.Random(f"applogs-burst:{seed}:{service}:{env}:{n}:{burst.tag}")
        events.extend(_burst_events(burst, max(1, round(count * scale)), service, env, lo, hi, burst_rng))

    events.sort(key=lambda e: cast(int, e["timestamp"]))  # epoch ms, set by _line()
    return events


def _event_size(event: dict) -> int:
    return len(str(event["message"]).encode("utf-8")) + PUT_LOG_EVENTS_OVERHEAD


def chunk_log_events(
    events: Iterable[dict], max_events: int = 10000, max_bytes: int = 1_000_000
) -> list[list[dict]]:
    """Split events into PutLogEvents batches, in timestamp order.

    A batch holds at most ``max_events`` events and ``max_bytes`` bytes (each event counts its
    UTF-8 message length plus 26), and its events span less than 24 hours. Events are sorted by
    timestamp first (stable), as PutLogEvents requires. An event too large for any batch raises
    ``ValueError``.
    """
    if max_events < 1 or max_bytes < 1:
        raise ValueError("max_events and max_bytes must be positive")
    batches: list[list[dict]] = []
    batch: list[dict] = []
    size = 0
    for event in sorted(events, key=lambda e: e["timestamp"]):
        event_size = _event_size(event)
        if event_size > max_bytes:
            raise ValueError(
                f"log event at {event['timestamp']} is {event_size} bytes, over the {max_bytes} limit"
            )
        if batch and (
            len(batch) >= max_events
            or size + event_size > max_bytes
            or event["timestamp"] - batch[0]["timestamp"] >= MAX_BATCH_SPAN_MS
        ):
            batches.append(batch)
            batch, size = [], 0
        batch.append(event)
        size += event_size
    if batch:
        batches.append(batch)
    return batches
