"""Read a service's CloudWatch Logs groups (FilterLogEvents) and reduce them to counts and signatures.

Log groups follow the estate's convention ``/matcarv/<service>/<env>/<stream kind>``. Lines are
structured JSON (``level``, ``msg``) or plain text (the level is the first ERROR/WARN word). An
error *signature* is the message with its variable parts (ids, numbers, addresses, quoted values)
replaced, so "timed out after 30000ms on i-0abc" and "... on i-0def" count as one.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiops.account.permissions import permissions
from aiops.core import aws
from aiops.logs.store import COUNT_COLUMNS, SIGNATURE_COLUMNS

PERMISSIONS = permissions(
    "application log groups and their events",
    reader=("logs:DescribeLogGroups", "logs:FilterLogEvents"),
)

PREFIX = "/matcarv/"
BUCKET_SECONDS = 300
ERROR_LEVELS = {"ERROR", "FATAL", "CRITICAL"}
WARN_LEVELS = {"WARN", "WARNING"}
MAX_EVENTS_PER_GROUP = 200_000  # a safety stop per group and window; hitting it is logged as truncated

_SUBS = [
    (re.compile(r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b", re.I), "<uuid>"),
    (re.compile(r"\b(i|vol|sg|subnet|ami|eni|snap)-[0-9a-f]{6,17}\b"), r"\1-<id>"),
    (re.compile(r"\barn:aws[\w-]*:[^\s\"']+"), "<arn>"),
    (re.compile(r"\b[0-9a-f]{16,}\b", re.I), "<hex>"),
    (re.compile(r"\b\d{1,3}(\.\d{1,3}){3}(:\d+)?\b"), "<ip>"),
    (re.compile(r"'[^']*'|\"[^\"]*\""), "<str>"),
    (re.compile(r"\d+(\.\d+)?"), "<n>"),
]


def signature(message: str) -> str:
    """The message with variable parts replaced (stable across instances, ids, numbers)."""
    out = message.strip()
    for pattern, repl in _SUBS:
        out = pattern.sub(repl, out)
    return re.sub(r"\s+", " ", out)[:300]


def level_and_message(raw: str) -> tuple[str, str]:
    try:
        record = json.loads(raw)
        if isinstance(record, dict):
            level = str(record.get("level") or record.get("severity") or "").upper()
            return level, str(record.get("msg") or record.get("message") or raw)
    except ValueError:
        pass
    match = re.search(r"\b(ERROR|FATAL|CRITICAL|WARN|WARNING)\b", raw)
    return (match.group(1) if match else ""), raw


@dataclass(frozen=True)
class LogGroup:
    name: str
    service: str
    env: str


def service_log_groups(conn_id: str | None = None) -> list[LogGroup]:
    """Every ``/matcarv/<service>/<env>/...`` group of the account."""
    logs = aws.client("logs", conn_id=conn_id) if conn_id else aws.client("logs")
    groups = []
    for page in logs.get_paginator("describe_log_groups").paginate(logGroupNamePrefix=PREFIX):
        for g in page.get("logGroups", []):
            parts = g["logGroupName"][len(PREFIX):].split("/")
            if len(parts) >= 2 and parts[0] and parts[1]:
                groups.append(LogGroup(g["logGroupName"], parts[0], parts[1]))
    return sorted(groups, key=lambda g: g.name)


def events(group: str, start: datetime, end: datetime, *, client: Any = None,
           limit: int = MAX_EVENTS_PER_GROUP) -> Iterator[dict[str, Any]]:
    """FilterLogEvents over [start, end), all pages (the end bound is exclusive)."""
    logs = client or aws.client("logs")
    kwargs: dict[str, Any] = {"logGroupName": group, "startTime": int(start.timestamp() * 1000),
                              "endTime": int(end.timestamp() * 1000) - 1}
    # the paginator follows nextToken through empty pages too (FilterLogEvents returns those while it scans)
    pages = logs.get_paginator("filter_log_events").paginate(**kwargs, PaginationConfig={"MaxItems": limit})
    for page in pages:
        yield from page.get("events", [])


@dataclass
class Reduced:
    """Counts per (service, env, 5-minute bucket) and error signatures per (service, env, bucket)."""

    counts: dict[tuple[str, str, int], list[int]] = field(default_factory=dict)  # -> [errors, warnings, lines]
    signatures: dict[tuple[str, str, int, str], list[Any]] = field(default_factory=dict)  # -> [count, sample]
    truncated: list[str] = field(default_factory=list)

    def add(self, group: LogGroup, event: dict[str, Any]) -> None:
        ts = int(event["timestamp"]) // 1000
        bucket = ts - ts % BUCKET_SECONDS
        level, msg = level_and_message(str(event.get("message", "")))
        c = self.counts.setdefault((group.service, group.env, bucket), [0, 0, 0])
        c[2] += 1
        if level in ERROR_LEVELS:
            c[0] += 1
            key = (group.service, group.env, bucket, signature(msg))
            s = self.signatures.setdefault(key, [0, str(event.get("message", ""))[:1000]])
            s[0] += 1
        elif level in WARN_LEVELS:
            c[1] += 1


def collect(start: datetime, end: datetime, groups: list[LogGroup] | None = None) -> Reduced:
    """Read every service group for [start, end) and reduce it."""
    logs = aws.client("logs")
    out = Reduced()
    for group in groups if groups is not None else service_log_groups():
        n = 0
        for event in events(group.name, start, end, client=logs):
            out.add(group, event)
            n += 1
        if n >= MAX_EVENTS_PER_GROUP:
            out.truncated.append(group.name)
    return out


def to_frames(reduced: Reduced) -> tuple[Any, Any]:
    import pandas as pd

    counts = pd.DataFrame(
        [{"service": s, "env": e, "timestamp": datetime.fromtimestamp(b, UTC), "errors": v[0], "warnings": v[1],
          "lines": v[2]} for (s, e, b), v in reduced.counts.items()], columns=list(COUNT_COLUMNS))
    sigs = pd.DataFrame(
        [{"service": s, "env": e, "timestamp": datetime.fromtimestamp(b, UTC), "signature": sig, "count": v[0],
          "sample": v[1]} for (s, e, b, sig), v in reduced.signatures.items()], columns=list(SIGNATURE_COLUMNS))
    return counts.astype(COUNT_COLUMNS), sigs.astype(SIGNATURE_COLUMNS)


