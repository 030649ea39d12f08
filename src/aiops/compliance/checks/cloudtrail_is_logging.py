"""Every CloudTrail trail is logging."""

from __future__ import annotations

from collections.abc import Iterator

from aiops.compliance.model import CheckMeta, Inventory, Result, verdict

METADATA = CheckMeta(
    id="cloudtrail_is_logging",
    title="Every CloudTrail trail is logging",
    severity="HIGH",
    service="cloudtrail",
    resource_type="AwsCloudTrailTrail",
    cis=(),
    runbook=None,
    requires=("trails",),
    risk=(
        "A stopped trail is a classic step of an attacker covering their tracks."
    ),
    remediation=(
        "Start logging (StartLogging) and find out who stopped it (CloudTrail StopLogging event)."
    ),
)


def evaluate(inv: Inventory) -> Iterator[Result]:
    for trail in inv.of("trails"):
        yield verdict(METADATA, trail, trail["is_logging"], "logging", "the trail is not logging")
