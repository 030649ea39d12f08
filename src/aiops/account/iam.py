"""Least-privilege IAM policies generated from what the code declares.

    python -m aiops.account.iam [--out DIR] [--emulator] [--artifact-bucket B] ...
    aiops account policies [...]

Produces (JSON policy documents; the bootstrap template embeds the same statements):

* ``aiops-reader``   - every ``reader`` grant: collect, decide, report (connection ``aws_default``)
* ``aiops-notifier`` - every ``notifier`` grant: SNS Publish, SES SendRawEmail, EventBridge PutEvents
                       (attached to the reader role)
* ``aiops-executor`` - every ``executor`` grant: SSM automations of the MatCarv-* documents, runbook
                       publishing, ``iam:PassRole`` only to ``MatCarvAIOps-*``, routine-ops writes
                       (connection ``aws_executor``)
* ``aiops-deployer`` - what the person running ``aiops account bootstrap`` needs (not in the stack)
* ``aiops-runbook-<id>`` - the policy of runbook <id>'s automation role (its metadata's ``automation_role``,
                       ``MatCarvAIOps-<id>``): exactly the ``permissions``
                       of its ``include/runbooks/<id>.meta.yaml``

``--emulator`` widens resource scopes to ``*`` where moto authorises against ``*`` only (every service
but S3, SQS, IAM roles and STS): moto would refuse a correctly scoped statement there. Actions stay
exactly as declared, so the emulator proves the *action* set is sufficient and minimal; resource
scoping is proven on real AWS only (docs/connect-account.md lists what the emulator cannot enforce).
"""

from __future__ import annotations

import argparse
import json
import re
from collections import defaultdict
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from aiops.account.permissions import DECLARING_MODULES, ROLES, Grant, Role, grants
from aiops.core.settings import get_settings
from aiops.remediation.catalog import load_catalog

POLICY_VERSION = "2012-10-17"
#: Every runbook's ``automation_role`` (its metadata) starts with this; ``iam:PassRole`` is limited to it.
RUNBOOK_ROLE_PREFIX = "MatCarvAIOps-"
READER_ROLE = "aiops-reader"
EXECUTOR_ROLE = "aiops-executor"
#: Services whose requests moto authorises against a real resource ARN (others: ``*``).
EMULATOR_RESOURCE_AWARE = {"s3", "sqs", "sts"}
_VAR = re.compile(r"\$\{([A-Za-z0-9:]+)\}")
#: API operations whose IAM action has another name (moto authorises the API name; AWS the IAM name).
API_ALIASES = {
    "sqs:DeleteMessageBatch": "sqs:DeleteMessage",
    "sqs:SendMessageBatch": "sqs:SendMessage",
    "sqs:ChangeMessageVisibilityBatch": "sqs:ChangeMessageVisibility",
    "s3:HeadBucket": "s3:ListBucket",
    "s3:GetPublicAccessBlock": "s3:GetBucketPublicAccessBlock",
    "s3:PutPublicAccessBlock": "s3:PutBucketPublicAccessBlock",
    "s3:DeletePublicAccessBlock": "s3:PutBucketPublicAccessBlock",
    "sts:GetCallerIdentity": "",  # needs no permission
}


def runbook_roles(catalog_dir: Path | None = None) -> dict[str, str]:
    """``runbook id -> automation role name`` (the metadata's ``automation_role``)."""
    return {rb.id: rb.metadata.automation_role for rb in load_catalog(catalog_dir)}


def runbook_role_name(runbook_id: str, catalog_dir: Path | None = None) -> str:
    return runbook_roles(catalog_dir)[runbook_id]


def substitute(text: str, params: Mapping[str, str]) -> str:
    """Fill ``${Name}`` / ``${AWS::X}`` from ``params`` (unknown names are an error, not a blank)."""

    def repl(match: re.Match[str]) -> str:
        key = match.group(1)
        if key not in params:
            raise KeyError(f"no value for ${{{key}}} in {text!r}")
        return params[key]

    return _VAR.sub(repl, text)


def statements(role_grants: Iterable[Grant], *, sid_prefix: str, emulator: bool = False) -> list[dict[str, Any]]:
    """One Allow statement per resource scope, actions sorted (resources as templates)."""
    by_resource: dict[str, set[str]] = defaultdict(set)
    for g in role_grants:
        resource = g.resource
        if emulator and g.action.split(":", 1)[0] not in EMULATOR_RESOURCE_AWARE:
            resource = "*"
        by_resource[resource].add(g.action)
        if emulator:  # moto checks the API name where it differs from the IAM action
            by_resource[resource].update(api for api, iam in API_ALIASES.items() if iam == g.action)
    out = []
    for i, (resource, actions) in enumerate(sorted(by_resource.items(), key=lambda kv: (kv[0] != "*", kv[0]))):
        sid = f"{sid_prefix}{i}" if resource != "*" else f"{sid_prefix}Any"
        out.append({"Sid": sid, "Effect": "Allow", "Action": sorted(actions), "Resource": resource})
    return out


