"""CloudTrail log file validation is enabled."""

from __future__ import annotations

from collections.abc import Iterator

from aiops.compliance.model import CheckMeta, Inventory, Result, verdict

METADATA = CheckMeta(
    id="cloudtrail_log_file_validation",
    title="CloudTrail log file validation is enabled",
    severity="MEDIUM",
    service="cloudtrail",
    resource_type="AwsCloudTrailTrail",
    cis=("3.2",),
    runbook=None,
    requires=("trails",),
    risk=(
        "Without digest files, deleted or altered log files cannot be detected."
    ),
    remediation=(
        "Enable log file validation on the trail (UpdateTrail --enable-log-file-validation)."
    ),
)


def evaluate(inv: Inventory) -> Iterator[Result]:
    for trail in inv.of("trails"):
        yield verdict(METADATA, trail, trail["log_file_validation"], "log file validation on",
                      "log file validation is off")
