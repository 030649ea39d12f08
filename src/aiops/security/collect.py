"""CloudTrail records read from the trail's S3 log files (works on real AWS and in the emulator).

CloudTrail's ``LookupEvents`` only covers management events of one region for 90 days and moto
lacks it; the trail's delivered files are the complete, durable record. This module finds the trail
(``cloudtrail.describe_trails``), lists its files by key (the real delivery layout)::

    [<prefix>/]AWSLogs/<account>/CloudTrail/<region>/YYYY/MM/DD/
        <account>_CloudTrail_<region>_<YYYYMMDDTHHMMZ>_<suffix>.json.gz

and returns the records exactly as they are in the files (``{"Records": [...]}`` items).

- :func:`events_between` — records with ``start <= eventTime < end``, optionally only those that
  mention given resource ids (``resources[].ARN``, ``requestParameters``, ``responseElements``) or
  have given event names. Malformed files are skipped with a warning (use the lower-level functions
  to quarantine them).
- :func:`list_log_files` — the files whose delivery stamp can hold events of ``[start, end)``.
- :func:`read_log_file` — one file's records; :class:`MalformedLogFile` (a ``ValueError``) names
  the key and what is wrong for a truncated/corrupt gzip, invalid JSON or a wrong shape.

IAM permissions: ``cloudtrail:DescribeTrails``, ``s3:ListBucket`` and ``s3:GetObject`` on the trail
bucket, ``sts:GetCallerIdentity``.
"""

from __future__ import annotations

import gzip
import json
import logging
import re
import zlib
from collections.abc import Collection, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from aiops.account.permissions import permissions
from aiops.core import aws
from aiops.core.times import utc as _utc

PERMISSIONS = permissions(
    "CloudTrail log files from the trail bucket",
    reader=(
        "cloudtrail:DescribeTrails",
        "s3:ListBucket @ arn:${AWS::Partition}:s3:::${TrailBucket}",
        "s3:GetObject @ arn:${AWS::Partition}:s3:::${TrailBucket}/*",
    ),
)

log = logging.getLogger(__name__)

__all__ = [
    "LOG_KEY_RE",
    "LogFile",
    "MalformedLogFile",
    "Trail",
    "event_time",
    "events_between",
    "find_trail",
    "list_log_files",
    "mentions",
    "parse_log_file",
    "read_log_file",
]

# CloudTrail delivers a file within ~15 minutes of its events (the key stamp is the delivery
# time); an hour of slack is generous on real AWS and matches the sandbox's hourly files.
DELIVERY_LAG = timedelta(hours=1)

LOG_KEY_RE = re.compile(
    r"(?:^|/)AWSLogs/(?:(?P<org>o-[a-z0-9]+)/)?(?P<account>\d{12})/CloudTrail/"
    r"(?P<region>[a-z]{2}(?:-gov)?-[a-z]+-\d)/(?P<year>\d{4})/(?P<month>\d{2})/(?P<day>\d{2})/"
    r"(?P=account)_CloudTrail_(?P=region)_(?P<stamp>\d{8}T\d{4}Z)_(?P<suffix>[A-Za-z0-9]+)\.json\.gz$"
)


class MalformedLogFile(ValueError):
    """A CloudTrail log file that cannot be read: names the key and the reason."""

    def __init__(self, key: str, reason: str) -> None:
        self.key = key
        self.reason = reason
        super().__init__(f"{key}: {reason}")


@dataclass(frozen=True)
class Trail:
    name: str
    bucket: str
    prefix: str  # S3KeyPrefix, "" when none
    home_region: str
    multi_region: bool
    arn: str = ""


@dataclass(frozen=True)
class LogFile:
    bucket: str
    key: str
    account: str
    region: str
    delivered: datetime  # the key's stamp (UTC, minute precision)




