"""The CloudTrail bucket has server access logging."""

from __future__ import annotations

from collections.abc import Iterator

from aiops.compliance.model import CheckMeta, Inventory, Result, verdict

METADATA = CheckMeta(
    id="cloudtrail_bucket_access_logging",
    title="The CloudTrail bucket has server access logging",
    severity="LOW",
    service="s3",
    resource_type="AwsS3Bucket",
    cis=("3.4",),
    runbook=None,
    requires=("trails", "buckets",),
    risk=(
        "Without access logs nobody can tell who read or deleted trail logs."
    ),
    remediation=(
        "Enable S3 server access logging on the trail bucket to a separate log bucket."
    ),
)


def evaluate(inv: Inventory) -> Iterator[Result]:
    trail_buckets = {t["bucket"] for t in inv.of("trails") if t.get("bucket")}
    for bucket in inv.of("buckets"):
        if bucket["id"] in trail_buckets:
            yield verdict(METADATA, bucket, bool(bucket.get("logging")), "server access logging on",
                          "server access logging is off")
