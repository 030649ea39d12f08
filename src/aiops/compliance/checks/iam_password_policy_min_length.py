"""Password policy requires at least 14 characters."""

from __future__ import annotations

from collections.abc import Iterator

from aiops.compliance.model import CheckMeta, Inventory, Result, verdict

METADATA = CheckMeta(
    id="iam_password_policy_min_length",
    title="Password policy requires at least 14 characters",
    severity="MEDIUM",
    service="iam",
    resource_type="AwsAccount",
    cis=("1.8",),
    runbook=None,
    requires=("account",),
    risk=(
        "Short passwords are guessed or cracked quickly."
    ),
    remediation=(
        "Set the account password policy's minimum length to 14 or more (UpdateAccountPasswordPolicy)."
    ),
)


def evaluate(inv: Inventory) -> Iterator[Result]:
    for acct in inv.of("account"):
        length = (acct.get("password_policy") or {}).get("MinimumPasswordLength", 0)
        yield verdict(METADATA, acct, length >= 14, f"minimum length {length}",
                      f"minimum password length is {length or 'not set'} (< 14)")