def role_statements(role: Role, *, emulator: bool = False,
                    modules: Iterable[str] = DECLARING_MODULES) -> list[dict[str, Any]]:
    stmts = statements((g for _, g in grants(role, modules)), sid_prefix=role.capitalize(), emulator=emulator)
    if role == "executor":
        for s in stmts:  # PassRole only to SSM (the automation roles' trust says ssm.amazonaws.com too)
            if s["Action"] == ["iam:PassRole"]:
                s["Condition"] = {"StringEquals": {"iam:PassedToService": "ssm.amazonaws.com"}}
    return stmts


def runbook_permissions(catalog_dir: Path | None = None) -> dict[str, list[str]]:
    """``runbook id -> IAM actions`` from the runbook metadata (only runbooks that load)."""
    catalog = load_catalog(catalog_dir)
    return {rb.id: sorted({str(p) for p in rb.metadata.permissions}) for rb in catalog}


def runbook_statements(actions: Iterable[str]) -> list[dict[str, Any]]:
    return [{"Sid": "RunbookSteps", "Effect": "Allow", "Action": sorted(set(actions)), "Resource": "*"}]


def render_policies(params: Mapping[str, str], *, emulator: bool = False,
                    catalog_dir: Path | None = None) -> dict[str, dict[str, Any]]:
    """Every generated policy document, resources filled from ``params``."""

    def doc(stmts: list[dict[str, Any]]) -> dict[str, Any]:
        filled = json.loads(json.dumps(stmts))
        for s in filled:
            s["Resource"] = substitute(s["Resource"], params)
            cond = s.get("Condition")
            if cond:
                s["Condition"] = json.loads(substitute(json.dumps(cond), params))
        return {"Version": POLICY_VERSION, "Statement": filled}

    out = {f"aiops-{role}": doc(role_statements(role, emulator=emulator)) for role in ROLES}
    for rid, actions in runbook_permissions(catalog_dir).items():
        out[f"aiops-runbook-{rid}"] = doc(runbook_statements(actions))
    return out


def default_params(*, account_id: str = "123456789012", region: str = "us-east-1", partition: str = "aws",
                   artifact_bucket: str | None = None, trail_bucket: str = "*",
                   event_bus: str | None = None) -> dict[str, str]:
    settings = get_settings()
    return {
        "AWS::AccountId": account_id, "AWS::Region": region, "AWS::Partition": partition,
        "ArtifactBucket": artifact_bucket or settings.artifact_bucket,
        "TrailBucket": trail_bucket or "*",
        "EventBusName": event_bus or settings.security_event_bus,
    }


def _matches(pattern: str, value: str) -> bool:
    return re.fullmatch(re.escape(pattern).replace(r"\*", ".*"), value, flags=re.IGNORECASE) is not None


def allowed(action: str, documents: Iterable[Mapping[str, Any]], resource: str | None = None) -> bool:
    """Is ``action`` (an IAM action or an API name, see :data:`API_ALIASES`) allowed by one of the policy
    documents, on ``resource`` (``None``: on any resource)?"""
    action = API_ALIASES.get(action, action)
    if not action:
        return True
    for document in documents:
        for s in document["Statement"]:
            if s.get("Effect") != "Allow":
                continue
            patterns = s["Action"] if isinstance(s["Action"], list) else [s["Action"]]
            resources = s["Resource"] if isinstance(s["Resource"], list) else [s["Resource"]]
            if resource is not None and not any(_matches(r, resource) for r in resources):
                continue
            if any(_matches(p, action) for p in patterns):
                return True
    return False


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m aiops.account.iam", description=__doc__.split("\n\n")[0])
    add_arguments(parser)
    return run(parser.parse_args(argv))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, help="write one <name>.json per policy into this directory")
    parser.add_argument("--emulator", action="store_true", help="resource scopes moto can enforce only")
    parser.add_argument("--account-id", default="123456789012")
    parser.add_argument("--region", default="us-east-1")
    parser.add_argument("--partition", default="aws")
    parser.add_argument("--artifact-bucket", default=None)
    parser.add_argument("--trail-bucket", default="*")
    parser.add_argument("--event-bus", default=None)


def run(args: argparse.Namespace) -> int:
    params = default_params(account_id=args.account_id, region=args.region, partition=args.partition,
                            artifact_bucket=args.artifact_bucket, trail_bucket=args.trail_bucket,
                            event_bus=args.event_bus)
    policies = render_policies(params, emulator=args.emulator)
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        for name, document in policies.items():
            (args.out / f"{name}.json").write_text(json.dumps(document, indent=2) + "\n")
        print(f"wrote {len(policies)} policies to {args.out}")
    else:
        print(json.dumps(policies, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
