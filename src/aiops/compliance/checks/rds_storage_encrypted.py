"""RDS instances are encrypted at rest."""

from __future__ import annotations

from collections.abc import Iterator

from aiops.compliance.model import CheckMeta, Inventory, Result, verdict

METADATA = CheckMeta(
    id="rds_storage_encrypted",
    title="RDS instances are encrypted at rest",
    severity="HIGH",
    service="rds",
    resource_type="AwsRdsDbInstance",
    cis=("2.3.1",),
    runbook=None,
    requires=("rds_instances",),
    risk=(
        "Database files, backups and snapshots are stored unencrypted."
    ),
    remediation=(
        "Restore from an encrypted copy of a snapshot (encryption cannot be turned on in place)."
    ),
)


def evaluate(inv: Inventory) -> Iterator[Result]:
    for db in inv.of("rds_instances"):
        yield verdict(METADATA, db, db["encrypted"], "storage encrypted", "storage is not encrypted")
