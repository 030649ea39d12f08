"""The FinOps review: the table the approver reads, the answer as decisions, decisions in the state store."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from aiops.cost.model import Recommendation
from aiops.cost.review import decisions_from_answer, review_markdown

RECS = [  # recommend's XCom: Recommendation JSON
    {"id": f"idle_instance:i-{n}", "kind": "idle_instance", "resource_type": "ec2:instance", "resource_id": f"i-{n}",
     "name": f"web|{n}", "service": "checkout", "env": "staging", "team": "storefront", "action": "stop",
     "current": {"instance_type": "m5.large"}, "recommended": {"state": "stopped"}, "current_monthly_usd": 70.08,
     "recommended_monthly_usd": 0.0, "monthly_savings_usd": 70.08,
     "confidence": "high", "evidence": {"low_utilisation_days": 14, "note": "x"}, "runbook": "stop-idle-instance",
     "runbook_parameters": {"InstanceId": f"i-{n}"}, "reason": "idle"}
    for n in range(1, 4)
]
MODELS = [Recommendation.model_validate(r) for r in RECS]


def summary():
    return {"recommendations": RECS, "day": "2026-11-20", "lookback_days": 14, "price_table": "AWS Price List",
            "suppressed_count": 1, "dismiss_days": 90, "key": "cost/rightsizing/dt=2026-11-20/recommendations.json"}


def test_table_shows_refs_savings_evidence_and_runbook():
    md = review_markdown(summary())
    assert "### 3 recommendation(s), $210.24 per month" in md
    assert "| R1 | `i-1` web 1 |" in md  # a '|' in a tag value cannot break the table
    assert "$70.08" in md
    assert "low_utilisation_days=14" in md
    assert "stop-idle-instance" in md
    assert "1 recommendation(s) hidden by earlier decisions" in md


@pytest.mark.parametrize(("chosen", "fields", "expected"), [
    pytest.param(["Apply"], {}, ["apply", "apply", "apply"], id="batch_apply"),
    pytest.param(["Dismiss"], {"apply": "", "defer": "", "dismiss": ""}, ["dismiss"] * 3, id="batch_dismiss"),
    pytest.param(["Defer"], {"apply": "R2"}, ["defer", "apply", "defer"], id="apply_one_defer_rest"),
    pytest.param(["Apply"], {"dismiss": "R1, R3"}, ["dismiss", "apply", "dismiss"], id="dismiss_two"),
    pytest.param(["Defer"], {"apply": "idle_instance:i-3"}, ["defer", "defer", "apply"], id="by_full_id"),
    pytest.param(["Defer"], {"dismiss": "all"}, ["dismiss"] * 3, id="all"),
])
def test_answer_to_decisions(chosen, fields, expected):
    assert [d.decision for d in decisions_from_answer(chosen, fields, MODELS)] == expected


@pytest.mark.parametrize(("chosen", "fields", "message"), [
    pytest.param(["Apply"], {"apply": "R1", "dismiss": "R1"}, "both", id="contradiction"),
    pytest.param(["Apply"], {"apply": "R9"}, "unknown recommendation", id="unknown_ref"),
    pytest.param(["Maybe"], {}, "expected one of", id="unknown_option"),
])
def test_bad_answers_are_refused(chosen, fields, message):
    with pytest.raises(ValueError, match=message):
        decisions_from_answer(chosen, fields, MODELS)


def test_dismissal_hides_for_the_configured_days_and_applied_for_the_hold(isolated_stores):
    from aiops.core.state import StateStore
    from aiops.cost import decisions

    at = datetime(2026, 11, 20, 12, tzinfo=UTC)
    made = decisions_from_answer(["Defer"], {"apply": "R1", "dismiss": "R2"}, MODELS)
    made[0].remediate_run_id = "cost__run__R1"
    decisions.record_decisions(made, review_run_id="run-1", decided_by="bob.finops", decided_at=at,
                               dismiss_days=90, apply_hold_days=7)
    assert set(decisions.suppressed(at + timedelta(days=1))) == {"idle_instance:i-1", "idle_instance:i-2"}
    assert set(decisions.suppressed(at + timedelta(days=8))) == {"idle_instance:i-2"}
    assert decisions.suppressed(at + timedelta(days=91)) == {}
    # a retry of the same review rewrites its rows
    decisions.record_decisions(made, review_run_id="run-1", decided_by="bob.finops", decided_at=at,
                               dismiss_days=90, apply_hold_days=7)
    assert len(decisions.history()) == 3
    audit = StateStore().audit_entries("cost:idle_instance:i-2")
    assert audit[-1]["action"] == "cost_dismiss"
    assert audit[-1]["actor"] == "bob.finops"


def test_realised_savings_accrue_once_the_remediation_succeeded(isolated_stores):
    from aiops.core.state import StateStore
    from aiops.cost import decisions
    from aiops.remediation.pipeline import request_id

    at = datetime(2026, 11, 1, tzinfo=UTC)
    made = decisions_from_answer(["Apply"], {}, MODELS[:2])
    made[0].remediate_run_id, made[1].remediate_run_id = "cost__r__R1", "cost__r__R2"
    decisions.record_decisions(made, review_run_id="r", decided_by="bob.finops", decided_at=at,
                               dismiss_days=90, apply_hold_days=7)
    store = StateStore()
    store.upsert_request(request_id("remediate", "cost__r__R1"), run_id="cost__r__R1", status="succeeded")
    store.upsert_request(request_id("remediate", "cost__r__R2"), run_id="cost__r__R2", status="rejected")
    done = datetime.now(UTC)
    result = decisions.realised_savings(done + timedelta(days=9))  # end of that day: ~10 days after success
    assert result["applied"] == 2
    assert result["completed"] == 1
    assert result["monthly_run_rate_usd"] == 70.08
    assert result["accrued_usd"] == pytest.approx(70.08 * 10 / (730 / 24), rel=0.02)
    assert {i["status"] for i in result["items"]} == {"succeeded", "rejected"}


def test_cli_lists_decisions(isolated_stores, capsys):
    from aiops.cli import main
    from aiops.cost import decisions

    made = decisions_from_answer(["Dismiss"], {}, MODELS[:1])
    decisions.record_decisions(made, review_run_id="r", decided_by="bob.finops",
                               decided_at=datetime(2026, 11, 20, tzinfo=UTC), dismiss_days=90, apply_hold_days=7)
    assert main(["cost", "decisions"]) == 0
    out = capsys.readouterr().out
    assert "bob.finops" in out
    assert "dismiss" in out
    assert "until 2027-02-18" in out
    assert "idle_instance:i-1" in out


def test_a_dismissal_in_one_account_does_not_hide_the_same_recommendation_in_another(isolated_stores):
    from aiops.cost import decisions

    at = datetime(2026, 11, 20, 12, tzinfo=UTC)
    made = decisions_from_answer(["Defer"], {"dismiss": "R2"}, MODELS)
    decisions.record_decisions(made, review_run_id="run-a", decided_by="bob.finops", decided_at=at,
                               dismiss_days=90, apply_hold_days=7, account_id="111111111111")
    later = at + timedelta(days=1)
    assert set(decisions.suppressed(later, account_id="111111111111")) == {"idle_instance:i-2"}
    assert decisions.suppressed(later, account_id="222222222222") == {}
    assert decisions.history()[0]["account_id"] == "111111111111"
