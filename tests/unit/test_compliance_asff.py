"""ASFF findings: valid against botocore's BatchImportFindings model; status, CIS requirements,
resource ids and archival of resolved / gone findings."""

from __future__ import annotations

from datetime import UTC, datetime

import botocore.session
import pytest
from botocore.validate import ParamValidator

from aiops.compliance.asff import finding_id, plan_findings, product_arn
from aiops.compliance.model import Result

AS_OF = datetime(2026, 11, 20, 12, tzinfo=UTC)
KW = {"account_id": "123456789012", "region": "us-east-1", "partition": "aws", "as_of": AS_OF}


def result(check_id="sg_ssh_open_to_world", rid="sg-1", status="FAILED", suppressed=None, arn="auto", **kw):
    arn = f"arn:aws:ec2:us-east-1:123456789012:security-group/{rid}" if arn == "auto" else arn
    return Result(check_id=check_id, resource_id=rid, resource_type=kw.pop("rtype", "AwsEc2SecurityGroup"),
                  region="us-east-1", status=status, reason="tcp/22-22 from 0.0.0.0/0", resource_arn=arn,
                  tags=kw.pop("tags", {"team": "platform"}), suppressed=suppressed, **kw)


def validate(findings):
    model = botocore.session.get_session().get_service_model("securityhub")
    shape = model.operation_model("BatchImportFindings").input_shape
    report = ParamValidator().validate({"Findings": findings}, shape)
    assert not report.has_errors(), report.generate_report()


def test_failed_result_is_a_valid_active_finding_naming_the_cis_controls():
    [f] = plan_findings([result()], None, **KW)
    validate([f])
    assert f["Compliance"] == {"Status": "FAILED", "RelatedRequirements": [
        "CIS AWS Foundations Benchmark v3.0.0/5.2", "CIS AWS Foundations Benchmark v3.0.0/5.3"]}
    assert f["Resources"][0]["Id"] == "arn:aws:ec2:us-east-1:123456789012:security-group/sg-1"
    assert f["ProductArn"] == product_arn("aws", "us-east-1", "123456789012") == (
        "arn:aws:securityhub:us-east-1:123456789012:product/123456789012/default")
    assert f["GeneratorId"] == "matcarv-aiops/compliance/sg_ssh_open_to_world"
    assert f["RecordState"] == "ACTIVE"
    assert f["Workflow"]["Status"] == "NEW"
    assert f["Severity"]["Label"] == "HIGH"
    assert f["ProductFields"]["aiops/Runbook"] == "revoke-world-open-ingress"


def test_finding_id_is_stable_per_check_and_resource():
    a, b = result(), result(status="PASSED")
    assert finding_id(a, "us-east-1", "1") == finding_id(b, "us-east-1", "1")
    assert finding_id(a, "us-east-1", "1") != finding_id(result(rid="sg-2"), "us-east-1", "1")


def test_resource_without_arn_uses_its_id():
    r = result(check_id="log_group_retention_set", rid="/matcarv/x", arn=None, rtype="AwsLogsLogGroup")
    [f] = plan_findings([r], None, **KW)
    validate([f])
    assert f["Resources"][0]["Id"] == "/matcarv/x"
    assert "RelatedRequirements" not in f["Compliance"]  # no CIS control applies


def test_never_failing_pass_is_not_imported_but_a_resolved_one_is_archived():
    previous = [result(), result(check_id="s3_tls_only", rid="b", arn="arn:aws:s3:::b", rtype="AwsS3Bucket")]
    current = [result(status="PASSED"),
               result(check_id="s3_tls_only", rid="b", arn="arn:aws:s3:::b", rtype="AwsS3Bucket", status="PASSED"),
               result(check_id="sg_rdp_open_to_world", status="PASSED")]
    findings = plan_findings(current, previous, **KW)
    validate(findings)
    assert {(f["GeneratorId"].rsplit("/", 1)[-1], f["RecordState"], f["Compliance"]["Status"]) for f in findings} == {
        ("sg_ssh_open_to_world", "ARCHIVED", "PASSED"), ("s3_tls_only", "ARCHIVED", "PASSED")}


def test_finding_of_a_deleted_resource_is_archived_not_available():
    [f] = plan_findings([], [result()], **KW)
    validate([f])
    assert (f["RecordState"], f["Compliance"]["Status"]) == ("ARCHIVED", "NOT_AVAILABLE")


def test_suppressed_failure_is_workflow_suppressed_with_a_note():
    [f] = plan_findings([result(suppressed="accepted risk: bastion by design")], None, **KW)
    validate([f])
    assert f["Workflow"]["Status"] == "SUPPRESSED"
    assert f["Compliance"]["Status"] == "FAILED"
    assert "bastion by design" in f["Note"]["Text"]


@pytest.mark.parametrize("tags", [pytest.param({"k" * 200: "v" * 400}, id="long_tag"),
                                  pytest.param({"<script>": "<b>x</b>"}, id="markup_tag")])
def test_odd_tags_stay_within_the_model(tags):
    validate(plan_findings([result(tags=tags)], None, **KW))


def test_exception_added_later_is_applied_with_batch_update_findings(monkeypatch):
    import boto3
    from botocore.stub import Stubber

    from aiops.compliance import asff

    before = [result(), result(rid="sg-2", suppressed="old exception")]
    now = [result(suppressed="bastion by design"), result(rid="sg-2")]
    reqs = asff.workflow_updates(now, before, **KW)
    assert [(q["Workflow"]["Status"], q["FindingIdentifiers"][0]["Id"]) for q in reqs] == [
        ("SUPPRESSED", finding_id(now[0], "us-east-1", "123456789012")),
        ("NEW", finding_id(now[1], "us-east-1", "123456789012"))]
    hub = boto3.client("securityhub", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    monkeypatch.setattr("aiops.core.aws.client", lambda service, region=None: hub)
    with Stubber(hub) as stub:
        for q in reqs:
            stub.add_response("batch_update_findings", {"ProcessedFindings": q["FindingIdentifiers"],
                                                        "UnprocessedFindings": []}, q)
        assert asff.apply_workflow_updates(reqs) == {"updated": 2, "unprocessed": []}
        stub.assert_no_pending_responses()


def test_unchanged_suppression_needs_no_update():
    assert plan_findings([], None, **KW) == []
    from aiops.compliance.asff import workflow_updates

    assert workflow_updates([result(suppressed="x")], [result(suppressed="y")], **KW) == []
    assert workflow_updates([result(status="PASSED")], [result(suppressed="y")], **KW) == []


def test_not_evaluated_results_are_neither_imported_nor_archived():
    """A partial sweep: the collector failed, the failing result is carried forward unevaluated —
    Security Hub keeps the finding as it is (no import, no archive); evaluated again and passing, it
    is archived as resolved."""
    from dataclasses import replace

    failing = result()
    carried = replace(failing, not_evaluated="security_groups: AccessDenied (us-east-1)")
    assert plan_findings([carried], [failing], **KW) == []
    [resolved] = plan_findings([result(status="PASSED")], [carried], **KW)
    assert resolved["RecordState"] == "ARCHIVED"
    assert resolved["Compliance"]["Status"] == "PASSED"
