"""No IAM user has a full-admin (*:*) policy attached directly."""

from __future__ import annotations

from collections.abc import Iterator

from aiops.compliance.checks._common import is_admin_star
from aiops.compliance.model import CheckMeta, Inventory, Result, verdict

METADATA = CheckMeta(
    id="iam_user_no_admin_star_attached",
    title="No IAM user has a full-admin (*:*) policy attached directly",
    severity="CRITICAL",
    service="iam",
    resource_type="AwsIamUser",
    cis=("1.16",),
    runbook=None,
    requires=("iam_users", "iam_policies",),
    risk=(
        "A user holding full administrative privileges directly is one leaked password or key away from account takeover."
    ),
    remediation=(
        "Detach the policy from the user; grant the access it needs through a least-privilege group or role."
    ),
)


def evaluate(inv: Inventory) -> Iterator[Result]:
    admin = {p["arn"] for p in inv.of("iam_policies") if is_admin_star(p["document"])}
    admin.add(f"arn:{inv.partition}:iam::aws:policy/AdministratorAccess")
    for user in inv.of("iam_users"):
        hits = [p.rsplit("/", 1)[-1] for p in user["attached_policies"] if p in admin]
        yield verdict(METADATA, user, not hits, "no *:* policy attached directly",
                      "full-admin policy attached directly: " + ", ".join(hits))
