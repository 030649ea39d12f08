"""Each IAM user has at most one active access key."""

from __future__ import annotations

from collections.abc import Iterator

from aiops.compliance.model import CheckMeta, Inventory, Result, verdict

METADATA = CheckMeta(
    id="iam_user_one_active_key",
    title="Each IAM user has at most one active access key",
    severity="LOW",
    service="iam",
    resource_type="AwsIamUser",
    cis=("1.13",),
    runbook=None,
    requires=("iam_users",),
    risk=(
        "Two active keys double the exposure and usually mean a rotation was never finished."
    ),
    remediation=(
        "Finish the rotation: deactivate and delete the key no longer in use."
    ),
)


def evaluate(inv: Inventory) -> Iterator[Result]:
    for user in inv.of("iam_users"):
        active = [k["id"] for k in user["access_keys"] if k["status"] == "Active"]
        if active:
            yield verdict(METADATA, user, len(active) <= 1, "one active key",
                          f"{len(active)} active access keys")
