"""A sweep end to end in an empty emulator account it may change: results with history, the diff
across sweeps, Security Hub import and archival, accepted-risk tags, the summary email (escaped)."""

from __future__ import annotations

import email
import json
from datetime import UTC, datetime, timedelta

import pytest

from aiops.compliance import pipeline

pytestmark = [pytest.mark.emulator]
T0 = datetime(2026, 11, 20, 6, tzinfo=UTC)
XSS = "<script>alert(1)</script>"


def _sweep(as_of):
    collected = pipeline.collect_inventory(as_of)
    evaluated = pipeline.evaluate_sweep(collected, run_id=f"test-{as_of:%H}")
    published = pipeline.publish_findings(evaluated)
    return evaluated, published


def _findings(hub, check_id, record_state=None):
    """Our findings of one check (filtered here: moto's GetFindings ignores most filters)."""
    found, kwargs = [], {"MaxResults": 100}
    while True:
        page = hub.get_findings(**kwargs)
        found += page["Findings"]
        if not page.get("NextToken"):
            break
        kwargs["NextToken"] = page["NextToken"]
    return [f for f in found if f["GeneratorId"] == f"matcarv-aiops/compliance/{check_id}"
            and (record_state is None or f["RecordState"] == record_state)]


@pytest.fixture
def account(fresh_emulator, isolated_stores, monkeypatch):
    from aiops.compliance import collect as collectors

    # moto owns ~1,300 AMI snapshots in every account and ignores RestorableByUserIds: checking each
    # costs ~10 s per sweep and is covered by the seeded-account test; these sweeps skip snapshots.
    monkeypatch.delitem(collectors.REGIONAL, "ebs_snapshots")
    fresh_emulator.client("ses").verify_email_identity(EmailAddress="aiops@matcarv.example")
    from aiops.core.artifacts import ArtifactStore

    ArtifactStore().ensure_bucket()  # before the first sweep: its own checks must not show up as "new" later
    ec2, s3 = fresh_emulator.client("ec2"), fresh_emulator.client("s3")
    vpc = ec2.describe_vpcs()["Vpcs"][0]["VpcId"]
    sg = ec2.create_security_group(GroupName="jump", Description="jump host", VpcId=vpc)["GroupId"]
    ec2.authorize_security_group_ingress(GroupId=sg, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
    s3.create_bucket(Bucket="marketing-site")
    s3.put_bucket_tagging(Bucket="marketing-site", Tagging={"TagSet": [{"Key": "owner", "Value": XSS}]})
    s3.put_bucket_policy(Bucket="marketing-site", Policy=json.dumps({"Version": "2012-10-17", "Statement": [
        {"Sid": "Public", "Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
         "Resource": "arn:aws:s3:::marketing-site/*"}]}))
    return {"ec2": ec2, "s3": s3, "hub": fresh_emulator.client("securityhub"), "sg": sg,
            "ses": fresh_emulator.client("ses")}


def test_sweeps_diff_history_and_security_hub_archival(account):
    ec2, hub, sg = account["ec2"], account["hub"], account["sg"]

    first, published = _sweep(T0)
    assert first["previous_sweep_id"] is None
    assert first["diff"]["new"] == first["counts"]["FAILED"] > 0
    assert published["imported"] == published["planned"] > 0
    active = _findings(hub, "sg_ssh_open_to_world", "ACTIVE")
    assert [f["Resources"][0]["Id"] for f in active] == [f"arn:aws:ec2:us-east-1:123456789012:security-group/{sg}"]
    assert active[0]["Compliance"]["Status"] == "FAILED"
    assert active[0]["Compliance"]["RelatedRequirements"] == [
        "CIS AWS Foundations Benchmark v3.0.0/5.2", "CIS AWS Foundations Benchmark v3.0.0/5.3"]
    assert any(f["conf"]["runbook"] == "revoke-world-open-ingress"
               and f["conf"]["parameters"] == {"GroupId": sg, "Port": "22", "Protocol": "tcp", "SourceCidr": "0.0.0.0/0"}
               for f in first["fixes"])

    # the rule is revoked: the next sweep resolves it and Security Hub archives the finding
    ec2.revoke_security_group_ingress(GroupId=sg, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
    second, _ = _sweep(T0 + timedelta(days=1))
    assert second["previous_sweep_id"] == first["sweep_id"]
    assert second["diff"]["resolved"] >= 1
    assert second["diff"]["new"] == 0
    assert second["diff"]["still_failing"] == first["counts"]["FAILED"] - second["diff"]["resolved"]
    ssh = _findings(hub, "sg_ssh_open_to_world")
    assert len(ssh) == 1  # the same finding (stable Id), updated
    assert ssh[0]["RecordState"] == "ARCHIVED"
    assert ssh[0]["Compliance"]["Status"] == "PASSED"

    # it is opened again: regressed
    ec2.authorize_security_group_ingress(GroupId=sg, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "Ipv6Ranges": [{"CidrIpv6": "::/0"}]}])
    third, _ = _sweep(T0 + timedelta(days=2))
    assert third["diff"]["regressed"] == 1
    assert _findings(hub, "sg_ssh_open_to_world")[0]["RecordState"] == "ACTIVE"

    # history per (check, resource) and the re-run of a sweep rewrites it (no duplicates)
    from aiops.compliance import history
    from aiops.core.state import StateStore

    key = f"arn:aws:ec2:us-east-1:123456789012:security-group/{sg}"
    assert [h["effective"] for h in history.result_history(StateStore(), "sg_ssh_open_to_world", key)] == [
        "FAILED", "PASSED", "FAILED"]
    _sweep(T0 + timedelta(days=2))
    assert len(history.result_history(StateStore(), "sg_ssh_open_to_world", key)) == 3


