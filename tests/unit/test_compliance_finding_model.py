"""A compliance Result crosses task boundaries (the sweep's results file, the findings history) as
aiops.compliance.model.Finding JSON: it round-trips, older rows still load, and a wrong or unknown
field is refused where it is read back."""

from __future__ import annotations

import dataclasses

import pytest
from pydantic import ValidationError

from aiops.compliance.model import Finding, Result

RESULT = Result(check_id="ec2_sg_open_ssh", resource_id="sg-0abc", resource_type="AwsEc2SecurityGroup",
                region="us-east-1", status="FAILED", reason="22/tcp open to 0.0.0.0/0",
                resource_arn="arn:aws:ec2:us-east-1:123456789012:security-group/sg-0abc", resource_name="web",
                tags={"team": "storefront"}, suppressed=None, not_evaluated="security_groups: AccessDenied")


def test_a_result_round_trips_through_its_json():
    d = RESULT.to_dict()
    assert d == dataclasses.asdict(RESULT)  # the JSON shape stored before the model
    assert Result.from_dict(d) == RESULT


def test_the_model_and_the_dataclass_have_the_same_fields():
    assert list(Finding.model_fields) == [f.name for f in dataclasses.fields(Result)]


def test_a_row_written_before_the_newer_fields_still_loads():
    old = {k: v for k, v in RESULT.to_dict().items() if k not in ("not_evaluated", "risk_tag_ignored")}
    assert Result.from_dict(old) == dataclasses.replace(RESULT, not_evaluated=None)


@pytest.mark.parametrize(("change", "error"), [
    pytest.param({"severity": "HIGH"}, ("severity", "extra_forbidden"), id="unknown_key"),
    pytest.param({"status": "SUPPRESSED"}, ("status", "literal_error"), id="unknown_status"),
    pytest.param({"check_id": None}, ("check_id", "string_type"), id="missing_check"),
])
def test_a_malformed_finding_is_refused(change, error):
    with pytest.raises(ValidationError) as err:
        Result.from_dict({**RESULT.to_dict(), **change})
    assert error in {(".".join(str(p) for p in e["loc"]), e["type"]) for e in err.value.errors()}


def test_publish_and_summary_refuse_a_results_file_with_an_unknown_field(monkeypatch):
    from aiops.compliance.pipeline import _load
    from aiops.core.artifacts import ArtifactStore

    doc = {"results": [{**RESULT.to_dict(), "severity": "HIGH"}]}
    monkeypatch.setattr(ArtifactStore, "__init__", lambda self: None)
    monkeypatch.setattr(ArtifactStore, "get_json", lambda self, key: doc)
    with pytest.raises(ValidationError, match="severity"):
        _load({"results_key": "compliance/results/dt=2026-11-20/sweep.json"})
