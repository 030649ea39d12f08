"""Root user has no access keys."""

from __future__ import annotations

from collections.abc import Iterator

from aiops.compliance.model import CheckMeta, Inventory, Result, verdict

METADATA = CheckMeta(
    id="iam_root_no_access_keys",
    title="Root user has no access keys",
    severity="CRITICAL",
    service="iam",
    resource_type="AwsAccount",
    cis=("1.4",),
    runbook=None,
    requires=("account",),
    risk=(
        "A leaked root access key gives unrestricted programmatic control of the account."
    ),
    remediation=(
        "Delete the root user's access keys (Security credentials page, signed in as root); use IAM roles."
    ),
)


def evaluate(inv: Inventory) -> Iterator[Result]:
    for acct in inv.of("account"):
        present = bool(acct["summary"].get("AccountAccessKeysPresent"))
        yield verdict(METADATA, acct, not present, "no root access keys", "the root user has access keys")
