"""Airflow Assets that connect the pipelines (data-aware scheduling).

``METRICS`` is updated by every successful ``metrics_extract`` run; analysis DAGs (anomaly
detection, SLO tracking, right-sizing) are scheduled on it. Its event ``extra`` says which range
and partitions changed: ``{"start", "end", "partitions", "rows", "series", "quarantined"}``.
"""

from __future__ import annotations

from airflow.sdk import Asset

from aiops.settings import get_settings

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
