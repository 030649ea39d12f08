"""The sweep diff: new, regressed, resolved (passed, accepted, gone), still failing; the score."""

from __future__ import annotations

import pytest

from aiops.compliance.history import diff, score
from aiops.compliance.model import Result


def r(rid: str, status: str = "FAILED", suppressed: str | None = None, check: str = "ebs_volume_encrypted") -> Result:
    return Result(check_id=check, resource_id=rid, resource_type="AwsEc2Volume", region="us-east-1",
                  status=status, reason="x", suppressed=suppressed)


def keys(results):
    return sorted(x.resource_id for x in results)


def test_first_sweep_every_failure_is_new():
    d = diff(None, [r("a"), r("b", "PASSED")])
    assert keys(d.new) == ["a"]
    assert d.counts() == {"new": 1, "regressed": 0, "resolved": 0, "still_failing": 0}


@pytest.mark.parametrize(("before", "after", "bucket"), [
    pytest.param(None, r("a"), "new", id="new_resource_failing"),
    pytest.param(r("a", "PASSED"), r("a"), "regressed", id="passed_then_failed"),
    pytest.param(r("a", suppressed="ok"), r("a"), "regressed", id="exception_removed"),
    pytest.param(r("a"), r("a"), "still_failing", id="still_failing"),
    pytest.param(r("a"), r("a", "PASSED"), "resolved", id="fixed"),
    pytest.param(r("a"), r("a", suppressed="accepted"), "resolved", id="accepted_risk"),
    pytest.param(r("a"), None, "resolved", id="resource_deleted"),
])
def test_transition(before, after, bucket):
    d = diff([before] if before else [r("z", "PASSED")], [after] if after else [])
    counts = d.counts()
    assert counts[bucket] == 1
    assert sum(counts.values()) == 1


def test_resolved_says_how():
    d = diff([r("a"), r("b"), r("c")], [r("a", "PASSED"), r("b", suppressed="ok")])
    assert sorted((x["result"].resource_id, x["now"]) for x in d.resolved) == [
        ("a", "PASSED"), ("b", "SUPPRESSED"), ("c", "GONE")]


def test_same_resource_different_checks_are_distinct():
    d = diff([r("a", check="ebs_volume_encrypted")], [r("a", check="ebs_volume_encrypted"),
                                                      r("a", check="ebs_snapshot_not_public")])
    assert keys(d.still_failing) == ["a"]
    assert [x.check_id for x in d.new] == ["ebs_snapshot_not_public"]


def test_score_is_the_share_of_checks_without_failure():
    assert score([r("a"), r("b", "PASSED"), r("c", "PASSED", check="kms_key_rotation"),
                  r("d", suppressed="ok", check="s3_tls_only")]) == pytest.approx(2 / 3)
    assert score([r("b", "PASSED")] * 1000 + [r("a", check="s3_tls_only")]) == 0.5  # volume cannot hide a failure
    assert score([]) is None
