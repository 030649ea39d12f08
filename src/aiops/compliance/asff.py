"""Compliance results as AWS Security Finding Format findings, imported into Security Hub.

One finding per (check, resource), with a stable ``Id`` so every sweep updates the same finding:

- FAILED -> ``Compliance.Status`` FAILED, ``RecordState`` ACTIVE, ``Workflow.Status`` NEW;
- FAILED under an accepted-risk exception -> the same with ``Workflow.Status`` SUPPRESSED and a Note;
- PASSED where Security Hub holds a not-passing finding from the previous sweep -> ``Compliance.Status``
  PASSED, ``Workflow.Status`` RESOLVED, ``RecordState`` ARCHIVED (resolved findings leave the active view);
  PASSED results that never failed are not imported (nothing to keep in step);
- a (check, resource) of the previous sweep with no result now (resource deleted, check disabled) ->
  ARCHIVED with ``Compliance.Status`` NOT_AVAILABLE.
- a result carried forward unevaluated (its collector failed this sweep: partial sweep) -> nothing is
  imported: Security Hub keeps the finding as the last evaluation left it (never archived as resolved).

Security Hub ignores ``Workflow`` and ``Note`` in ``BatchImportFindings`` once a finding exists, so
an exception added or removed later is applied with ``BatchUpdateFindings``
(:func:`workflow_updates`; moto lacks that API: tested with botocore's Stubber).

``Compliance.RelatedRequirements`` names the CIS controls ("CIS AWS Foundations Benchmark v3.0.0/5.2");
``Resources[].Id`` is the ARN, or the id where AWS defines no ARN. The findings are checked against
botocore's ``BatchImportFindings`` model in the tests. IAM: securityhub:BatchImportFindings.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from aiops.account.permissions import permissions
from aiops.compliance.model import CheckMeta, Result
from aiops.compliance.registry import checks
from aiops.core import aws

PERMISSIONS = permissions(
    "the sweep's own findings in Security Hub (import, archive resolved)",
    reader=(
        "securityhub:BatchImportFindings",
        "securityhub:BatchUpdateFindings",
        "securityhub:GetFindings",
    ),
)

SCHEMA_VERSION = "2018-10-08"
GENERATOR_PREFIX = "matcarv-aiops/compliance"
FINDING_TYPE = "Software and Configuration Checks/Industry and Regulatory Standards/CIS AWS Foundations Benchmark"
OTHER_TYPE = "Software and Configuration Checks/AWS Security Best Practices"
BATCH = 100  # BatchImportFindings accepts at most 100 findings per call


def product_arn(partition: str, region: str, account_id: str) -> str:
    return f"arn:{partition}:securityhub:{region}:{account_id}:product/{account_id}/default"


def finding_id(result: Result, region: str, account_id: str, partition: str = "aws") -> str:
    digest = hashlib.sha256(f"{result.check_id}\x1f{result.key[1]}".encode()).hexdigest()[:24]
    return f"arn:{partition}:securityhub:{region}:{account_id}:matcarv-aiops/{result.check_id}/{digest}"


def _iso(ts: datetime) -> str:
    return ts.strftime("%Y-%m-%dT%H:%M:%S.000Z")


def _clip(text: str, n: int) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def to_finding(result: Result, meta: CheckMeta, *, account_id: str, region: str, partition: str,
               as_of: datetime, compliance: str | None = None, record_state: str = "ACTIVE",
               workflow: str | None = None) -> dict[str, Any]:
    compliance = compliance or result.status
    if workflow is None:
        workflow = "SUPPRESSED" if result.effective == "SUPPRESSED" else ("NEW" if compliance == "FAILED" else "RESOLVED")
    resource: dict[str, Any] = {
        "Type": result.resource_type,
        "Id": result.resource_arn or result.resource_id,
        "Partition": partition,
        "Region": result.region,
    }
    if result.tags:
        resource["Tags"] = {_clip(k, 128): _clip(v, 256) for k, v in list(result.tags.items())[:50]}
    finding: dict[str, Any] = {
        "SchemaVersion": SCHEMA_VERSION,
        "Id": finding_id(result, region, account_id, partition),
        "ProductArn": product_arn(partition, region, account_id),
        "GeneratorId": f"{GENERATOR_PREFIX}/{meta.id}",
        "AwsAccountId": account_id,
        "Types": [FINDING_TYPE if meta.cis else OTHER_TYPE],
        "CreatedAt": _iso(as_of),
        "UpdatedAt": _iso(as_of),
        "Severity": {"Label": meta.severity if compliance == "FAILED" else "INFORMATIONAL"},
        "Title": _clip(meta.title, 256),
        "Description": _clip(f"{result.reason}. Risk: {meta.risk}", 1024),
        "Remediation": {"Recommendation": {"Text": _clip(meta.remediation, 512)}},
        "ProductFields": {"aiops/CheckId": meta.id, "aiops/Service": meta.service,
                          **({"aiops/Runbook": meta.runbook} if meta.runbook else {})},
        "Resources": [resource],
        "Compliance": {"Status": compliance},
        "Workflow": {"Status": workflow},
        "RecordState": record_state,
    }
    if meta.cis:
        finding["Compliance"]["RelatedRequirements"] = meta.related_requirements()
    if result.suppressed:
        finding["Note"] = {"Text": _clip(result.suppressed, 512), "UpdatedBy": "matcarv-aiops",
                           "UpdatedAt": _iso(as_of)}
    return finding


def plan_findings(current: list[Result], previous: list[Result] | None, *, account_id: str, region: str,
                  partition: str, as_of: datetime) -> list[dict[str, Any]]:
    """The findings to import for a sweep (see module doc), in a stable order."""
    registry = checks()
    before = {r.key: r for r in previous or []}
    now = {r.key: r for r in current}
    out = []
    for key in sorted(now):
        r = now[key]
        meta = registry.get(r.check_id)
        if meta is None or r.not_evaluated:
            continue
        if r.status == "FAILED":
            out.append(to_finding(r, meta.meta, account_id=account_id, region=region, partition=partition,
                                  as_of=as_of))
        elif key in before and before[key].effective != "PASSED":
            out.append(to_finding(r, meta.meta, account_id=account_id, region=region, partition=partition,
                                  as_of=as_of, record_state="ARCHIVED"))
    for key in sorted(set(before) - set(now)):
        old = before[key]
        meta = registry.get(old.check_id)
        if meta is None or old.effective == "PASSED":
            continue
        out.append(to_finding(old, meta.meta, account_id=account_id, region=region, partition=partition,
                              as_of=as_of, compliance="NOT_AVAILABLE", record_state="ARCHIVED",
                              workflow="RESOLVED"))
    return out


def import_findings(findings: Iterable[dict[str, Any]], region: str | None = None) -> dict[str, Any]:
    """BatchImportFindings in batches of 100; returns {"imported": n, "failed": [{Id, ErrorCode, ...}]}."""
    hub = aws.client("securityhub", region=region)
    items = list(findings)
    imported, failed = 0, []
    from botocore.exceptions import ClientError

    for i in range(0, len(items), BATCH):
        try:
            resp = hub.batch_import_findings(Findings=items[i:i + BATCH])
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "InvalidAccessException":  # Security Hub not enabled
                return {"imported": 0, "failed": [], "skipped": f"Security Hub is not enabled here ({exc})"}
            raise
        imported += int(resp.get("SuccessCount", 0))
        failed.extend(resp.get("FailedFindings", []))
    return {"imported": imported, "failed": failed}


def workflow_updates(current: list[Result], previous: list[Result] | None, *, account_id: str, region: str,
                     partition: str, as_of: datetime) -> list[dict[str, Any]]:
    """BatchUpdateFindings requests for FAILED findings whose accepted-risk status changed since the
    previous sweep (one request per finding: each carries its own note)."""
    before = {r.key: r for r in previous or []}
    out = []
    for r in sorted(current, key=lambda x: x.key):
        old = before.get(r.key)
        if r.not_evaluated or r.status != "FAILED" or old is None or old.status != "FAILED" or bool(old.suppressed) == bool(r.suppressed):
            continue
        ident = {"Id": finding_id(r, region, account_id, partition),
                 "ProductArn": product_arn(partition, region, account_id)}
        if r.suppressed:
            out.append({"FindingIdentifiers": [ident], "Workflow": {"Status": "SUPPRESSED"},
                        "Note": {"Text": _clip(r.suppressed, 512), "UpdatedBy": "matcarv-aiops"}})
        else:
            out.append({"FindingIdentifiers": [ident], "Workflow": {"Status": "NEW"},
                        "Note": {"Text": f"accepted-risk exception no longer applies ({as_of:%Y-%m-%d})",
                                 "UpdatedBy": "matcarv-aiops"}})
    return out


def apply_workflow_updates(requests: list[dict[str, Any]], region: str | None = None) -> dict[str, Any]:
    """Send the requests; an emulator without BatchUpdateFindings is reported, not fatal."""
    from botocore.exceptions import ClientError

    hub = aws.client("securityhub", region=region)
    updated = 0
    unprocessed: list[dict[str, Any]] = []
    for req in requests:
        try:
            resp = hub.batch_update_findings(**req)
        except ClientError as exc:
            err = exc.response.get("Error", {})
            if "not yet implemented" in str(err.get("Message", "")).lower() or err.get("Code") in {
                    "404", "UnsupportedOperation", "NotImplemented"}:
                return {"updated": updated, "unprocessed": unprocessed,
                        "skipped": f"BatchUpdateFindings not available here ({err.get('Code')})"}
            raise
        updated += len(resp.get("ProcessedFindings", []))
        unprocessed += resp.get("UnprocessedFindings", [])
    return {"updated": updated, "unprocessed": unprocessed}
