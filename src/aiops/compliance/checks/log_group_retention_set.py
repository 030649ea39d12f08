"""CloudWatch log groups have a retention period."""

from __future__ import annotations

from collections.abc import Iterator

from aiops.compliance.model import CheckMeta, Inventory, Result, verdict

METADATA = CheckMeta(
    id="log_group_retention_set",
    title="CloudWatch log groups have a retention period",
    severity="LOW",
    service="logs",
    resource_type="AwsLogsLogGroup",
    cis=(),
    runbook=None,
    requires=("log_groups",),
    risk=(
        "Logs kept forever accumulate cost and personal data beyond any retention policy."
    ),
    remediation=(
        "Set a retention period on the log group (PutRetentionPolicy), e.g. 30-365 days."
    ),
)


def evaluate(inv: Inventory) -> Iterator[Result]:
    for group in inv.of("log_groups"):
        days = group.get("retention_days")
        yield verdict(METADATA, group, days is not None, f"retention {days} days", "no retention: kept forever")
