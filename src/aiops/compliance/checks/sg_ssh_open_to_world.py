"""No security group allows SSH (port 22) from the internet."""

from __future__ import annotations

from collections.abc import Iterator

from aiops.compliance.checks._common import world_open
from aiops.compliance.model import CheckMeta, Inventory, Result, verdict

METADATA = CheckMeta(
    id="sg_ssh_open_to_world",
    title="No security group allows SSH (port 22) from the internet",
    severity="HIGH",
    service="ec2",
    resource_type="AwsEc2SecurityGroup",
    cis=("5.2", "5.3",),
    runbook="revoke-world-open-ingress",
    requires=("security_groups",),
    risk=(
        "Remote administration on port 22 reachable from anywhere invites brute force and exploits."
    ),
    remediation=(
        "Remove the 0.0.0.0/0 and ::/0 sources for port 22; reach hosts through SSM Session Manager or a VPN."
    ),
)


def evaluate(inv: Inventory) -> Iterator[Result]:
    for sg in inv.of("security_groups"):
        rules = world_open(sg, 22)
        yield verdict(METADATA, sg, not rules, "port 22 not open to the world",
                      "open to the world: " + ", ".join(rules))
