"""Root user not used for daily tasks."""

from __future__ import annotations

from collections.abc import Iterator

from aiops.compliance.checks._common import age_days
from aiops.compliance.model import CheckMeta, Inventory, Result, verdict

METADATA = CheckMeta(
    id="iam_root_not_used_recently",
    title="Root user not used for daily tasks",
    severity="HIGH",
    service="iam",
    resource_type="AwsAccount",
    cis=("1.7",),
    runbook=None,
    requires=("account",),
    risk=(
        "Routine use of the root user bypasses least privilege and audit by role."
    ),
    remediation=(
        "Use IAM Identity Center or IAM roles for administration; keep root for the few tasks that need it."
    ),
)


def evaluate(inv: Inventory) -> Iterator[Result]:
    now = inv.now
    for acct in inv.of("account"):
        root = acct.get("root") or {}
        used = [age_days(root.get(k), now) for k in
                ("password_last_used", "access_key_1_last_used_date", "access_key_2_last_used_date")]
        recent = [u for u in used if u is not None and u < 1]
        yield verdict(METADATA, acct, not recent, "root not used in the last day",
                      "the root user was used in the last 24 hours")