def event_time(record: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(str(record["eventTime"]).replace("Z", "+00:00"))


def parse_key(key: str) -> tuple[str, str, datetime] | None:
    """``(account, region, delivered)`` of a CloudTrail log key, None for other keys (digests...)."""
    m = LOG_KEY_RE.search(key)
    if not m:
        return None
    delivered = datetime.strptime(m.group("stamp"), "%Y%m%dT%H%MZ").replace(tzinfo=UTC)
    return m.group("account"), m.group("region"), delivered


def find_trail(name: str | None = None) -> Trail:
    """The trail logging this account: ``name`` if given, else a multi-region trail (preferred)
    or the first one. Raises ``LookupError`` when the account has no (matching) trail."""
    trails = aws.client("cloudtrail").describe_trails(includeShadowTrails=True).get("trailList", [])
    if name:
        trails = [t for t in trails if name in (t.get("Name"), t.get("TrailARN"))]
    trails = [t for t in trails if t.get("S3BucketName")]
    if not trails:
        raise LookupError(f"no CloudTrail trail{f' named {name!r}' if name else ''} delivering to S3")
    trails.sort(key=lambda t: (not t.get("IsMultiRegionTrail", False), t.get("Name", "")))
    t = trails[0]
    return Trail(name=t["Name"], bucket=t["S3BucketName"], prefix=(t.get("S3KeyPrefix") or "").strip("/"),
                 home_region=t.get("HomeRegion", ""), multi_region=bool(t.get("IsMultiRegionTrail")),
                 arn=t.get("TrailARN", ""))


def _list_prefixes(s3: Any, bucket: str, prefix: str) -> list[str]:
    out: list[str] = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix, Delimiter="/"):
        out.extend(p["Prefix"] for p in page.get("CommonPrefixes", []))
    return out


def _days(start: datetime, end: datetime) -> Iterator[date]:
    d = start.date()
    while d <= end.date():
        yield d
        d += timedelta(days=1)


def list_log_files(
    start: datetime,
    end: datetime,
    *,
    regions: Collection[str] | None = None,
    trail: Trail | None = None,
    account_id: str | None = None,
) -> list[LogFile]:
    """The trail's log files that can hold events of ``[start, end)``, sorted by delivery time.

    Lists one day prefix per region (regions found under the account's ``CloudTrail/`` prefix
    unless ``regions`` is given); keeps files delivered in ``[start, end + DELIVERY_LAG)``.
    """
    start, end = _utc(start), _utc(end)
    trail = trail or find_trail()
    account_id = account_id or aws.account_id()
    s3 = aws.client("s3")
    base = f"{trail.prefix}/" if trail.prefix else ""
    account_prefix = f"{base}AWSLogs/{account_id}/CloudTrail/"
    if regions is None:
        region_prefixes = _list_prefixes(s3, trail.bucket, account_prefix)
    else:
        region_prefixes = [f"{account_prefix}{r}/" for r in regions]
    last = end + DELIVERY_LAG
    files: list[LogFile] = []
    for region_prefix in region_prefixes:
        for day in _days(start, last):
            paginator = s3.get_paginator("list_objects_v2")
            for page in paginator.paginate(Bucket=trail.bucket, Prefix=f"{region_prefix}{day:%Y/%m/%d}/"):
                for obj in page.get("Contents", []):
                    parsed = parse_key(obj["Key"])
                    if parsed is None:
                        continue
                    acct, region, delivered = parsed
                    # Delivery stamps are floored to the minute: a file stamped in start's minute
                    # may still hold events at or after start.
                    if start - timedelta(minutes=1) < delivered < last:
                        files.append(LogFile(trail.bucket, obj["Key"], acct, region, delivered))
    files.sort(key=lambda f: (f.delivered, f.key))
    return files


