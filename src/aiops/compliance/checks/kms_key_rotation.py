"""Customer-managed symmetric KMS keys rotate."""

from __future__ import annotations

from collections.abc import Iterator

from aiops.compliance.model import CheckMeta, Inventory, Result, verdict

METADATA = CheckMeta(
    id="kms_key_rotation",
    title="Customer-managed symmetric KMS keys rotate",
    severity="MEDIUM",
    service="kms",
    resource_type="AwsKmsKey",
    cis=("3.6",),
    runbook=None,
    requires=("kms_keys",),
    risk=(
        "Key material used for years increases the impact of a compromise."
    ),
    remediation=(
        "Enable automatic key rotation (EnableKeyRotation)."
    ),
)


def evaluate(inv: Inventory) -> Iterator[Result]:
    for key in inv.of("kms_keys"):
        if key["symmetric"]:
            yield verdict(METADATA, key, bool(key["rotation_enabled"]), "rotation on", "automatic rotation is off")
