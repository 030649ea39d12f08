"""S3 buckets are not public through their policy or ACL."""

from __future__ import annotations

from collections.abc import Iterator

from aiops.compliance.checks._s3 import public_reasons
from aiops.compliance.model import CheckMeta, Inventory, Result, verdict

METADATA = CheckMeta(
    id="s3_bucket_not_public",
    title="S3 buckets are not public through their policy or ACL",
    severity="CRITICAL",
    service="s3",
    resource_type="AwsS3Bucket",
    cis=("2.1.4",),
    runbook="block-public-s3-bucket",
    requires=("buckets",),
    risk=(
        "Anyone on the internet can read (or write) the bucket's objects."
    ),
    remediation=(
        "Remove public statements and grants, then turn on Block Public Access."
    ),
)


def evaluate(inv: Inventory) -> Iterator[Result]:
    for bucket in inv.of("buckets"):
        why = public_reasons(bucket)
        yield verdict(METADATA, bucket, not why, "not public", "; ".join(why))
