"""Incident lifecycle in the state store: transitions, illegal moves, idempotency."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from aiops.core.alerts import Alert, IncidentCandidate
from aiops.core.state import StateStore
from aiops.incidents import store as inc

T0 = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)


@pytest.fixture
def db(tmp_path):
    return StateStore(f"sqlite:///{tmp_path / 'state.db'}")


def _alert(event_id: str, *, minutes: int = 0, severity: str = "high") -> Alert:
    return Alert(source="cloudwatch_alarm", event_id=event_id, time=T0 + timedelta(minutes=minutes),
                 resource="i-0abc", service="checkout", title="CPU high on i-0abc", severity=severity,  # type: ignore[arg-type]
                 fingerprint="fp-cpu", raw={"id": event_id})


def _candidate(*alerts: Alert, severity: str = "high", key: str = "checkout|i-0abc|w1") -> IncidentCandidate:
    return IncidentCandidate(group_key=key, title="checkout: CPU high", service="checkout", severity=severity,  # type: ignore[arg-type]
                             root_resource="i-0abc", first_seen=min(a.time for a in alerts),
                             last_seen=max(a.time for a in alerts), alerts=list(alerts))


def test_open_creates_a_detected_incident_with_an_opened_entry(db):
    incident_id, created = inc.open_or_update(_candidate(_alert("e1")), actor="alert_intake", run_id="r1", store=db)
    assert created is True
    row = inc.get(incident_id, store=db)
    assert row["state"] == "detected"
    assert row["service"] == "checkout"
    assert len(row["alerts"]) == 1
    assert row["time_to_detect_seconds"] > 0
    [entry] = inc.timeline(incident_id, store=db)
    assert (entry["kind"], entry["to_state"], entry["actor"], entry["run_id"]) == ("opened", "detected",
                                                                                    "alert_intake", "r1")


def test_redelivered_candidate_neither_duplicates_nor_logs(db):
    cand = _candidate(_alert("e1"))
    first = inc.open_or_update(cand, actor="alert_intake", run_id="r1", store=db)
    again = inc.open_or_update(cand, actor="alert_intake", run_id="r1-retry", store=db)
    assert again == (first[0], False)
    assert len(inc.list_open(store=db)) == 1
    assert [e["kind"] for e in inc.timeline(first[0], store=db)] == ["opened"]


def test_update_adds_alerts_raises_severity_and_keeps_state(db):
    incident_id, _ = inc.open_or_update(_candidate(_alert("e1"), severity="medium"), actor="a", run_id="r1", store=db)
    inc.transition(incident_id, "triaged", actor="incident_response", reason="evidence", store=db)
    later = _candidate(_alert("e1"), _alert("e2", minutes=5), severity="critical")
    assert inc.open_or_update(later, actor="a", run_id="r2", store=db) == (incident_id, False)
    row = inc.get(incident_id, store=db)
    assert row["state"] == "triaged"  # the transition is not lost
    assert row["severity"] == "critical"
    assert [a["event_id"] for a in row["alerts"]] == ["e1", "e2"]
    assert row["last_seen"] == T0 + timedelta(minutes=5)
    # severity never goes down
    inc.open_or_update(_candidate(_alert("e3", minutes=6), severity="low"), actor="a", run_id="r3", store=db)
    assert inc.get(incident_id, store=db)["severity"] == "critical"


def test_full_lifecycle_records_times_and_links(db):
    incident_id, _ = inc.open_or_update(_candidate(_alert("e1")), actor="a", run_id="r1", store=db)
    inc.transition(incident_id, "triaged", actor="incident_response", reason="evidence gathered", run_id="ir1",
                   links={"evidence": "incidents/evidence/dt=2026-11-20/x.json"}, store=db)
    inc.transition(incident_id, "remediating", actor="incident_response", reason="restart-ec2-instance",
                   run_id="ir1", links={"remediate_run": "remediate/manual__x"}, store=db)
    inc.transition(incident_id, "resolved", actor="incident_response", reason="back in band", run_id="ir1", store=db)
    row = inc.get(incident_id, store=db)
    assert row["state"] == "resolved"
    assert row["triaged_at"] <= row["remediation_started_at"] <= row["resolved_at"]
    assert row["mttr_seconds"] == pytest.approx((row["resolved_at"] - T0).total_seconds())
    assert row["links"]["evidence"].endswith("x.json")
    assert row["links"]["remediate_run"] == "remediate/manual__x"
    moves = [(e["from_state"], e["to_state"]) for e in inc.timeline(incident_id, store=db) if e["kind"] == "transition"]
    assert moves == [("detected", "triaged"), ("triaged", "remediating"), ("remediating", "resolved")]
    assert inc.list_open(store=db) == []


@pytest.mark.parametrize(("path", "illegal"), [
    pytest.param([], "resolved", id="detected_to_resolved"),
    pytest.param([], "remediating", id="detected_to_remediating"),
    pytest.param(["triaged"], "triaged", id="repeat_without_key"),
    pytest.param(["triaged", "remediating", "resolved"], "triaged", id="resolved_is_terminal"),
    pytest.param(["escalated"], "detected", id="back_to_detected"),
])
def test_illegal_transitions_are_rejected(db, path, illegal):
    incident_id, _ = inc.open_or_update(_candidate(_alert("e1")), actor="a", run_id="r1", store=db)
    for state in path:
        inc.transition(incident_id, state, actor="t", reason="setup", store=db)
    with pytest.raises(inc.IllegalTransition):
        inc.transition(incident_id, illegal, actor="t", reason="bad", store=db)
    assert inc.get(incident_id, store=db)["state"] == (path[-1] if path else "detected")


def test_retried_transition_with_key_is_a_noop(db):
    incident_id, _ = inc.open_or_update(_candidate(_alert("e1")), actor="a", run_id="r1", store=db)
    assert inc.transition(incident_id, "triaged", actor="t", reason="x", key="ir1:triage", store=db) is True
    assert inc.transition(incident_id, "triaged", actor="t", reason="x", key="ir1:triage", store=db) is False
    assert [e["to_state"] for e in inc.timeline(incident_id, store=db)].count("triaged") == 1


def test_escalated_incident_can_still_be_resolved_by_a_human(db):
    incident_id, _ = inc.open_or_update(_candidate(_alert("e1")), actor="a", run_id="r1", store=db)
    inc.transition(incident_id, "escalated", actor="incident_response", reason="no runbook matches", store=db)
    inc.transition(incident_id, "resolved", actor="alice.sre", reason="fixed by hand", store=db)
    assert inc.get(incident_id, store=db)["escalated_at"] is not None


def test_unknown_incident_is_reported(db):
    with pytest.raises(inc.IncidentNotFound):
        inc.get("INC-NOPE", store=db)
    with pytest.raises(inc.IncidentNotFound):
        inc.transition("INC-NOPE", "triaged", actor="t", reason="x", store=db)


def test_distinct_groups_are_distinct_incidents(db):
    a, _ = inc.open_or_update(_candidate(_alert("e1"), key="g1"), actor="a", run_id=None, store=db)
    b, _ = inc.open_or_update(_candidate(_alert("e2"), key="g2"), actor="a", run_id=None, store=db)
    assert a != b
    assert {r["incident_id"] for r in inc.list_open(store=db)} == {a, b}


def test_alerts_after_resolution_open_a_recurrence_and_redelivery_finds_it(db):
    incident_id, _ = inc.open_or_update(_candidate(_alert("e1")), actor="a", run_id="r1", store=db)
    for state in ("triaged", "remediating", "resolved"):
        inc.transition(incident_id, state, actor="t", reason="x", store=db)
    resolved_at = inc.get(incident_id, store=db)["resolved_at"]
    late = Alert(source="cloudwatch_alarm", event_id="e9", time=resolved_at + timedelta(minutes=1), resource="i-0abc",
                 service="checkout", title="again", severity="high", fingerprint="fp-cpu", raw={})
    again = _candidate(_alert("e1"), late)
    recurrence, created = inc.open_or_update(again, actor="a", run_id="r2", store=db)
    assert created is True
    assert recurrence != incident_id
    assert [a["event_id"] for a in inc.get(recurrence, store=db)["alerts"]] == ["e9"]
    assert inc.get(recurrence, store=db)["first_seen"] == late.time
    assert inc.open_or_update(again, actor="a", run_id="r2-retry", store=db) == (recurrence, False)
    assert inc.get(incident_id, store=db)["state"] == "resolved"


def test_late_alert_from_before_resolution_folds_into_the_resolved_incident(db):
    incident_id, _ = inc.open_or_update(_candidate(_alert("e1")), actor="a", run_id="r1", store=db)
    for state in ("triaged", "remediating", "resolved"):
        inc.transition(incident_id, state, actor="t", reason="x", store=db)
    assert inc.open_or_update(_candidate(_alert("e1"), _alert("e2", minutes=1)), actor="a", run_id="r2",
                              store=db) == (incident_id, False)
    assert len(inc.get(incident_id, store=db)["alerts"]) == 2


def test_cli_resolves_an_escalated_incident_and_refuses_twice(tmp_path, monkeypatch, capsys):
    from aiops import cli
    from aiops.core.settings import get_settings

    monkeypatch.setenv("AIOPS_HOME", str(tmp_path))
    monkeypatch.setenv("AIOPS_STATE_CONN_ID", "aiops_state_absent")  # the SQLite file under AIOPS_HOME
    get_settings.cache_clear()
    try:
        incident_id, _ = inc.open_or_update(_candidate(_alert("e1")), actor="alert_intake", run_id="r1")
        inc.transition(incident_id, "escalated", actor="incident_response", reason="no runbook matches")
        assert cli.main(["incidents", "resolve", incident_id, "--by", "alice.sre", "--reason", "fixed by hand"]) == 0
        row = inc.get(incident_id)
        assert row["state"] == "resolved"
        assert row["mttr_seconds"] is not None
        last = inc.timeline(incident_id)[-1]
        assert (last["actor"], last["reason"], last["to_state"]) == ("alice.sre", "fixed by hand", "resolved")
        assert cli.main(["incidents", "resolve", incident_id, "--by", "alice.sre", "--reason", "again"]) == 2
        assert "not allowed" in capsys.readouterr().out
    finally:
        get_settings.cache_clear()


def _alert_in(account: str, event_id: str) -> Alert:
    return _alert(event_id).model_copy(update={"account": account})


def test_the_same_group_in_two_accounts_is_two_incidents(db):
    a, created_a = inc.open_or_update(_candidate(_alert_in("111111111111", "e1")), actor="t", run_id=None, store=db)
    b, created_b = inc.open_or_update(_candidate(_alert_in("222222222222", "e2")), actor="t", run_id=None, store=db)
    again, created_again = inc.open_or_update(_candidate(_alert_in("111111111111", "e3")), actor="t", run_id=None,
                                              store=db)
    assert (created_a, created_b, created_again) == (True, True, False)
    assert a != b
    assert again == a
    assert inc.get(a, store=db)["account_id"] == "111111111111"
    assert [r["incident_id"] for r in inc.list_open(store=db, account_id="222222222222")] == [b]
    assert {e["event_id"] for e in inc.get(a, store=db)["alerts"]} == {"e1", "e3"}
