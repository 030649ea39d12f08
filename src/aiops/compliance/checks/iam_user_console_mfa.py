"""IAM users with a console password have MFA."""

from __future__ import annotations

from collections.abc import Iterator

from aiops.compliance.model import CheckMeta, Inventory, Result, verdict

METADATA = CheckMeta(
    id="iam_user_console_mfa",
    title="IAM users with a console password have MFA",
    severity="HIGH",
    service="iam",
    resource_type="AwsIamUser",
    cis=("1.10",),
    runbook=None,
    requires=("iam_users",),
    risk=(
        "A phished or guessed password alone gives console access."
    ),
    remediation=(
        "Enable an MFA device for the user, or remove the console password if it is not needed."
    ),
)


def evaluate(inv: Inventory) -> Iterator[Result]:
    for user in inv.of("iam_users"):
        if not user["console"]:
            continue
        yield verdict(METADATA, user, user["mfa_devices"] > 0, "MFA enabled",
                      "console password without an MFA device")
