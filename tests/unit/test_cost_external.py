"""Compute Optimizer and Cost Explorer right-sizing merged into our recommendations. The emulator has
neither API: botocore Stubber answers with responses of the real shape (Stubber validates both the
request and the response against botocore's service model)."""

from __future__ import annotations

from datetime import UTC, datetime

import boto3
import pytest
from botocore.stub import Stubber

from aiops.cost import external
from aiops.cost.collect import Instance, Inventory
from aiops.cost.model import RightsizingRecommendation
from aiops.cost.pricing import default_prices

ACCOUNT = "123456789012"


def co_recommendation(instance_id: str, finding: str, current: str, target: str | None, saving: float) -> dict:
    options = [] if target is None else [{
        "instanceType": target, "rank": 1, "performanceRisk": 1.0,
        "projectedUtilizationMetrics": [{"name": "CPU", "statistic": "MAXIMUM", "value": 48.0}],
        "savingsOpportunity": {"savingsOpportunityPercentage": 60.0,
                               "estimatedMonthlySavings": {"currency": "USD", "value": saving}}}]
    return {"instanceArn": f"arn:aws:ec2:us-east-1:{ACCOUNT}:instance/{instance_id}", "accountId": ACCOUNT,
            "instanceName": instance_id, "currentInstanceType": current, "finding": finding,
            "findingReasonCodes": ["CPUOverprovisioned"] if finding == "Overprovisioned" else [],
            "utilizationMetrics": [{"name": "CPU", "statistic": "MAXIMUM", "value": 12.0}],
            "lookBackPeriodInDays": 14.0, "recommendationOptions": options,
            "lastRefreshTimestamp": datetime(2026, 11, 20, tzinfo=UTC)}


def ce_recommendation(instance_id: str, kind: str, current: str, target: str | None, saving: str) -> dict:
    rec = {"AccountId": ACCOUNT, "RightsizingType": kind, "CurrentInstance": {
        "ResourceId": instance_id, "InstanceName": instance_id, "MonthlyCost": "140.16", "CurrencyCode": "USD",
        "ResourceDetails": {"EC2ResourceDetails": {"InstanceType": current, "Region": "US East (N. Virginia)",
                                                   "Platform": "Linux/UNIX", "Vcpu": "4", "Memory": "16 GiB"}},
        "ResourceUtilization": {"EC2ResourceUtilization": {"MaxCpuUtilizationPercentage": "3"}}}}
    if kind == "Terminate":
        rec["TerminateRecommendationDetail"] = {"EstimatedMonthlySavings": saving, "CurrencyCode": "USD"}
    else:
        rec["ModifyRecommendationDetail"] = {"TargetInstances": [{
            "EstimatedMonthlyCost": "70.08", "EstimatedMonthlySavings": saving, "CurrencyCode": "USD",
            "DefaultTargetInstance": True,
            "ResourceDetails": {"EC2ResourceDetails": {"InstanceType": target}}}]}
    return rec


@pytest.fixture
def stubbed(monkeypatch):
    kw = {"region_name": "us-east-1", "aws_access_key_id": "x", "aws_secret_access_key": "x"}
    clients = {"compute-optimizer": boto3.client("compute-optimizer", **kw), "ce": boto3.client("ce", **kw)}
    stubs = {name: Stubber(c) for name, c in clients.items()}
    monkeypatch.setattr(external.aws, "client", lambda service, region=None: clients[service])
    for s in stubs.values():
        s.activate()
    yield stubs
    for s in stubs.values():
        s.assert_no_pending_responses()
        s.deactivate()


def own(instance_id: str, target: str, confidence: str = "medium") -> RightsizingRecommendation:
    p = default_prices()
    return RightsizingRecommendation(
        kind="overprovisioned_instance", action="rightsize", resource_type="ec2:instance", resource_id=instance_id,
        current={"instance_type": "m5.4xlarge"}, recommended={"instance_type": target},
        current_monthly_usd=p.ec2_monthly("m5.4xlarge"), recommended_monthly_usd=p.ec2_monthly(target),
        evidence={}, confidence=confidence, reason="ours", runbook="rightsize-ec2-instance",
        runbook_parameters={"InstanceId": instance_id, "TargetInstanceType": target})


