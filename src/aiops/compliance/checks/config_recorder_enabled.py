"""AWS Config is recording in every region."""

from __future__ import annotations

from collections.abc import Iterator

from aiops.compliance.model import CheckMeta, Inventory, Result, verdict

METADATA = CheckMeta(
    id="config_recorder_enabled",
    title="AWS Config is recording in every region",
    severity="MEDIUM",
    service="config",
    resource_type="AwsAccount",
    cis=("3.3",),
    runbook=None,
    requires=("config_recorders",),
    risk=(
        "Without AWS Config there is no configuration history to investigate changes."
    ),
    remediation=(
        "Create a configuration recorder for all supported resources with a delivery channel, and start it."
    ),
)


def evaluate(inv: Inventory) -> Iterator[Result]:
    for region in inv.of("config_recorders"):
        ok = any(r["recording"] and r["all_supported"] for r in region["recorders"])
        yield verdict(METADATA, region, ok, "recording all resource types",
                      f"no configuration recorder recording all resources in {region['region']}")
