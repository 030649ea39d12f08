"""Airflow Assets that connect the pipelines (data-aware scheduling).

``METRICS`` is updated by every successful ``metrics_extract`` run; analysis DAGs (anomaly
detection, SLO tracking, right-sizing) are scheduled on it. Its event ``extra`` says which range
and partitions changed: ``{"start", "end", "partitions", "rows", "series", "quarantined"}``.
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import Asset

from aiops.account.permissions import permissions
from aiops.core.aws import DEFAULT_RETRIES
from aiops.core.settings import get_settings

PERMISSIONS = permissions(
    "the SQS queues the AssetWatchers consume",
    reader=(
        "sqs:ReceiveMessage @ arn:${AWS::Partition}:sqs:${AWS::Region}:${AWS::AccountId}:aiops-*",
        "sqs:DeleteMessage @ arn:${AWS::Partition}:sqs:${AWS::Region}:${AWS::AccountId}:aiops-*",
        "sqs:GetQueueUrl @ arn:${AWS::Partition}:sqs:${AWS::Region}:${AWS::AccountId}:aiops-*",
        "sqs:GetQueueAttributes @ arn:${AWS::Partition}:sqs:${AWS::Region}:${AWS::AccountId}:aiops-*",
        "sqs:ChangeMessageVisibility @ arn:${AWS::Partition}:sqs:${AWS::Region}:${AWS::AccountId}:aiops-*",
    ),
)

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


#: One firing of a queue watcher: up to 10 messages per ReceiveMessage, this many receives.
OPS_EVENTS_RECEIVES_PER_FIRING = 10
#: Received messages stay invisible this long; the run deletes them when done (its last task,
#: ``aiops.core.queue.ack_messages``). Longer than a run takes, queueing included; a message not
#: deleted by then comes back and is recognised as a re-delivery. The queue's redrive policy
#: dead-letters it after maxReceiveCount.
OPS_EVENTS_VISIBILITY_TIMEOUT = 600


def _queue_watcher(name: str, url: str, waiter_delay: int) -> Any:
    """An ``AssetWatcher`` on an SQS queue consumed at least once (:mod:`aiops.core.queue`): 10
    messages per receive, several receives per firing, nothing deleted on reception. The trigger is
    serialised at parse time, so it carries the default retry policy (not the connection's
    ``config_kwargs``, which would need a connection lookup while parsing)."""
    from airflow.providers.common.messaging.triggers.msg_queue import MessageQueueTrigger
    from airflow.sdk import AssetWatcher

    trigger = MessageQueueTrigger(scheme="sqs", sqs_queue=url, aws_conn_id=get_settings().aws_conn_id,
                                  waiter_delay=waiter_delay, max_messages=10,
                                  num_batches=OPS_EVENTS_RECEIVES_PER_FIRING, delete_message_on_reception=False,
                                  visibility_timeout=OPS_EVENTS_VISIBILITY_TIMEOUT,
                                  botocore_config={"retries": dict(DEFAULT_RETRIES)})
    return AssetWatcher(name=name, trigger=trigger)


def ops_events_asset() -> Asset:
    """The SQS queue of operational events (EventBridge rule ``aiops-ops-events``), watched by an
    ``AssetWatcher``: each batch of messages becomes an asset event that starts ``alert_intake``; the
    messages (``Body``, ``ReceiptHandle``) are in ``extra["payload"]["message_batch"]``. The queue URL
    is the ``alerting_queue_url`` setting (default: the sandbox queue).

    Messages are not deleted on reception: ``alert_intake`` deletes them after it recorded them, so a
    failed run leaves them for a re-delivery and, in the end, the dead-letter queue."""
    settings = get_settings()
    return Asset(name="aiops_ops_events", group="aiops",
                 watchers=[_queue_watcher("aiops_ops_events_sqs", settings.ops_queue_url,
                                          settings.alerting_waiter_delay_seconds)])


def cloudtrail_files_asset() -> Asset:
    """New CloudTrail log files (S3 ObjectCreated notifications on the SQS queue
    ``security_queue_url``, default the sandbox's ``aiops-cloudtrail-files``), watched by an
    ``AssetWatcher``; each batch of messages starts ``security_events``. Like the ops events, the
    notifications are deleted by the run once it analysed the files and raised the alerts, never on
    reception."""
    settings = get_settings()
    return Asset(name="aiops_cloudtrail_files", group="aiops",
                 watchers=[_queue_watcher("aiops_cloudtrail_files_sqs", settings.cloudtrail_queue_url,
                                          settings.security_waiter_delay_seconds)])
