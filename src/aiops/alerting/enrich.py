"""Enrich alerts: service / team / owner / env from resource tags, recent CloudTrail changes to the
resource, and SLO impact from the SLO history. One AWS listing per batch, each step guarded: an
enrichment that fails is recorded in ``alert.enrichment["errors"]`` and never blocks the intake.

* Tags: Resource Groups Tagging API ``GetResources`` paged once per batch and cached for
  ``alerting_tag_cache_seconds`` (resources are indexed by ARN and by their id, the ARN's last
  segment, because alarms name instances by id). Auto Scaling groups are not in that API: their
  tags come from one ``DescribeAutoScalingGroups`` call. An instance in an Auto Scaling group gets
  ``root_resource`` = the group (alerts about its instances group together).
* Recent changes: ``aiops.security.collect.events_between`` (the trail's S3 log files), one read
  per batch over ``[earliest alert - lookback, latest alert]``, write events only.
* SLO impact: the latest ``aiops_slo_history`` rows of the alert's service (within an hour before it).

IAM: ``tag:GetResources``, ``autoscaling:DescribeAutoScalingGroups``, the CloudTrail reader's permissions.
"""

from __future__ import annotations

import logging
import re
import threading
import time as _time
from datetime import UTC, datetime, timedelta
from typing import Any

from aiops.account.permissions import permissions
from aiops.core import aws
from aiops.core.alerts import Alert
from aiops.core.settings import get_settings
from aiops.core.state import StateStore, slo_history
from aiops.security import collect as cloudtrail

PERMISSIONS = permissions(
    "tags and Auto Scaling membership of an alert's resource",
    reader=(
        "autoscaling:DescribeAutoScalingGroups",
        "tag:GetResources",
    ),
)

log = logging.getLogger(__name__)

TAG_FIELDS = ("service", "env", "team", "owner")
_cache_lock = threading.Lock()
_tag_cache: dict[str, Any] = {"at": 0.0, "index": None, "account": None}


def _tail(value: str) -> str:
    return re.split(r"[:/]", value)[-1]


def tag_index(*, max_age: float | None = None) -> dict[str, dict[str, str]]:
    """``{arn or id: tags}`` for every tagged resource in the account (one paged listing, cached)."""
    max_age = get_settings().alerting_tag_cache_seconds if max_age is None else max_age
    client = aws.client("resourcegroupstaggingapi")
    # the cache belongs to one account endpoint: a connection pointed elsewhere starts afresh
    account = (get_settings().aws_conn_id, client.meta.endpoint_url, client.meta.region_name)
    with _cache_lock:
        if (_tag_cache["index"] is not None and _tag_cache["account"] == account
                and _time.monotonic() - _tag_cache["at"] < max_age):
            return _tag_cache["index"]  # type: ignore[no-any-return]
    index: dict[str, dict[str, str]] = {}
    paginator = client.get_paginator("get_resources")
    for page in paginator.paginate(ResourcesPerPage=100):
        for item in page.get("ResourceTagMappingList", []):
            tags = {t["Key"]: t["Value"] for t in item.get("Tags", [])}
            index[item["ResourceARN"]] = tags
            index.setdefault(_tail(item["ResourceARN"]), tags)
    with _cache_lock:
        _tag_cache.update(at=_time.monotonic(), index=index, account=account)
    return index


def clear_tag_cache() -> None:
    with _cache_lock:
        _tag_cache.update(at=0.0, index=None, account=None)


def _asg_tags(names: list[str]) -> dict[str, dict[str, str]]:
    out: dict[str, dict[str, str]] = {}
    if not names:
        return out
    paginator = aws.client("autoscaling").get_paginator("describe_auto_scaling_groups")
    for page in paginator.paginate(AutoScalingGroupNames=names):
        for g in page.get("AutoScalingGroups", []):
            out[g["AutoScalingGroupName"]] = {t["Key"]: t["Value"] for t in g.get("Tags", [])}
    return out


def lookup(index: dict[str, dict[str, str]], resource: str | None) -> dict[str, str] | None:
    if not resource:
        return None
    return index.get(resource) or index.get(_tail(resource))


def apply_tags(alert: Alert, tags: dict[str, str]) -> None:
    for name in TAG_FIELDS:
        if getattr(alert, name) is None and tags.get(name):
            setattr(alert, name, tags[name])
    alert.enrichment["tags"] = {k: v for k, v in tags.items() if k in TAG_FIELDS or k.startswith("aiops:")
                                or k in ("Name", "aws:autoscaling:groupName")}
    asg = tags.get("aws:autoscaling:groupName")
    if asg and alert.resource_type == "ec2:instance":
        alert.enrichment["root_resource"] = asg


def enrich_tags(alerts: list[Alert], *, index: dict[str, dict[str, str]] | None = None,
                asg_tags: dict[str, dict[str, str]] | None = None) -> None:
    """Fill service/env/team/owner from tags (``index``/``asg_tags`` given: no AWS calls, for replays)."""
    need = [a for a in alerts if a.resource and not (a.service and a.team and a.env and a.owner)]
    if not need:
        return
    index = tag_index() if index is None else index
    asg_names = sorted({a.resource for a in need if a.resource_type == "autoscaling:autoScalingGroup" and a.resource})
    asgs = asg_tags if asg_tags is not None else (_asg_tags(asg_names) if asg_names else {})
    for a in need:
        tags = asgs.get(a.resource or "") if a.resource_type == "autoscaling:autoScalingGroup" else None
        tags = tags or lookup(index, a.resource)
        if tags:
            apply_tags(a, tags)