def test_unrecorded_accepted_risk_tag_does_not_suppress_and_summary_escapes_markup(account):
    """A free-text aiops:accepted-risk tag names no recorded exception (approver + expiry): still FAILED,
    the summary says why (tests/unit/test_compliance_summary.py covers the tag naming a recorded one)."""
    s3, ses = account["s3"], account["ses"]
    s3.put_bucket_tagging(Bucket="marketing-site", Tagging={"TagSet": [
        {"Key": "owner", "Value": XSS}, {"Key": "aiops:accepted-risk", "Value": "public website <b>by design</b>"},
        {"Key": "aiops:accepted-risk-checks", "Value": "s3_bucket_not_public"}]})
    evaluated, _ = _sweep(T0)
    doc = pipeline.ArtifactStore().get_json(evaluated["results_key"])
    by = {(r["check_id"], r["resource_id"]): r for r in doc["results"]}
    public = by[("s3_bucket_not_public", "marketing-site")]
    assert public["status"] == "FAILED"
    assert public["suppressed"] is None
    assert "names no exception recorded" in public["risk_tag_ignored"]
    assert by[("s3_block_public_access", "marketing-site")]["risk_tag_ignored"] is None  # limited to one check
    hub_public = _findings(account["hub"], "s3_bucket_not_public")
    assert hub_public[0]["Workflow"]["Status"] != "SUPPRESSED"

    stored = pipeline.build_summary(evaluated, {"config": {"note": "none", "items": []}})
    sent = pipeline.send_summary(stored)
    assert sent["recipients"] == ["security@matcarv.example"]
    html = pipeline.ArtifactStore().get_bytes(stored["key"]).decode()
    assert XSS not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<b>by design</b>" not in html
    assert "marketing-site" in html
    assert "Accepted-risk tags not honoured" in html
    text = pipeline.ArtifactStore().get_bytes(stored["text_key"]).decode()
    assert "NEW AND REGRESSED FAILURES" in text
    assert "s3_block_public_access" in text
    # what SES sent: HTML + text alternatives, the HTML escaped too
    msg = email.message_from_bytes(pipeline.ArtifactStore().get_bytes(stored["email_key"]))
    parts = {p.get_content_type(): p.get_payload(decode=True).decode() for p in msg.walk()
             if p.get_content_type() in {"text/plain", "text/html"}}
    assert set(parts) == {"text/plain", "text/html"}
    assert XSS not in parts["text/html"]
    assert ses.get_send_statistics()["SendDataPoints"]
