"""S3 buckets have Block Public Access on."""

from __future__ import annotations

from collections.abc import Iterator

from aiops.compliance.checks._s3 import PAB_FLAGS
from aiops.compliance.model import CheckMeta, Inventory, Result, verdict

METADATA = CheckMeta(
    id="s3_block_public_access",
    title="S3 buckets have Block Public Access on",
    severity="HIGH",
    service="s3",
    resource_type="AwsS3Bucket",
    cis=("2.1.4",),
    runbook="block-public-s3-bucket",
    requires=("buckets",),
    risk=(
        "Without Block Public Access one wrong ACL or policy makes data public."
    ),
    remediation=(
        "Turn on all four Block Public Access settings of the bucket (and of the account)."
    ),
)


def evaluate(inv: Inventory) -> Iterator[Result]:
    for bucket in inv.of("buckets"):
        pab = bucket.get("public_access_block") or {}
        off = [k for k in PAB_FLAGS if not pab.get(k)]
        yield verdict(METADATA, bucket, not off, "all four settings on",
                      "Block Public Access off: " + ", ".join(off))
