"""AWS Config rule compliance and other products' Security Hub findings, with botocore Stubber and
real-shaped responses (the emulator lacks Config's compliance queries)."""

from __future__ import annotations

from datetime import UTC, datetime

import boto3
import pytest
from botocore.stub import Stubber

from aiops.compliance import external


@pytest.fixture
def clients(monkeypatch):
    made = {s: boto3.client(s, region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
            for s in ("config", "securityhub")}
    monkeypatch.setattr("aiops.compliance.external.aws.client", lambda service, region=None: made[service])
    stubs = {s: Stubber(c) for s, c in made.items()}
    for st in stubs.values():
        st.activate()
    yield stubs
    for st in stubs.values():
        st.deactivate()


def _eval(rule, rtype, rid, annotation):
    return {"EvaluationResultIdentifier": {"EvaluationResultQualifier": {
        "ConfigRuleName": rule, "ResourceType": rtype, "ResourceId": rid, "EvaluationMode": "DETECTIVE"},
        "OrderingTimestamp": datetime(2026, 11, 20, tzinfo=UTC)}, "ComplianceType": "NON_COMPLIANT",
        "ResultRecordedTime": datetime(2026, 11, 20, 1, tzinfo=UTC),
        "ConfigRuleInvokedTime": datetime(2026, 11, 20, 0, 59, tzinfo=UTC),
        **({"Annotation": annotation} if annotation else {})}


def test_config_noncompliant_resources_are_listed_per_rule(clients):
    cfg = clients["config"]
    cfg.add_response("describe_configuration_recorders", {"ConfigurationRecorders": [
        {"name": "default", "roleARN": "arn:aws:iam::123456789012:role/config",
         "recordingGroup": {"allSupported": True, "includeGlobalResourceTypes": True}}]})
    cfg.add_response("describe_compliance_by_config_rule", {"ComplianceByConfigRules": [
        {"ConfigRuleName": "s3-bucket-ssl-requests-only", "Compliance": {
            "ComplianceType": "NON_COMPLIANT", "ComplianceContributorCount": {"CappedCount": 2, "CapExceeded": False}}}],
        "NextToken": "t1"}, {"ComplianceTypes": ["NON_COMPLIANT"]})
    cfg.add_response("describe_compliance_by_config_rule", {"ComplianceByConfigRules": [
        {"ConfigRuleName": "restricted-ssh", "Compliance": {"ComplianceType": "NON_COMPLIANT"}}]},
        {"ComplianceTypes": ["NON_COMPLIANT"], "NextToken": "t1"})
    cfg.add_response("get_compliance_details_by_config_rule", {"EvaluationResults": [
        _eval("s3-bucket-ssl-requests-only", "AWS::S3::Bucket", "matcarv-public-assets", "no TLS-only policy")],
        "NextToken": "p2"},
        {"ConfigRuleName": "s3-bucket-ssl-requests-only", "ComplianceTypes": ["NON_COMPLIANT"], "Limit": 100})
    cfg.add_response("get_compliance_details_by_config_rule", {"EvaluationResults": [
        _eval("s3-bucket-ssl-requests-only", "AWS::S3::Bucket", "<script>x</script>", None)]},
        {"ConfigRuleName": "s3-bucket-ssl-requests-only", "ComplianceTypes": ["NON_COMPLIANT"], "Limit": 100,
         "NextToken": "p2"})
    cfg.add_response("get_compliance_details_by_config_rule", {"EvaluationResults": [
        _eval("restricted-ssh", "AWS::EC2::SecurityGroup", "sg-0abc", "port 22 open")]},
        {"ConfigRuleName": "restricted-ssh", "ComplianceTypes": ["NON_COMPLIANT"], "Limit": 100})

    out = external.config_noncompliant("us-east-1", mode="auto")

    cfg.assert_no_pending_responses()
    assert out["enabled"] is True
    assert [(i["rule"], i["resource_id"]) for i in out["items"]] == [
        ("s3-bucket-ssl-requests-only", "matcarv-public-assets"), ("s3-bucket-ssl-requests-only", "<script>x</script>"),
        ("restricted-ssh", "sg-0abc")]
    assert out["items"][2]["resource_type"] == "AWS::EC2::SecurityGroup"


def test_config_auto_mode_skips_an_account_without_recorder(clients):
    clients["config"].add_response("describe_configuration_recorders", {"ConfigurationRecorders": []})
    out = external.config_noncompliant(mode="auto")
    assert out == {"enabled": False, "note": "no AWS Config recorder in this account/region", "items": []}


def test_config_unsupported_api_is_a_note_in_auto_mode_and_an_error_when_on(clients):
    cfg = clients["config"]
    cfg.add_response("describe_configuration_recorders", {"ConfigurationRecorders": [{"name": "default"}]})
    cfg.add_client_error("describe_compliance_by_config_rule", "UnsupportedOperation", "not implemented")
    assert "UnsupportedOperation" in external.config_noncompliant(mode="auto")["note"]
    cfg.add_client_error("describe_compliance_by_config_rule", "AccessDeniedException", "denied")
    with pytest.raises(Exception, match="denied"):
        external.config_noncompliant(mode="on")


def test_config_off_makes_no_call(clients):
    assert external.config_noncompliant(mode="off")["enabled"] is False
    clients["config"].assert_no_pending_responses()


def test_other_products_findings_exclude_ours(clients):
    hub = clients["securityhub"]

    def finding(fid, generator, product):
        return {"SchemaVersion": "2018-10-08", "Id": fid, "ProductArn": f"arn:aws:securityhub:us-east-1::product/aws/{product}",
                "GeneratorId": generator, "AwsAccountId": "123456789012", "Types": ["TTPs"],
                "CreatedAt": "2026-11-20T00:00:00Z", "UpdatedAt": "2026-11-20T00:00:00Z",
                "Severity": {"Label": "HIGH"}, "Title": f"{product} finding", "Description": "d",
                "Resources": [{"Type": "AwsEc2Instance", "Id": "arn:aws:ec2:us-east-1:123456789012:instance/i-1"}],
                "ProductName": product, "RecordState": "ACTIVE"}

    hub.add_response("get_findings", {"Findings": [
        finding("gd-1", "arn:aws:guardduty:us-east-1:123456789012:detector/x", "guardduty"),
        finding("ours", "matcarv-aiops/compliance/s3_tls_only", "default")]})
    out = external.other_findings()
    assert [(i["id"], i["product"]) for i in out["items"]] == [("gd-1", "guardduty")]


def test_external_data_is_merged_over_the_swept_regions(monkeypatch):
    from aiops.compliance import pipeline

    monkeypatch.setattr(pipeline.external, "config_noncompliant", lambda r, mode: {
        "enabled": r == "eu-west-1", "note": f"{mode}", "items": [{"rule": "restricted-ssh"}] if r == "eu-west-1" else []})
    monkeypatch.setattr(pipeline.external, "other_findings", lambda r: {"enabled": True, "note": "none", "items": []})
    out = pipeline.gather_external(["us-east-1", "eu-west-1"])
    assert out["config"]["enabled"] is True
    assert out["config"]["items"] == [{"rule": "restricted-ssh", "region": "eu-west-1"}]
    assert out["config"]["note"] == "us-east-1: auto; eu-west-1: auto"
