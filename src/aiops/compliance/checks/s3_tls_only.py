"""S3 bucket policies deny requests without TLS."""

from __future__ import annotations

from collections.abc import Iterator

from aiops.compliance.checks._s3 import denies_insecure_transport
from aiops.compliance.model import CheckMeta, Inventory, Result, verdict

METADATA = CheckMeta(
    id="s3_tls_only",
    title="S3 bucket policies deny requests without TLS",
    severity="MEDIUM",
    service="s3",
    resource_type="AwsS3Bucket",
    cis=("2.1.1",),
    runbook=None,
    requires=("buckets",),
    risk=(
        "Plain-HTTP requests expose data and credentials in transit."
    ),
    remediation=(
        "Add a Deny statement for all principals when aws:SecureTransport is false."
    ),
)


def evaluate(inv: Inventory) -> Iterator[Result]:
    for bucket in inv.of("buckets"):
        ok = denies_insecure_transport(bucket.get("policy") or {})
        yield verdict(METADATA, bucket, ok, "denies aws:SecureTransport=false",
                      "the bucket policy does not deny non-TLS requests")
