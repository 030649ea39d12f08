"""What the ``security_events`` DAG does (testable without Airflow).

1. :func:`keys_from_notifications` — the log keys named by S3 ``ObjectCreated`` notifications
   (the SQS message bodies the AssetWatcher delivered), or :func:`keys_for_range` for a manual run.
   The watcher deletes nothing on reception; :func:`ack_notifications` deletes the notifications
   once 2. and 3. succeeded (at least once, failures dead-lettered: :mod:`aiops.core.queue`).
2. :func:`analyse_files` — read each file; a malformed or truncated one is quarantined (state store
   row + the raw bytes and the reason in the artifact store) and the rest are processed; run the
   detectors over the batch; store the detections at ``security/detections/dt=<day>/<batch>.json``.
3. :func:`raise_alerts` — one EventBridge event per detection: Source ``matcarv.aiops``,
   DetailType ``AIOps Security Event``, Detail ``{detection, severity, title, resource, actor,
   region, event_time, event_ids, log_keys, evidence}`` (the alert intake normalises these keys).

IAM: s3:GetObject/ListBucket on the trail bucket, cloudtrail:DescribeTrails, events:PutEvents,
plus the artifact/state stores.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import unquote_plus

from aiops.account.permissions import permissions
from aiops.core import aws, queue
from aiops.core.artifacts import ArtifactStore
from aiops.core.settings import get_settings
from aiops.core.state import StateStore, security_quarantine
from aiops.security import collect as cloudtrail
from aiops.security.detections import Detection, DetectionContext, TrailEvent, detect

PERMISSIONS = permissions(
    "security alerts onto the event bus",
    reader=(
        "s3:GetObject @ arn:${AWS::Partition}:s3:::${TrailBucket}/*",
    ),
    notifier=(
        "events:PutEvents @ arn:${AWS::Partition}:events:${AWS::Region}:${AWS::AccountId}:event-bus/${EventBusName}",
    ),
)

log = logging.getLogger(__name__)
SOURCE = "matcarv.aiops"
DETAIL_TYPE = "AIOps Security Event"
DETAIL_KEYS = ("detection", "severity", "title", "resource", "actor", "region", "event_time", "event_ids",
               "log_keys", "evidence")


def keys_from_notifications(bodies: Iterable[str | dict[str, Any]]) -> list[dict[str, str]]:
    """``[{"bucket", "key"}]`` of CloudTrail log files in S3 event notification bodies (test events,
    digests and other objects ignored; keys URL-decoded as S3 encodes them)."""
    out: dict[tuple[str, str], dict[str, str]] = {}
    for body in bodies:
        try:
            doc = json.loads(body) if isinstance(body, str) else body
        except json.JSONDecodeError:
            log.warning("ignoring a notification that is not JSON: %.200s", body)
            continue
        if isinstance(doc, dict) and "Message" in doc and isinstance(doc["Message"], str):  # via SNS
            try:
                doc = json.loads(doc["Message"])
            except json.JSONDecodeError:
                continue
        for rec in (doc.get("Records") or []) if isinstance(doc, dict) else []:
            if not str(rec.get("eventName", "")).startswith("ObjectCreated"):
                continue
            bucket = rec.get("s3", {}).get("bucket", {}).get("name", "")
            key = unquote_plus(rec.get("s3", {}).get("object", {}).get("key", ""))
            if bucket and cloudtrail.parse_key(key):
                out[(bucket, key)] = {"bucket": bucket, "key": key}
    return sorted(out.values(), key=lambda x: (x["bucket"], x["key"]))


def messages_from_asset_events(triggering_asset_events: Any) -> list[dict[str, Any]]:
    """The SQS messages (``Body``, ``MessageId``, ``ReceiptHandle``) of the AssetWatcher's asset
    events (``{asset: [event, ...]}``, as Airflow passes ``triggering_asset_events``)."""
    return [m for events in (triggering_asset_events or {}).values()
            for m in queue.messages_from_asset_events(list(events))]


def bodies_from_asset_events(triggering_asset_events: Any) -> list[str]:
    """SQS message bodies from the AssetWatcher's asset events (``extra.payload.message_batch[].Body``)."""
    return [m["Body"] for m in messages_from_asset_events(triggering_asset_events)]


def ack_notifications(receipt_list: list[dict[str, str]]) -> dict[str, Any]:
    """Delete the notifications of a run that analysed their files and raised the alerts (its last
    task). A failed run deletes nothing: the notifications come back, and after the queue's
    ``maxReceiveCount`` SQS moves them to ``aiops-cloudtrail-files-dlq`` (:mod:`aiops.core.queue`)."""
    return queue.ack_messages(receipt_list, get_settings().cloudtrail_queue_url)


def keys_for_range(start: datetime, end: datetime) -> list[dict[str, str]]:
    trail = cloudtrail.find_trail(get_settings().security_trail_name or None)
    return [{"bucket": f.bucket, "key": f.key} for f in cloudtrail.list_log_files(start, end, trail=trail)]


def context() -> DetectionContext:
    s = get_settings()
    return DetectionContext(home_regions=frozenset(s.security_home_regions or s.regions),
                            access_denied_threshold=s.security_access_denied_threshold,
                            access_denied_window=timedelta(minutes=s.security_access_denied_window_minutes))


