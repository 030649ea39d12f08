"""The default security group of every VPC restricts all traffic."""

from __future__ import annotations

from collections.abc import Iterator

from aiops.compliance.model import CheckMeta, Inventory, Result, verdict

METADATA = CheckMeta(
    id="sg_default_restricts_all",
    title="The default security group of every VPC restricts all traffic",
    severity="MEDIUM",
    service="ec2",
    resource_type="AwsEc2SecurityGroup",
    cis=("5.4",),
    runbook=None,
    requires=("security_groups",),
    risk=(
        "Resources launched without a security group land in the default group and inherit its rules."
    ),
    remediation=(
        "Remove all inbound and outbound rules from the default security group."
    ),
)


def evaluate(inv: Inventory) -> Iterator[Result]:
    for sg in inv.of("security_groups"):
        if sg.get("name") != "default":
            continue
        n_in, n_out = len(sg["ingress"]), len(sg["egress"])
        yield verdict(METADATA, sg, n_in == 0 and n_out == 0, "no rules",
                      f"default security group has {n_in} inbound and {n_out} outbound rule(s)")
