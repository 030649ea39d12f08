"""Password policy prevents reuse of the last 24 passwords."""

from __future__ import annotations

from collections.abc import Iterator

from aiops.compliance.model import CheckMeta, Inventory, Result, verdict

METADATA = CheckMeta(
    id="iam_password_policy_reuse",
    title="Password policy prevents reuse of the last 24 passwords",
    severity="MEDIUM",
    service="iam",
    resource_type="AwsAccount",
    cis=("1.9",),
    runbook=None,
    requires=("account",),
    risk=(
        "Re-used passwords keep working after a leak even when users are forced to rotate."
    ),
    remediation=(
        "Set PasswordReusePrevention to 24 in the account password policy."
    ),
)


def evaluate(inv: Inventory) -> Iterator[Result]:
    for acct in inv.of("account"):
        reuse = (acct.get("password_policy") or {}).get("PasswordReusePrevention", 0)
        yield verdict(METADATA, acct, reuse >= 24, f"reuse prevention {reuse}",
                      f"password reuse prevention is {reuse or 'not set'} (< 24)")
