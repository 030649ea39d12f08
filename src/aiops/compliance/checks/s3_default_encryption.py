"""S3 buckets have default encryption."""

from __future__ import annotations

from collections.abc import Iterator

from aiops.compliance.model import CheckMeta, Inventory, Result, verdict

METADATA = CheckMeta(
    id="s3_default_encryption",
    title="S3 buckets have default encryption",
    severity="MEDIUM",
    service="s3",
    resource_type="AwsS3Bucket",
    cis=(),
    runbook=None,
    requires=("buckets",),
    risk=(
        "Objects written without encryption headers are stored in the clear."
    ),
    remediation=(
        "Set default encryption (SSE-S3 or SSE-KMS) on the bucket."
    ),
)


def evaluate(inv: Inventory) -> Iterator[Result]:
    for bucket in inv.of("buckets"):
        rules = (bucket.get("encryption") or {}).get("Rules", [])
        yield verdict(METADATA, bucket, bool(rules), "default encryption on", "no default encryption")
