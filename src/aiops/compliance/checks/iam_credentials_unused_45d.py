"""Credentials unused for 45 days are disabled."""

from __future__ import annotations

from collections.abc import Iterator

from aiops.compliance.checks._common import age_days
from aiops.compliance.model import CheckMeta, Inventory, Result, verdict

METADATA = CheckMeta(
    id="iam_credentials_unused_45d",
    title="Credentials unused for 45 days are disabled",
    severity="MEDIUM",
    service="iam",
    resource_type="AwsIamUser",
    cis=("1.12",),
    runbook=None,
    requires=("iam_users",),
    risk=(
        "Forgotten credentials are not watched by anyone and are a quiet way in."
    ),
    remediation=(
        "Deactivate access keys and remove console passwords that have not been used for 45 days."
    ),
)


def evaluate(inv: Inventory) -> Iterator[Result]:
    now = inv.now
    for user in inv.of("iam_users"):
        active = [k for k in user["access_keys"] if k["status"] == "Active"]
        if not user["console"] and not active:
            continue
        stale = []
        if user["console"]:
            used = age_days(user.get("password_last_used"), now)
            if (used if used is not None else age_days(user.get("created"), now) or 0) > 45:
                stale.append("console password")
        for k in active:
            used = age_days(k.get("last_used"), now)
            if (used if used is not None else age_days(k["created"], now) or 0) > 45:
                stale.append(f"access key {k['id']}")
        yield verdict(METADATA, user, not stale, "credentials used in the last 45 days",
                      "unused for more than 45 days: " + ", ".join(stale))
