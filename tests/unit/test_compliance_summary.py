"""The compliance summary: order of sections, counts by CIS section and severity, top risky
resources, accepted-risk exceptions, and escaping of every AWS-derived string."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from aiops.compliance import summary
from aiops.compliance.exceptions import RiskException, apply_exceptions, load_exceptions
from aiops.compliance.history import diff
from aiops.compliance.model import Result
from aiops.core.errors import ConfigError

AS_OF = datetime(2026, 11, 20, 12, tzinfo=UTC)
XSS = '<script>alert("x")</script>'


def r(check, rid, status="FAILED", rtype="AwsS3Bucket", tags=None, suppressed=None):
    return Result(check_id=check, resource_id=rid, resource_type=rtype, region="us-east-1", status=status,
                  reason=f"reason for {rid}", tags=tags or {}, suppressed=suppressed)


@pytest.fixture
def model():
    previous = [r("s3_tls_only", "old-bucket"), r("ebs_volume_encrypted", "vol-1", rtype="AwsEc2Volume")]
    current = [r("s3_bucket_not_public", XSS, tags={"owner": XSS}), r("s3_tls_only", XSS),
               r("ebs_volume_encrypted", "vol-1", rtype="AwsEc2Volume"), r("s3_tls_only", "old-bucket", "PASSED"),
               r("kms_key_rotation", "k", "PASSED", "AwsKmsKey"),
               r("sg_ssh_open_to_world", "sg-1", rtype="AwsEc2SecurityGroup", suppressed="bastion <b>ok</b>")]
    trend = [{"as_of": "2026-11-19", "score": 0.2}, {"as_of": "2026-11-20", "score": 0.5}]
    return summary.summary_model(results=current, sweep_diff=diff(previous, current), trend=trend,
                                 errors={"kms_key_rotation": "AccessDenied <x>"}, as_of=AS_OF,
                                 account_id="123456789012", region="us-east-1",
                                 external={"config": {"note": "1 rule", "items": [
                                     {"rule": "r", "resource_type": "AWS::S3::Bucket", "resource_id": XSS,
                                      "annotation": XSS}]}})


def test_model_counts_and_ranks(model):
    assert model["score_text"] == "40.0%"  # 2 of 5 checks without a failure (the suppressed one counts)
    assert model["score_change"] == pytest.approx(0.2)  # vs the previous sweep in the trend
    assert [x["resource"] for x in model["new"]] == [XSS, XSS]  # CRITICAL before MEDIUM
    assert [x["severity"] for x in model["new"]] == ["CRITICAL", "MEDIUM"]
    assert [(x["resource"], x["now"]) for x in model["resolved"]] == [("old-bucket", "PASSED")]
    assert dict(model["by_section"]) == {"2 Storage": 3}
    assert dict(model["by_severity"]) == {"CRITICAL": 1, "MEDIUM": 2}
    assert model["top_resources"][0]["resource"] == XSS
    assert model["top_resources"][0]["score"] == 43
    assert [x["check_id"] for x in model["suppressed"]] == ["sg_ssh_open_to_world"]
    assert {x["check_id"] for x in model["fixable"]} == {"s3_bucket_not_public"}


def test_html_escapes_every_aws_string(model):
    html = summary.render_html(model, {"trend": None})
    assert "<script>" not in html
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in html
    assert "<b>ok</b>" not in html
    assert "AccessDenied &lt;x&gt;" in html
    # new and resolved come before the breakdowns
    assert html.index("New and regressed") < html.index("Resolved") < html.index("by CIS section")


def test_text_has_the_same_story(model):
    text = summary.render_text(model)
    # kms_key_rotation could not be evaluated: a partial sweep, said first
    assert text.splitlines()[0].startswith(
        "[PARTIAL] Compliance summary 2026-11-20: 40.0% compliant, 2 new failure(s), 1 resolved")
    assert text.index("NEW AND REGRESSED") < text.index("RESOLVED") < text.index("FAILURES BY CIS SECTION")
    assert f"s3_bucket_not_public {XSS} -> block-public-s3-bucket" in text  # plain text: shown as is


def test_accepted_risk_tag_and_yaml_exception():
    res = [r("s3_bucket_not_public", "site", tags={"aiops:accepted-risk": "RISK-site"}),
           r("s3_tls_only", "site", tags={"aiops:accepted-risk": "RISK-site", "aiops:accepted-risk-checks": "other_check"}),
           r("ebs_volume_encrypted", "vol-1"), r("ebs_volume_encrypted", "vol-2"), r("kms_key_rotation", "k", "PASSED")]
    exc = [RiskException(check="ebs_volume_encrypted", resource="vol-1", reason="scratch disk", owner="carol",
                         expires=date(2026, 12, 31)),
           RiskException(check="*", resource="vol-2", reason="expired one", expires=date(2026, 11, 1)),
           RiskException(id="RISK-site", check="s3_bucket_not_public", resource="site", reason="public website",
                         approved_by="carol.secops", expires=date(2027, 1, 31))]
    out = {(x.check_id, x.resource_id): x for x in apply_exceptions(res, exc, AS_OF)}
    site = out[("s3_bucket_not_public", "site")].suppressed
    assert "public website" in site
    assert "exception RISK-site, approved by carol.secops, until 2027-01-31" in site
    assert out[("s3_tls_only", "site")].suppressed is None  # tag limited to another check
    assert "scratch disk" in out[("ebs_volume_encrypted", "vol-1")].suppressed
    assert "owner carol" in out[("ebs_volume_encrypted", "vol-1")].suppressed
    assert out[("ebs_volume_encrypted", "vol-2")].suppressed is None  # expired
    assert out[("kms_key_rotation", "k")].suppressed is None  # a PASS is never suppressed


UNAPPROVED = [RiskException(id="RISK-noexpiry", check="*", resource="site", reason="no expiry", approved_by="carol"),
              RiskException(id="RISK-noapprover", check="*", resource="site", reason="nobody", expires=date(2027, 1, 1)),
              RiskException(id="RISK-old", check="*", resource="site", reason="old", approved_by="carol",
                            expires=date(2026, 11, 1)),
              RiskException(id="RISK-other", check="*", resource="other-bucket", reason="other", approved_by="carol",
                            expires=date(2027, 1, 1))]


@pytest.mark.parametrize(("tag", "why"), [
    pytest.param("public website, trust me", "names no exception recorded", id="free-text-tag"),
    pytest.param("RISK-noexpiry", "records no expires", id="no-expiry"),
    pytest.param("RISK-noapprover", "records no approved_by", id="no-approver"),
    pytest.param("RISK-old", "expired on 2026-11-01", id="expired"),
    pytest.param("RISK-other", "is for resource other-bucket", id="another-resource"),
])
def test_accepted_risk_tag_without_an_approved_live_exception_does_not_suppress(tag, why):
    [out] = apply_exceptions([r("s3_bucket_not_public", "site", tags={"aiops:accepted-risk": tag})], UNAPPROVED, AS_OF)
    assert out.suppressed is None
    assert out.effective == "FAILED"
    assert why in out.risk_tag_ignored
    model = summary.summary_model(results=[out], sweep_diff=diff(None, [out]), trend=[], errors={}, as_of=AS_OF,
                                  account_id="123456789012", region="us-east-1")
    assert why in summary.render_html(model)  # the summary says why the finding is still failing
    assert "ACCEPTED-RISK TAGS NOT HONOURED" in summary.render_text(model)


def test_wildcard_resource_needs_id_approver_and_expiry():
    with pytest.raises(ValueError, match="only for an entry with an id"):
        RiskException(check="*", resource="*", reason="everything is fine")
    RiskException(id="RISK-fleet", check="s3_tls_only", resource="*", reason="legacy fleet", approved_by="carol",
                  expires=date(2027, 1, 1))


@pytest.mark.parametrize(("text", "field"), [
    pytest.param("exceptions:\n  - check: s3_tls_only\n    resource: b\n", "exceptions.0.reason", id="missing_reason"),
    pytest.param("exceptions:\n  - check: nope\n    resource: b\n    reason: why not\n", "exceptions.0.check",
                 id="unknown_check"),
    pytest.param("exceptions:\n  - check: s3_tls_only\n    resource: b\n    reason: fine\n    expires: soon\n",
                 "exceptions.0.expires", id="bad_date"),
    pytest.param("exceptions: [", "", id="not_yaml"),
])
def test_bad_exceptions_file_names_file_and_field(tmp_path, text, field):
    from aiops.compliance.registry import checks

    path = tmp_path / "exceptions.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_exceptions(path, known_checks=checks())
    assert info.value.field == field
    assert info.value.path == path


def test_shipped_exceptions_file_is_valid():
    from aiops.compliance.registry import checks

    assert load_exceptions(known_checks=checks()) == []


def test_a_bad_exception_entry_is_left_out_and_the_others_apply(tmp_path):
    from aiops.compliance.exceptions import load_exceptions_lenient
    from aiops.compliance.registry import checks

    path = tmp_path / "exceptions.yaml"
    path.write_text("exceptions:\n  - check: s3_tls_only\n    resource: b\n    reason: static site\n"
                    "  - check: s3_tls_only\n    resource: c\n"
                    "  - check: no_such_check\n    resource: d\n    reason: typo\n")
    good, errors = load_exceptions_lenient(path, known_checks=checks())
    assert [e.resource for e in good] == ["b"]
    assert len(errors) == 2
    assert "exceptions.1.reason" in errors[0]
    assert "exceptions.2.check" in errors[1]


def test_partial_sweep_lists_carried_failures_and_resolves_nothing():
    previous = [r("s3_tls_only", "b1"), r("s3_tls_only", "b2", "PASSED")]
    carried = [Result(**{**x.to_dict(), "not_evaluated": "buckets: AccessDenied"}) for x in previous]
    d = diff(previous, carried)
    assert d.counts() == {"new": 0, "regressed": 0, "resolved": 0, "still_failing": 1}
    m = summary.summary_model(results=carried, sweep_diff=d, trend=[], errors={"s3_tls_only": "buckets: AccessDenied"},
                              as_of=AS_OF, account_id="123456789012", region="us-east-1")
    assert m["partial"] is True
    assert [x["resource"] for x in m["not_evaluated"]] == ["b1"]
    assert m["counts"]["NOT_EVALUATED"] == 2
    assert "Partial sweep" in summary.render_html(m)