def parse_log_file(key: str, data: bytes) -> list[dict[str, Any]]:
    """The records of one delivered file's bytes; :class:`MalformedLogFile` when unreadable."""
    if not data:
        raise MalformedLogFile(key, "empty file")
    try:
        raw = gzip.decompress(data)
    except EOFError as exc:
        raise MalformedLogFile(key, f"truncated: gzip stream ends early ({exc})") from exc
    except (OSError, zlib.error) as exc:
        raise MalformedLogFile(key, f"not a valid gzip stream ({exc})") from exc
    try:
        doc = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise MalformedLogFile(key, f"content is not UTF-8 ({exc})") from exc
    except json.JSONDecodeError as exc:
        raise MalformedLogFile(key, f"invalid JSON ({exc})") from exc
    if not isinstance(doc, dict) or not isinstance(doc.get("Records"), list):
        raise MalformedLogFile(key, 'expected a JSON object with a "Records" list')
    for n, record in enumerate(doc["Records"]):
        if not isinstance(record, dict):
            raise MalformedLogFile(key, f"record {n} is {type(record).__name__}, not an object")
        if "eventTime" not in record or "eventName" not in record:
            raise MalformedLogFile(key, f"record {n} lacks eventTime/eventName")
    return doc["Records"]


def read_log_file(key: str, *, bucket: str | None = None) -> list[dict[str, Any]]:
    """The records of the log file ``key`` (in the trail's bucket unless ``bucket`` is given)."""
    bucket = bucket or find_trail().bucket
    body = aws.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()
    return parse_log_file(key, body)


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from _strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)


def _matches(text: str, ids: Collection[str]) -> bool:
    if text in ids:
        return True
    # ARNs and paths end in the id: arn:aws:ec2:...:security-group/sg-1, arn:aws:s3:::bucket
    tail = re.split(r"[/:]", text)[-1]
    return tail in ids


def mentions(record: dict[str, Any], resource_ids: Collection[str]) -> bool:
    """Does ``record`` name one of ``resource_ids`` (id or ARN) in ``resources[].ARN``,
    ``requestParameters`` or ``responseElements``? Whole values only: ``i-1`` is not ``i-12``."""
    ids = set(resource_ids)
    for res in record.get("resources") or []:
        if isinstance(res, dict) and _matches(str(res.get("ARN", "")), ids):
            return True
    return any(_matches(s, ids) for part in ("requestParameters", "responseElements")
               for s in _strings(record.get(part)))


def _filter(records: Iterable[dict[str, Any]], start: datetime, end: datetime,
            resource_ids: Collection[str] | None, event_names: Collection[str] | None) -> Iterator[dict[str, Any]]:
    names = set(event_names) if event_names is not None else None
    for r in records:
        if names is not None and r.get("eventName") not in names:
            continue
        if not start <= event_time(r) < end:
            continue
        if resource_ids is not None and not mentions(r, resource_ids):
            continue
        yield r


def events_between(
    start: datetime,
    end: datetime,
    resource_ids: Collection[str] | None = None,
    event_names: Collection[str] | None = None,
    *,
    regions: Collection[str] | None = None,
    trail_name: str | None = None,
) -> list[dict[str, Any]]:
    """CloudTrail records with ``start <= eventTime < end`` (naive datetimes are UTC), sorted by
    ``eventTime`` then ``eventID``; filtered to ``resource_ids`` / ``event_names`` when given.
    Files that cannot be read are skipped with a warning naming the key and the reason."""
    start, end = _utc(start), _utc(end)
    trail = find_trail(trail_name)
    files = list_log_files(start, end, regions=regions, trail=trail)

    def read(f: LogFile) -> list[dict[str, Any]]:
        try:
            return read_log_file(f.key, bucket=f.bucket)
        except MalformedLogFile as exc:
            log.warning("skipping unreadable CloudTrail log file %s", exc)
            return []

    out: list[dict[str, Any]] = []
    with ThreadPoolExecutor(max_workers=8) as pool:
        for records in pool.map(read, files):
            out.extend(_filter(records, start, end, resource_ids, event_names))
    out.sort(key=lambda r: (r["eventTime"], r.get("eventID", "")))
    return out