def _actor(record: dict[str, Any]) -> str:
    ident = record.get("userIdentity") or {}
    return str(ident.get("arn") or ident.get("userName") or ident.get("type") or "unknown")


def _merged_windows(times: list[datetime], lookback: timedelta) -> list[tuple[datetime, datetime]]:
    """``[t - lookback, t]`` per alert time, overlapping ones merged (each read once)."""
    out: list[tuple[datetime, datetime]] = []
    for t in sorted(times):
        start, end = t - lookback, t + timedelta(seconds=1)
        if out and start <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], end))
        else:
            out.append((start, end))
    return out


def enrich_changes(alerts: list[Alert], lookback: timedelta) -> None:
    """``enrichment["recent_changes"]``: write events naming the alert's resource in the lookback."""
    targets = [a for a in alerts if a.resource]
    if not targets:
        return
    ids = {x for a in targets for x in (a.resource, _tail(a.resource or ""),
                                        a.enrichment.get("root_resource")) if x}
    records: list[dict[str, Any]] = []
    for start, end in _merged_windows([a.time for a in targets], lookback):  # a batch with an old event
        records += [r for r in cloudtrail.events_between(start, end, resource_ids=ids)  # does not read the days between
                    if not r.get("readOnly", False)]
    for a in targets:
        mine = {x for x in (a.resource, _tail(a.resource or ""), a.enrichment.get("root_resource")) if x}
        hits = [r for r in records if a.time - lookback <= cloudtrail.event_time(r) <= a.time
                and cloudtrail.mentions(r, mine)]
        a.enrichment["recent_changes"] = [
            {"time": r["eventTime"], "event_name": r.get("eventName"), "event_source": r.get("eventSource"),
             "actor": _actor(r), "event_id": r.get("eventID")} for r in hits[-10:]]


def enrich_slo(alerts: list[Alert]) -> None:
    """``enrichment["slo_impact"]``: latest budget / severity per SLO of the alert's service."""
    from sqlalchemy import select

    services = sorted({a.service for a in alerts if a.service})
    if not services:
        return
    start = min(a.time for a in alerts) - timedelta(hours=1)
    end = max(a.time for a in alerts)
    store = StateStore()
    store._ready()
    cols = [slo_history.c.slo_id, slo_history.c.service, slo_history.c.env, slo_history.c.evaluated_at,
            slo_history.c.budget_remaining, slo_history.c.severity, slo_history.c.sli]
    with store.engine.connect() as conn:
        rows = [dict(r._mapping) for r in conn.execute(select(*cols).where(
            slo_history.c.service.in_(services), slo_history.c.evaluated_at >= start,
            slo_history.c.evaluated_at <= end))]
    for r in rows:
        if r["evaluated_at"].tzinfo is None:
            r["evaluated_at"] = r["evaluated_at"].replace(tzinfo=UTC)
    for a in alerts:
        if not a.service:
            continue
        latest: dict[str, dict[str, Any]] = {}
        for r in rows:
            if r["service"] != a.service or (a.env is not None and r["env"] != a.env):
                continue
            if a.time - timedelta(hours=1) <= r["evaluated_at"] <= a.time and \
                    (r["slo_id"] not in latest or r["evaluated_at"] > latest[r["slo_id"]]["evaluated_at"]):
                latest[r["slo_id"]] = r
        if latest:
            a.enrichment["slo_impact"] = [
                {"slo_id": r["slo_id"], "budget_remaining": r["budget_remaining"], "severity": r["severity"],
                 "sli": r["sli"], "evaluated_at": r["evaluated_at"].isoformat()} for r in latest.values()]


def enrich(alerts: list[Alert], *, changes: bool = True, slo: bool = True,
           lookback: timedelta | None = None) -> None:
    """All enrichments, each guarded (an error is recorded on the alerts, never raised)."""
    lookback = lookback or timedelta(minutes=get_settings().alerting_change_lookback_minutes)
    steps: list[tuple[str, Any]] = [("tags", lambda: enrich_tags(alerts))]
    if changes:
        steps.append(("recent_changes", lambda: enrich_changes(alerts, lookback)))
    if slo:
        steps.append(("slo_impact", lambda: enrich_slo(alerts)))
    for name, step in steps:
        started = _time.monotonic()
        try:
            step()
        except Exception as exc:  # enrichment is best effort: the alert goes on without it
            log.warning("enrichment %s failed for %d alert(s): %s", name, len(alerts), exc)
            for a in alerts:
                a.enrichment.setdefault("errors", {})[name] = f"{type(exc).__name__}: {exc}"[:500]
        log.info("enrichment %s: %.2fs for %d alert(s)", name, _time.monotonic() - started, len(alerts))


