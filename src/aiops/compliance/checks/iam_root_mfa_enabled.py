"""Root user has MFA enabled."""

from __future__ import annotations

from collections.abc import Iterator

from aiops.compliance.model import CheckMeta, Inventory, Result, verdict

METADATA = CheckMeta(
    id="iam_root_mfa_enabled",
    title="Root user has MFA enabled",
    severity="CRITICAL",
    service="iam",
    resource_type="AwsAccount",
    cis=("1.5",),
    runbook=None,
    requires=("account",),
    risk=(
        "Anyone with the root password controls every resource and billing setting of the account."
    ),
    remediation=(
        "Enable a hardware or virtual MFA device on the root user (IAM console, signed in as root)."
    ),
)


def evaluate(inv: Inventory) -> Iterator[Result]:
    for acct in inv.of("account"):
        enabled = bool(acct["summary"].get("AccountMFAEnabled"))
        yield verdict(METADATA, acct, enabled, "root MFA is enabled", "the root user has no MFA device")