def test_findings_are_read_page_by_page(stubbed):
    co = stubbed["compute-optimizer"]
    co.add_response("get_ec2_instance_recommendations", {
        "instanceRecommendations": [co_recommendation("i-aaa", "Overprovisioned", "m5.4xlarge", "r5.xlarge", 376.68)],
        "nextToken": "page-2"}, {})
    co.add_response("get_ec2_instance_recommendations", {
        "instanceRecommendations": [co_recommendation("i-bbb", "Optimized", "c5.large", None, 0.0)]},
        {"nextToken": "page-2"})
    ce = stubbed["ce"]
    ce.add_response("get_rightsizing_recommendation", {
        "RightsizingRecommendations": [ce_recommendation("i-ccc", "Terminate", "m5.xlarge", None, "140.16")]},
        {"Service": "AmazonEC2", "Configuration": {"RecommendationTarget": "SAME_INSTANCE_FAMILY",
                                                   "BenefitsConsidered": False}})
    findings = external.external_findings(["us-east-1"])
    assert [(f["source"], f["instance_id"], f["finding"], f["recommended_type"], f["monthly_savings_usd"])
            for f in findings] == [
        ("compute-optimizer", "i-aaa", "overprovisioned", "r5.xlarge", 376.68),
        ("compute-optimizer", "i-bbb", "optimized", None, None),
        ("cost-explorer", "i-ccc", "idle", None, 140.16),
    ]


def test_merge_adds_agrees_and_never_touches_protected():
    inv = Inventory(instances=[
        Instance(id=i, region="us-east-1", tags=tags, instance_type=t, state="running")
        for i, t, tags in (("i-aaa", "m5.4xlarge", {}), ("i-ccc", "m5.xlarge", {}), ("i-ddd", "m5.xlarge", {}),
                           ("i-ppp", "m5.xlarge", {"aiops:protected": "true"}))])
    findings = [
        {"source": "compute-optimizer", "instance_id": "i-aaa", "finding": "overprovisioned",
         "current_type": "m5.4xlarge", "recommended_type": "r5.xlarge", "monthly_savings_usd": 376.68},
        {"source": "cost-explorer", "instance_id": "i-ccc", "finding": "idle", "current_type": "m5.xlarge",
         "recommended_type": None, "monthly_savings_usd": 140.16},
        {"source": "cost-explorer", "instance_id": "i-ddd", "finding": "overprovisioned",
         "current_type": "m5.xlarge", "recommended_type": "m5.large", "monthly_savings_usd": 70.08},
        {"source": "compute-optimizer", "instance_id": "i-ppp", "finding": "overprovisioned",
         "current_type": "m5.xlarge", "recommended_type": "m5.large", "monthly_savings_usd": 70.08},
        {"source": "compute-optimizer", "instance_id": "i-gone", "finding": "overprovisioned",
         "current_type": "m5.xlarge", "recommended_type": "m5.large", "monthly_savings_usd": 70.08},
    ]
    merged = {r.resource_id: r for r in external.merge([own("i-aaa", "r5.xlarge")], findings, inv, default_prices())}
    assert set(merged) == {"i-aaa", "i-ccc", "i-ddd"}
    assert merged["i-aaa"].source == "aiops"
    assert merged["i-aaa"].confidence == "high"  # AWS agrees with our target
    assert merged["i-aaa"].external[0]["source"] == "compute-optimizer"
    assert (merged["i-ccc"].action, merged["i-ccc"].runbook, merged["i-ccc"].source) == \
        ("stop", "stop-idle-instance", "cost-explorer")
    assert merged["i-ccc"].monthly_savings_usd == default_prices().ec2_monthly("m5.xlarge")
    assert merged["i-ddd"].runbook_parameters == {"InstanceId": "i-ddd", "TargetInstanceType": "m5.large"}
    assert merged["i-ddd"].monthly_savings_usd == pytest.approx(70.08, abs=0.01)


def test_a_source_that_is_not_enabled_is_skipped(stubbed):
    stubbed["compute-optimizer"].add_client_error("get_ec2_instance_recommendations",
                                                  service_error_code="OptInRequiredException",
                                                  service_message="not opted in", http_status_code=403)
    stubbed["ce"].add_response("get_rightsizing_recommendation", {"RightsizingRecommendations": []},
                               {"Service": "AmazonEC2", "Configuration": {
                                   "RecommendationTarget": "SAME_INSTANCE_FAMILY", "BenefitsConsidered": False}})
    assert external.external_findings(["us-east-1"]) == []