def quarantine(bucket: str, key: str, reason: str, data: bytes | None, *, run_id: str | None = None) -> str:
    """Record a malformed file (once per key) and keep its bytes and reason as artifacts."""
    from sqlalchemy import delete, insert

    now = datetime.now(UTC)
    store = ArtifactStore()
    name = key.rsplit("/", 1)[-1]
    artifact = store.key("security", "quarantine", now, name)
    if data is not None:
        store.put_bytes(artifact, data, "application/gzip")
    store.put_json(artifact + ".reason.json", {"bucket": bucket, "key": key, "reason": reason,
                                               "quarantined_at": now.isoformat(), "run_id": run_id})
    state = StateStore()
    state.migrate()
    with state.engine.begin() as conn:
        conn.execute(delete(security_quarantine).where(security_quarantine.c.log_key == key))
        conn.execute(insert(security_quarantine).values(log_key=key, bucket=bucket, reason=reason,
                                                        artifact_key=artifact, quarantined_at=now, run_id=run_id))
    state.audit(actor="security_events", action="quarantine_log_file", subject=key,
                detail={"bucket": bucket, "reason": reason, "artifact": artifact}, run_id=run_id)
    log.warning("Quarantined %s: %s (copy at %s)", key, reason, store.uri(artifact))
    return artifact


def quarantined() -> list[dict[str, Any]]:
    from sqlalchemy import select

    state = StateStore()
    state.migrate()
    with state.engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(select(security_quarantine).order_by(
            security_quarantine.c.quarantined_at))]


def batch_id(files: list[dict[str, str]]) -> str:
    return hashlib.sha256("\n".join(f"{f['bucket']}/{f['key']}" for f in files).encode()).hexdigest()[:16]


def analyse_files(files: list[dict[str, str]], *, run_id: str | None = None,
                  start: datetime | None = None, end: datetime | None = None) -> dict[str, Any]:
    """Read, quarantine the unreadable, detect. ``start``/``end`` (optional) keep only the records
    of that window (a manual time-range run)."""
    from concurrent.futures import ThreadPoolExecutor

    s3 = aws.client("s3")
    events: list[TrailEvent] = []
    bad: list[dict[str, str]] = []

    def fetch(f: dict[str, str]) -> bytes:
        return s3.get_object(Bucket=f["bucket"], Key=f["key"])["Body"].read()

    with ThreadPoolExecutor(max_workers=8) as pool:  # S3 reads are I/O bound; parsing stays in order
        bodies = pool.map(fetch, files)
        for n, (f, data) in enumerate(zip(files, bodies, strict=True), 1):
            try:
                records = cloudtrail.parse_log_file(f["key"], data)
            except cloudtrail.MalformedLogFile as exc:
                quarantine(f["bucket"], f["key"], exc.reason, data, run_id=run_id)
                bad.append({**f, "reason": exc.reason})
                continue
            for r in records:
                e = TrailEvent(r, f["key"])
                if (start is None or e.time >= start) and (end is None or e.time < end):
                    events.append(e)
            if n % 50 == 0:
                log.info("read %d of %d log files (%d records)", n, len(files), len(events))
    detections = detect(events, context())
    bid = batch_id(files)
    key = ArtifactStore.key("security", "detections", datetime.now(UTC), f"{bid}.json")
    ArtifactStore().put_json(key, {"files": files, "quarantined": bad, "records": len(events),
                                   "detections": [d.detail() for d in detections]})
    by: dict[str, int] = {}
    for d in detections:
        by[d.detection] = by.get(d.detection, 0) + 1
    log.info("%d file(s), %d record(s), %d quarantined, detections: %s", len(files), len(events), len(bad),
             by or "none")
    return {"files": len(files), "records": len(events), "quarantined": bad, "detections_key": key,
            "detections": [d.detail() for d in detections]}


def alert_entry(d: Detection | dict[str, Any]) -> dict[str, Any]:
    detail = d.detail() if isinstance(d, Detection) else {k: d[k] for k in DETAIL_KEYS}
    return {"Source": SOURCE, "DetailType": DETAIL_TYPE, "Detail": json.dumps(detail, default=str),
            "EventBusName": get_settings().security_event_bus,
            "Resources": [], "Time": datetime.fromisoformat(str(detail["event_time"]).replace("Z", "+00:00"))}


def _alerted_key(detail: dict[str, Any]) -> str:
    day = str(detail["event_time"])[:10]
    return ArtifactStore.key("security", "alerted", day, f"{detail['evidence']['fingerprint']}.json")


def raise_alerts(detections: list[dict[str, Any]]) -> dict[str, Any]:
    """PutEvents in batches of 10 (the API maximum); fails loudly when EventBridge refuses any.

    Idempotent: an alert already sent (a marker per fingerprint in the artifact store) is not sent
    again, so a retry, a re-delivered notification or an overlapping manual range stays quiet."""
    store = ArtifactStore()
    events = aws.client("events")
    todo = [d for d in detections if store.get_bytes(_alerted_key(d)) is None]
    entries = [alert_entry(d) for d in todo]
    sent, failed = 0, []
    for i in range(0, len(entries), 10):
        resp = events.put_events(Entries=entries[i:i + 10])
        for d, entry, result in zip(todo[i:i + 10], entries[i:i + 10], resp.get("Entries", []), strict=False):
            if result.get("ErrorCode"):
                failed.append({"detail": entry["Detail"][:200], "error": result.get("ErrorCode")})
            else:
                sent += 1
                store.put_json(_alerted_key(d), {"event_id": result.get("EventId"), "detection": d["detection"],
                                                 "title": d["title"], "event_ids": d["event_ids"]})
    log.info("%d security alert(s) put on EventBridge, %d already sent before, %d failed", sent,
             len(detections) - len(todo), len(failed))
    if failed:
        raise RuntimeError(f"EventBridge refused {len(failed)} alert(s): {failed[:3]}")
    return {"sent": sent, "already_sent": len(detections) - len(todo)}
