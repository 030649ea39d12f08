"""EBS encryption by default is on in every region."""

from __future__ import annotations

from collections.abc import Iterator

from aiops.compliance.model import CheckMeta, Inventory, Result, verdict

METADATA = CheckMeta(
    id="ebs_default_encryption",
    title="EBS encryption by default is on in every region",
    severity="MEDIUM",
    service="ec2",
    resource_type="AwsAccount",
    cis=("2.2.1",),
    runbook="enable-ebs-default-encryption",
    requires=("ebs_regions",),
    risk=(
        "New volumes and snapshot copies are created unencrypted unless every team remembers to ask."
    ),
    remediation=(
        "Enable EBS encryption by default in the region (EnableEbsEncryptionByDefault)."
    ),
)


def evaluate(inv: Inventory) -> Iterator[Result]:
    for region in inv.of("ebs_regions"):
        yield verdict(METADATA, region, region["encryption_by_default"], "on",
                      f"EBS encryption by default is off in {region['region']}")
