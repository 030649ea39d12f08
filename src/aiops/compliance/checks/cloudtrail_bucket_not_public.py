"""The CloudTrail bucket is not publicly accessible."""

from __future__ import annotations

from collections.abc import Iterator

from aiops.compliance.checks._s3 import public_reasons
from aiops.compliance.model import CheckMeta, Inventory, Result, verdict

METADATA = CheckMeta(
    id="cloudtrail_bucket_not_public",
    title="The CloudTrail bucket is not publicly accessible",
    severity="CRITICAL",
    service="s3",
    resource_type="AwsS3Bucket",
    cis=(),
    runbook="block-public-s3-bucket",
    requires=("trails", "buckets",),
    risk=(
        "Public trail logs reveal the account's structure and activity to anyone."
    ),
    remediation=(
        "Turn on Block Public Access for the trail bucket and remove public grants and policy statements."
    ),
)


def evaluate(inv: Inventory) -> Iterator[Result]:
    trail_buckets = {t["bucket"] for t in inv.of("trails") if t.get("bucket")}
    for bucket in inv.of("buckets"):
        if bucket["id"] not in trail_buckets:
            continue
        why = public_reasons(bucket)
        yield verdict(METADATA, bucket, not why, "not public", "; ".join(why))
