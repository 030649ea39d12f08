"""Right-sizing recommendations cross task boundaries as aiops.cost.model.Recommendation JSON
(recommendations.json, recommend -> decide XCom, the decision rows): the rules' dataclass dumps the
same JSON as before, and ``decide`` refuses a wrong or unknown field by name."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from aiops.cost.model import Recommendation, RecommendationDecision, RightsizingRecommendation

AT = datetime(2026, 11, 20, 12, tzinfo=UTC)


def rec(**kw) -> RightsizingRecommendation:
    fields = {"kind": "idle_instance", "action": "stop", "resource_type": "ec2:instance", "resource_id": "i-0abc",
              "current": {"instance_type": "m5.large"}, "recommended": {"state": "stopped"},
              "current_monthly_usd": 70.08, "recommended_monthly_usd": 0.0,
              "evidence": {"low_utilisation_days": 14, "last_seen": AT}, "confidence": "high", "reason": "idle",
              "runbook": "stop-idle-instance", "runbook_parameters": {"InstanceId": "i-0abc"}, "name": "web-1",
              "service": "checkout", "env": "staging", "team": "storefront"}
    return RightsizingRecommendation(**{**fields, **kw})


def test_the_model_dumps_what_the_file_always_held():
    r = rec()
    as_stored_before = json.loads(json.dumps(r.to_dict(), default=str))  # put_json(default=str)
    assert r.to_model().model_dump(mode="json") == as_stored_before
    assert list(as_stored_before) == list(Recommendation.model_fields)  # same keys, same order


@pytest.mark.parametrize(("change", "error"), [
    pytest.param({"savings": 12.0}, ("savings", "extra_forbidden"), id="unknown_key"),
    pytest.param({"confidence": "certain"}, ("confidence", "literal_error"), id="unknown_confidence"),
    pytest.param({"kind": "idle_lambda"}, ("kind", "literal_error"), id="unknown_kind"),
    pytest.param({"monthly_savings_usd": "lots"}, ("monthly_savings_usd", "float_parsing"), id="wrong_type"),
    pytest.param({"id": "idle_instance:i-other"}, ("", "value_error"), id="id_not_kind_and_resource"),
])
def test_decide_refuses_a_malformed_recommendation(isolated_stores, change, error):
    from aiops.cost.rightsizing import decide

    summary = {"day": "2026-11-20", "account_id": "123456789012",
               "recommendations": [{**rec().to_model().model_dump(mode="json"), **change}]}
    with pytest.raises(ValidationError) as err:
        decide(summary, {"chosen_options": ["Apply"], "responded_by_user": {"name": "bob"}}, review_run_id="r",
               decided_at=AT)
    assert error in {(".".join(str(p) for p in e["loc"]), e["type"]) for e in err.value.errors()}


def test_a_recorded_decision_keeps_the_recommendation_json(isolated_stores):
    from aiops.cost import decisions

    r = rec().to_model()
    decisions.record_decisions([RecommendationDecision(decision="dismiss", recommendation=r, ref="R1")],
                               review_run_id="r", decided_by="bob", decided_at=AT, dismiss_days=90,
                               apply_hold_days=7)
    [row] = decisions.history()
    assert Recommendation.model_validate(row["recommendation"]) == r
    assert row["monthly_savings_usd"] == r.monthly_savings_usd == 70.08


def test_a_decision_names_one_of_apply_defer_dismiss():
    with pytest.raises(ValidationError, match="decision"):
        RecommendationDecision(decision="maybe", recommendation=rec().to_model(), ref="R1")  # type: ignore[arg-type]
