"""What the account already knows: AWS Config rule compliance and other products' Security Hub
findings (GuardDuty, Inspector, Security Hub's own standards...), shown next to our results.

``settings.compliance_config_rules`` is ``auto`` (use Config when the account has a configuration
recorder; an account or emulator without the query APIs gives an empty list and a note), ``on`` or
``off``. The emulator lacks Config's compliance queries, so that path is tested with botocore's
``Stubber`` and real-shaped responses (tests/unit/test_compliance_external.py).

IAM: config:DescribeConfigurationRecorders, config:DescribeComplianceByConfigRule,
config:GetComplianceDetailsByConfigRule, securityhub:GetFindings.
"""

from __future__ import annotations

import logging
from typing import Any

from botocore.exceptions import ClientError

from aiops.account.permissions import permissions
from aiops.compliance.asff import GENERATOR_PREFIX
from aiops.core import aws

PERMISSIONS = permissions(
    "AWS Config rule results and Security Hub findings",
    reader=(
        "config:DescribeComplianceByConfigRule",
        "config:DescribeConfigurationRecorders",
        "config:GetComplianceDetailsByConfigRule",
        "securityhub:GetFindings",
    ),
)

log = logging.getLogger(__name__)


def config_noncompliant(region: str | None = None, *, mode: str = "auto", limit: int = 500) -> dict[str, Any]:
    """NON_COMPLIANT resources per AWS Config rule: {"enabled": bool, "note": str, "items": [...]}."""
    if mode == "off":
        return {"enabled": False, "note": "disabled by settings", "items": []}
    cfg = aws.client("config", region=region)
    try:
        if mode == "auto" and not cfg.describe_configuration_recorders().get("ConfigurationRecorders"):
            return {"enabled": False, "note": "no AWS Config recorder in this account/region", "items": []}
        rules: list[dict[str, Any]] = []
        for resp in cfg.get_paginator("describe_compliance_by_config_rule").paginate(
                ComplianceTypes=["NON_COMPLIANT"]):
            rules.extend(resp.get("ComplianceByConfigRules", []))
        items: list[dict[str, Any]] = []
        details = cfg.get_paginator("get_compliance_details_by_config_rule")
        for rule in rules:
            name = rule["ConfigRuleName"]
            if len(items) >= limit:
                break
            for detail in details.paginate(ConfigRuleName=name, ComplianceTypes=["NON_COMPLIANT"],
                                           PaginationConfig={"PageSize": 100}):
                for ev in detail.get("EvaluationResults", []):
                    qual = ev["EvaluationResultIdentifier"]["EvaluationResultQualifier"]
                    items.append({"rule": name, "resource_type": qual.get("ResourceType"),
                                  "resource_id": qual.get("ResourceId"), "compliance": ev.get("ComplianceType"),
                                  "annotation": ev.get("Annotation"),
                                  "recorded": str(ev.get("ResultRecordedTime") or "")})
                if len(items) >= limit:
                    break
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        if mode == "on":
            raise
        log.info("AWS Config compliance not available: %s", exc)
        return {"enabled": False, "note": f"AWS Config compliance not available ({code})", "items": []}
    return {"enabled": True, "note": f"{len(rules)} non-compliant rule(s)", "items": items[:limit]}


def other_findings(region: str | None = None, *, limit: int = 200) -> dict[str, Any]:
    """Active, unresolved Security Hub findings from other products (not ours)."""
    hub = aws.client("securityhub", region=region)
    filters = {"RecordState": [{"Value": "ACTIVE", "Comparison": "EQUALS"}],
               "WorkflowStatus": [{"Value": "NEW", "Comparison": "EQUALS"},
                                  {"Value": "NOTIFIED", "Comparison": "EQUALS"}]}
    items: list[dict[str, Any]] = []
    pages = hub.get_paginator("get_findings").paginate(Filters=filters, PaginationConfig={"PageSize": 100})
    try:
        for resp in pages if limit > 0 else ():
            for f in resp.get("Findings", []):
                if str(f.get("GeneratorId", "")).startswith(GENERATOR_PREFIX):
                    continue
                if f.get("RecordState", "ACTIVE") != "ACTIVE":
                    continue
                items.append({"product": f.get("ProductName") or f.get("ProductArn", "").rsplit("/", 1)[-1],
                              "title": f.get("Title"), "severity": f.get("Severity", {}).get("Label"),
                              "resource": (f.get("Resources") or [{}])[0].get("Id"), "id": f.get("Id")})
            if len(items) >= limit:
                break
    except ClientError as exc:
        return {"enabled": False, "note": f"Security Hub findings not available ({exc.response['Error']['Code']})",
                "items": []}
    return {"enabled": True, "note": f"{len(items)} active finding(s) from other products", "items": items[:limit]}
