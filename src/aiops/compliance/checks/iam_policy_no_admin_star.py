"""No attached customer policy allows full admin (*:*)."""

from __future__ import annotations

from collections.abc import Iterator

from aiops.compliance.checks._common import is_admin_star
from aiops.compliance.model import CheckMeta, Inventory, Result, verdict

METADATA = CheckMeta(
    id="iam_policy_no_admin_star",
    title="No attached customer policy allows full admin (*:*)",
    severity="HIGH",
    service="iam",
    resource_type="AwsIamPolicy",
    cis=("1.16",),
    runbook=None,
    requires=("iam_policies",),
    risk=(
        "Full administrative privileges granted by a custom policy escape least-privilege review."
    ),
    remediation=(
        "Replace the policy with least-privilege statements, or detach it from every user, group and role."
    ),
)


def evaluate(inv: Inventory) -> Iterator[Result]:
    for policy in inv.of("iam_policies"):
        if policy["attachment_count"] == 0:
            continue
        yield verdict(METADATA, policy, not is_admin_star(policy["document"]), "no Allow *:* statement",
                      f"allows Action * on Resource * and is attached {policy['attachment_count']} time(s)")
