"""IAM users receive permissions only through groups."""

from __future__ import annotations

from collections.abc import Iterator

from aiops.compliance.model import CheckMeta, Inventory, Result, verdict

METADATA = CheckMeta(
    id="iam_user_no_direct_policies",
    title="IAM users receive permissions only through groups",
    severity="LOW",
    service="iam",
    resource_type="AwsIamUser",
    cis=("1.15",),
    runbook=None,
    requires=("iam_users",),
    risk=(
        "Permissions attached to individual users are hard to review and outlive role changes."
    ),
    remediation=(
        "Move the user's policies to a group (or a role) and detach them from the user."
    ),
)


def evaluate(inv: Inventory) -> Iterator[Result]:
    for user in inv.of("iam_users"):
        direct = [p.rsplit("/", 1)[-1] for p in user["attached_policies"]] + list(user["inline_policies"])
        yield verdict(METADATA, user, not direct, "no policies attached directly",
                      "policies attached directly: " + ", ".join(direct))
