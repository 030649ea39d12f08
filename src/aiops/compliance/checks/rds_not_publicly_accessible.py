"""RDS instances are not publicly accessible."""

from __future__ import annotations

from collections.abc import Iterator

from aiops.compliance.model import CheckMeta, Inventory, Result, verdict

METADATA = CheckMeta(
    id="rds_not_publicly_accessible",
    title="RDS instances are not publicly accessible",
    severity="CRITICAL",
    service="rds",
    resource_type="AwsRdsDbInstance",
    cis=("2.3.3",),
    runbook=None,
    requires=("rds_instances",),
    risk=(
        "The database endpoint resolves to a public address and can be attacked from the internet."
    ),
    remediation=(
        "Set PubliclyAccessible=false (ModifyDBInstance) and keep it in private subnets."
    ),
)


def evaluate(inv: Inventory) -> Iterator[Result]:
    for db in inv.of("rds_instances"):
        yield verdict(METADATA, db, not db["public"], "private", "the instance is publicly accessible")
