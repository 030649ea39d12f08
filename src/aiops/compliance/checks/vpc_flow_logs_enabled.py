"""VPC flow logging is enabled in every VPC."""

from __future__ import annotations

from collections.abc import Iterator

from aiops.compliance.model import CheckMeta, Inventory, Result, verdict

METADATA = CheckMeta(
    id="vpc_flow_logs_enabled",
    title="VPC flow logging is enabled in every VPC",
    severity="MEDIUM",
    service="ec2",
    resource_type="AwsEc2Vpc",
    cis=("3.7",),
    runbook=None,
    requires=("vpcs",),
    risk=(
        "Without flow logs, network traffic to and from a compromised host cannot be reconstructed."
    ),
    remediation=(
        "Create a flow log (at least REJECT traffic) for the VPC to CloudWatch Logs or S3."
    ),
)


def evaluate(inv: Inventory) -> Iterator[Result]:
    for vpc in inv.of("vpcs"):
        active = [f for f in vpc["flow_logs"] if f.get("status", "ACTIVE") == "ACTIVE"]
        yield verdict(METADATA, vpc, bool(active), "flow logs active", "no active flow log")
