"""A multi-region CloudTrail trail is logging."""

from __future__ import annotations

from collections.abc import Iterator

from aiops.compliance.model import CheckMeta, Inventory, Result, verdict

METADATA = CheckMeta(
    id="cloudtrail_multi_region",
    title="A multi-region CloudTrail trail is logging",
    severity="HIGH",
    service="cloudtrail",
    resource_type="AwsAccount",
    cis=("3.1",),
    runbook=None,
    requires=("trails", "account",),
    risk=(
        "Without a multi-region trail, activity in other regions (a favourite of attackers) is not recorded."
    ),
    remediation=(
        "Create a multi-region trail with global service events and start logging."
    ),
)


def evaluate(inv: Inventory) -> Iterator[Result]:
    good = [t["id"] for t in inv.of("trails") if t["multi_region"] and t["is_logging"]]
    for acct in inv.of("account"):
        yield verdict(METADATA, acct, bool(good), "logging multi-region trail: " + ", ".join(good),
                      "no multi-region trail is logging")
