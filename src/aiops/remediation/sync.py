"""Publish the runbook catalog to SSM as Automation documents (what runbook_sync runs).

A document is created when SSM does not have it, given a new version (made the default) when its
content changed, and left alone when unchanged — compared as parsed YAML, so formatting SSM
applies on its side does not count as a change. Runbooks the catalog rejects are reported with
the file and field, and the rest are still published.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from typing import Any

import yaml
from botocore.exceptions import ClientError

from aiops.account.connections import executor_client
from aiops.account.permissions import permissions
from aiops.remediation.catalog import load_catalog

PERMISSIONS = permissions(
    "publishing the runbook catalog as SSM documents MatCarv-*",
    reader=(
        "ssm:GetDocument @ arn:${AWS::Partition}:ssm:${AWS::Region}:${AWS::AccountId}:document/MatCarv-*",
    ),
    executor=(
        "ssm:GetDocument @ arn:${AWS::Partition}:ssm:${AWS::Region}:${AWS::AccountId}:document/MatCarv-*",
        "ssm:DescribeDocument @ arn:${AWS::Partition}:ssm:${AWS::Region}:${AWS::AccountId}:document/MatCarv-*",
        "ssm:CreateDocument @ arn:${AWS::Partition}:ssm:${AWS::Region}:${AWS::AccountId}:document/MatCarv-*",
        "ssm:UpdateDocument @ arn:${AWS::Partition}:ssm:${AWS::Region}:${AWS::AccountId}:document/MatCarv-*",
        "ssm:UpdateDocumentDefaultVersion @ arn:${AWS::Partition}:ssm:${AWS::Region}:${AWS::AccountId}:document/MatCarv-*",
        "ssm:AddTagsToResource @ arn:${AWS::Partition}:ssm:${AWS::Region}:${AWS::AccountId}:document/MatCarv-*",
    ),
)

log = logging.getLogger(__name__)
MANAGED_TAG = {"Key": "managed-by", "Value": "matcarv-aiops"}


@dataclass
class SyncResult:
    runbook: str
    document_name: str
    action: str  # created | updated | unchanged | error
    version: str | None = None
    detail: str = ""


def _current(ssm: Any, name: str) -> tuple[dict[str, Any] | None, str | None]:
    try:
        doc = ssm.get_document(Name=name, DocumentFormat="YAML")  # no version: the default one
    except ClientError as exc:
        if exc.response["Error"]["Code"] in {"InvalidDocument", "InvalidDocumentVersion"}:
            return None, None
        raise
    return yaml.safe_load(doc["Content"]), doc.get("DocumentVersion")


def sync_runbook(ssm: Any, rid: str, runbook: Any) -> SyncResult:
    """Create / update / leave one runbook's document so SSM runs exactly the catalog's version."""
    name = runbook.document_name
    try:
        current, version = _current(ssm, name)
        if current is None:
            created = ssm.create_document(Content=runbook.document_text, Name=name, DocumentType="Automation",
                                          DocumentFormat="YAML", Tags=[MANAGED_TAG])
            return SyncResult(rid, name, "created", created["DocumentDescription"].get("DocumentVersion"))
        if current == runbook.document:
            return SyncResult(rid, name, "unchanged", version)
        updated = ssm.update_document(Content=runbook.document_text, Name=name, DocumentVersion="$LATEST",
                                      DocumentFormat="YAML")
        new_version = updated["DocumentDescription"]["DocumentVersion"]
        ssm.update_document_default_version(Name=name, DocumentVersion=new_version)
        return SyncResult(rid, name, "updated", new_version, f"was version {version}")
    except ClientError as exc:
        return SyncResult(rid, name, "error", None, str(exc))


def ensure_published(runbook_id: str) -> SyncResult:
    """Before an approved execution: the account runs the reviewed catalog version of the runbook
    (published if this account never got it, e.g. a fresh account before the first runbook_sync)."""
    result = sync_runbook(executor_client("ssm"), runbook_id, load_catalog().get(runbook_id))
    if result.action == "error":
        raise RuntimeError(f"cannot publish runbook {runbook_id} as {result.document_name}: {result.detail}")
    if result.action != "unchanged":
        log.warning("runbook %s was %s in SSM before execution (version %s)", runbook_id, result.action,
                    result.version)
    return result


def sync_catalog(directory: Any = None) -> dict[str, Any]:
    catalog = load_catalog(directory)
    ssm = executor_client("ssm")
    results: list[SyncResult] = []
    for rid, runbook in sorted(catalog.runbooks.items()):
        results.append(sync_runbook(ssm, rid, runbook))
    errors = [str(e) for e in catalog.errors]
    report = {
        "results": [asdict(r) for r in results],
        "counts": {a: sum(r.action == a for r in results) for a in ("created", "updated", "unchanged", "error")},
        "catalog_errors": errors,
    }
    for r in results:
        log.info("%-28s %-10s %s %s", r.runbook, r.action, r.version or "", r.detail)
    for e in errors:
        log.warning("rejected: %s", e)
    return report
