"""EBS snapshots are not publicly shared."""

from __future__ import annotations

from collections.abc import Iterator

from aiops.compliance.model import CheckMeta, Inventory, Result, verdict

METADATA = CheckMeta(
    id="ebs_snapshot_not_public",
    title="EBS snapshots are not publicly shared",
    severity="CRITICAL",
    service="ec2",
    resource_type="AwsEc2Snapshot",
    cis=(),
    runbook=None,
    requires=("ebs_snapshots",),
    risk=(
        "Anyone can create a volume from a public snapshot and read its data."
    ),
    remediation=(
        "Remove the 'all' group from the snapshot's createVolumePermission."
    ),
)


def evaluate(inv: Inventory) -> Iterator[Result]:
    for snap in inv.of("ebs_snapshots"):
        yield verdict(METADATA, snap, not snap["public"], "private", "the snapshot is shared publicly")
