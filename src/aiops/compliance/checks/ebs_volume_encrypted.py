"""EBS volumes are encrypted."""

from __future__ import annotations

from collections.abc import Iterator

from aiops.compliance.model import CheckMeta, Inventory, Result, verdict

METADATA = CheckMeta(
    id="ebs_volume_encrypted",
    title="EBS volumes are encrypted",
    severity="MEDIUM",
    service="ec2",
    resource_type="AwsEc2Volume",
    cis=("2.2.1",),
    runbook=None,
    requires=("volumes",),
    risk=(
        "Unencrypted volumes (and their snapshots) expose data outside the instance's control."
    ),
    remediation=(
        "Snapshot the volume, copy the snapshot with encryption, create a volume from it and swap it in."
    ),
)


def evaluate(inv: Inventory) -> Iterator[Result]:
    for vol in inv.of("volumes"):
        yield verdict(METADATA, vol, vol["encrypted"], "encrypted", "the volume is not encrypted")
