"""Airflow Assets that connect the pipelines (data-aware scheduling).

``METRICS`` is updated by every successful ``metrics_extract`` run; analysis DAGs (anomaly
detection, SLO tracking, right-sizing) are scheduled on it. Its event ``extra`` says which range
and partitions changed: ``{"start", "end", "partitions", "rows", "series", "quarantined"}``.
"""

from __future__ import annotations

from airflow.sdk import Asset

from aiops.core.settings import get_settings

METRICS = Asset(
    name="aiops_metrics_cloudwatch",
    uri=f"s3://{get_settings().artifact_bucket}/metrics/cloudwatch/",
    group="aiops",
)

ANOMALIES = Asset(
    name="aiops_anomalies",
    uri=f"s3://{get_settings().artifact_bucket}/anomaly/anomalies/",
    group="aiops",
)

INCIDENTS = Asset(
    name="aiops_incidents",
    uri=f"s3://{get_settings().artifact_bucket}/incidents/",
    group="aiops",
)
"""Updated by ``alert_intake`` when incidents are opened or updated; ``incident_response`` is
scheduled on it. Event ``extra``: ``{"incident_ids": [...], "created": [...]}``."""


def ops_events_asset() -> Asset:
    """The SQS queue of operational events (EventBridge rule ``aiops-ops-events``), watched by an
    ``AssetWatcher``: each batch of messages becomes an asset event that starts ``alert_intake``; the
    message bodies are in ``extra["payload"]["message_batch"][i]["Body"]``. The queue URL is the
    ``alerting_queue_url`` setting (default: the sandbox queue)."""
    from airflow.providers.common.messaging.triggers.msg_queue import MessageQueueTrigger
    from airflow.sdk import AssetWatcher

    settings = get_settings()
    trigger = MessageQueueTrigger(scheme="sqs", sqs_queue=settings.ops_queue_url, aws_conn_id=settings.aws_conn_id,
                                  waiter_delay=settings.alerting_waiter_delay_seconds)
    return Asset(name="aiops_ops_events", group="aiops",
                 watchers=[AssetWatcher(name="aiops_ops_events_sqs", trigger=trigger)])


def cloudtrail_files_asset() -> Asset:
    """New CloudTrail log files (S3 ObjectCreated notifications on the SQS queue
    ``security_queue_url``, default the sandbox's ``aiops-cloudtrail-files``), watched by an
    ``AssetWatcher``; each batch of messages starts ``security_events``."""
    from airflow.providers.common.messaging.triggers.msg_queue import MessageQueueTrigger
    from airflow.sdk import AssetWatcher

    settings = get_settings()
    url = settings.security_queue_url or f"{settings.sandbox_endpoint}/123456789012/aiops-cloudtrail-files"
    trigger = MessageQueueTrigger(scheme="sqs", sqs_queue=url, aws_conn_id=settings.aws_conn_id,
                                  waiter_delay=settings.security_waiter_delay_seconds)
    return Asset(name="aiops_cloudtrail_files", group="aiops",
                 watchers=[AssetWatcher(name="aiops_cloudtrail_files_sqs", trigger=trigger)])
