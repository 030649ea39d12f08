"""RDS instances apply minor version upgrades."""

from __future__ import annotations

from collections.abc import Iterator

from aiops.compliance.model import CheckMeta, Inventory, Result, verdict

METADATA = CheckMeta(
    id="rds_auto_minor_version_upgrade",
    title="RDS instances apply minor version upgrades",
    severity="LOW",
    service="rds",
    resource_type="AwsRdsDbInstance",
    cis=("2.3.2",),
    runbook=None,
    requires=("rds_instances",),
    risk=(
        "Security fixes in minor engine versions are never applied."
    ),
    remediation=(
        "Enable AutoMinorVersionUpgrade on the instance."
    ),
)


def evaluate(inv: Inventory) -> Iterator[Result]:
    for db in inv.of("rds_instances"):
        yield verdict(METADATA, db, db["auto_minor_version_upgrade"], "on", "auto minor version upgrade is off")
