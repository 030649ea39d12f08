"""EC2 instances require IMDSv2."""

from __future__ import annotations

from collections.abc import Iterator

from aiops.compliance.model import CheckMeta, Inventory, Result, verdict

METADATA = CheckMeta(
    id="ec2_imdsv2_required",
    title="EC2 instances require IMDSv2",
    severity="MEDIUM",
    service="ec2",
    resource_type="AwsEc2Instance",
    cis=("5.6",),
    runbook=None,
    requires=("instances",),
    risk=(
        "IMDSv1 lets an SSRF bug in the application read the instance role's credentials."
    ),
    remediation=(
        "Set HttpTokens=required on the instance (ModifyInstanceMetadataOptions) and in launch templates."
    ),
)


def evaluate(inv: Inventory) -> Iterator[Result]:
    for inst in inv.of("instances"):
        ok = inst.get("http_tokens") == "required" or inst.get("http_endpoint") == "disabled"
        yield verdict(METADATA, inst, ok, "IMDSv2 required", f"IMDSv1 allowed (HttpTokens={inst.get('http_tokens')})")
