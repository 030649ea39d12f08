"""RDS snapshots are not publicly shared."""

from __future__ import annotations

from collections.abc import Iterator

from aiops.compliance.model import CheckMeta, Inventory, Result, verdict

METADATA = CheckMeta(
    id="rds_snapshot_not_public",
    title="RDS snapshots are not publicly shared",
    severity="CRITICAL",
    service="rds",
    resource_type="AwsRdsDbSnapshot",
    cis=(),
    runbook=None,
    requires=("rds_snapshots",),
    risk=(
        "Anyone can restore a public snapshot and read the database."
    ),
    remediation=(
        "Remove 'all' from the snapshot's restore attribute (ModifyDBSnapshotAttribute)."
    ),
)


def evaluate(inv: Inventory) -> Iterator[Result]:
    for snap in inv.of("rds_snapshots"):
        yield verdict(METADATA, snap, not snap["public"], "private", "the snapshot is shared publicly")
