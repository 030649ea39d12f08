"""No security group allows all traffic from the internet."""

from __future__ import annotations

from collections.abc import Iterator

from aiops.compliance.checks._common import world_open
from aiops.compliance.model import CheckMeta, Inventory, Result, verdict

METADATA = CheckMeta(
    id="sg_all_ports_open_to_world",
    title="No security group allows all traffic from the internet",
    severity="CRITICAL",
    service="ec2",
    resource_type="AwsEc2SecurityGroup",
    cis=("5.2", "5.3",),
    runbook=None,
    requires=("security_groups",),
    risk=(
        "Every port of every attached host is exposed to the internet."
    ),
    remediation=(
        "Replace the all-traffic rule with the specific ports and sources the service needs."
    ),
)


def evaluate(inv: Inventory) -> Iterator[Result]:
    for sg in inv.of("security_groups"):
        rules = world_open(sg, None)
        yield verdict(METADATA, sg, not rules, "no all-ports world rule",
                      "all ports open to the world: " + ", ".join(rules))
