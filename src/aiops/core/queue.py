"""At-least-once consumption of an SQS queue watched by an Airflow ``AssetWatcher``.

The watcher receives messages and does NOT delete them (``delete_message_on_reception=False``, see
``aiops.airflow.assets``); they stay invisible for its visibility timeout. The run that processes them
deletes them (:func:`ack_messages`, its last task) only after it recorded what they said. A run that
fails deletes nothing: the messages come back, and after the queue's ``maxReceiveCount`` SQS moves
them to the dead-letter queue (redrive policy). ``alert_intake`` (ops events) and ``security_events``
(CloudTrail file notifications) both consume their queues this way.
"""

from __future__ import annotations

import logging
from typing import Any

from aiops.account.permissions import permissions
from aiops.core import aws

PERMISSIONS = permissions(
    "acknowledging processed messages of the watched queues",
    reader=("sqs:DeleteMessage @ arn:${AWS::Partition}:sqs:${AWS::Region}:${AWS::AccountId}:aiops-*",),
)

log = logging.getLogger(__name__)


def messages_from_asset_events(events: list[Any]) -> list[dict[str, Any]]:
    """SQS messages from an AssetWatcher's asset events (``extra.payload.message_batch[]``):
    ``{"Body", "MessageId"}`` plus the ``ReceiptHandle`` that :func:`ack_messages` deletes them by."""
    out: list[dict[str, Any]] = []
    for ev in events:
        extra = getattr(ev, "extra", None) or (ev.get("extra") if isinstance(ev, dict) else None) or {}
        payload = extra.get("payload") or {}
        for msg in payload.get("message_batch") or []:
            if isinstance(msg, dict) and "Body" in msg:
                body = {"Body": msg["Body"], "MessageId": msg.get("MessageId")}
                if msg.get("ReceiptHandle"):
                    body["ReceiptHandle"] = msg["ReceiptHandle"]
                out.append(body)
    return out


def receipts(messages: list[Any]) -> list[dict[str, str]]:
    """``{"Id", "ReceiptHandle"}`` of the queue messages among ``messages`` (manual inputs have none)."""
    out: list[dict[str, str]] = []
    seen: set[str] = set()
    for m in messages:
        handle = m.get("ReceiptHandle") if isinstance(m, dict) else None
        if handle and handle not in seen:
            seen.add(handle)
            out.append({"Id": str(len(out)), "ReceiptHandle": handle})
    return out


def ack_messages(receipt_list: list[dict[str, str]], queue_url: str) -> dict[str, Any]:
    """Delete processed messages (DeleteMessageBatch, 10 per call). A handle SQS refuses (the message
    became visible again and was received by another run) is reported, not fatal: that run sees a
    re-delivery and deletes it."""
    if not receipt_list:
        return {"deleted": 0, "failed": []}
    sqs = aws.client("sqs")
    deleted, failed = 0, []
    for i in range(0, len(receipt_list), 10):
        chunk = [{"Id": str(j), "ReceiptHandle": r["ReceiptHandle"]} for j, r in enumerate(receipt_list[i:i + 10])]
        resp = sqs.delete_message_batch(QueueUrl=queue_url, Entries=chunk)
        deleted += len(resp.get("Successful", []))
        failed += [{"code": f.get("Code"), "message": f.get("Message")} for f in resp.get("Failed", [])]
    if failed:
        log.warning("%d message(s) not deleted (they will be re-delivered and recognised): %s", len(failed),
                    failed[:3])
    log.info("acknowledged %d message(s) on %s", deleted, queue_url)
    return {"deleted": deleted, "failed": failed}
