"""No security group exposes database ports to the internet."""

from __future__ import annotations

from collections.abc import Iterator

from aiops.compliance.checks._common import world_open
from aiops.compliance.model import CheckMeta, Inventory, Result, verdict

DB_PORTS = (1433, 3306, 5432, 6379, 27017)

METADATA = CheckMeta(
    id="sg_db_ports_open_to_world",
    title="No security group exposes database ports to the internet",
    severity="HIGH",
    service="ec2",
    resource_type="AwsEc2SecurityGroup",
    cis=(),
    runbook=None,
    requires=("security_groups",),
    risk=(
        "Databases reachable from anywhere are scanned and attacked within minutes."
    ),
    remediation=(
        "Allow database ports only from the application tier's security group."
    ),
)


def evaluate(inv: Inventory) -> Iterator[Result]:
    for sg in inv.of("security_groups"):
        rules = sorted({r for p in DB_PORTS for r in world_open(sg, p)})
        yield verdict(METADATA, sg, not rules, "no database port open to the world",
                      "database port open to the world: " + ", ".join(rules))
