"""Active access keys are rotated within 90 days."""

from __future__ import annotations

from collections.abc import Iterator

from aiops.compliance.checks._common import age_days
from aiops.compliance.model import CheckMeta, Inventory, Result, verdict

METADATA = CheckMeta(
    id="iam_access_key_rotated_90d",
    title="Active access keys are rotated within 90 days",
    severity="MEDIUM",
    service="iam",
    resource_type="AwsIamUser",
    cis=("1.14",),
    runbook=None,
    requires=("iam_users",),
    risk=(
        "Long-lived keys are more likely to have leaked (old laptops, CI logs, repositories)."
    ),
    remediation=(
        "Create a new key, move its users to it, then deactivate and delete the old key."
    ),
)


def evaluate(inv: Inventory) -> Iterator[Result]:
    now = inv.now
    for user in inv.of("iam_users"):
        active = [k for k in user["access_keys"] if k["status"] == "Active"]
        if not active:
            continue
        old = [f"{k['id']} ({age:.0f} days)" for k in active
               if (age := age_days(k["created"], now)) is not None and age > 90]
        yield verdict(METADATA, user, not old, "active keys younger than 90 days",
                      "access key older than 90 days: " + ", ".join(old))
