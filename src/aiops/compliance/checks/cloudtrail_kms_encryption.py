"""CloudTrail logs are encrypted with a KMS key."""

from __future__ import annotations

from collections.abc import Iterator

from aiops.compliance.model import CheckMeta, Inventory, Result, verdict

METADATA = CheckMeta(
    id="cloudtrail_kms_encryption",
    title="CloudTrail logs are encrypted with a KMS key",
    severity="MEDIUM",
    service="cloudtrail",
    resource_type="AwsCloudTrailTrail",
    cis=("3.5",),
    runbook=None,
    requires=("trails",),
    risk=(
        "SSE-KMS adds a second permission (kms:Decrypt) between a reader of the bucket and the logs."
    ),
    remediation=(
        "Configure the trail with a customer managed KMS key (UpdateTrail --kms-key-id)."
    ),
)


def evaluate(inv: Inventory) -> Iterator[Result]:
    for trail in inv.of("trails"):
        yield verdict(METADATA, trail, bool(trail.get("kms_key_id")), "encrypted with a KMS key",
                      "trail logs are not encrypted with a KMS key")
