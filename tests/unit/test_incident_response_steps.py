"""incident_response's recovery decision: resolved only when remediate succeeded and the signal is
back in band; rejected / failed / still out of band past the runbook's window -> escalated; a
remediation still in flight -> wait. Plus the game-day scenario registry's CLI listing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from aiops.core.alerts import Alert, IncidentCandidate
from aiops.incidents import pipeline as response
from aiops.incidents import store as inc

T0 = datetime(2026, 11, 27, 3, 0, tzinfo=UTC)


@pytest.fixture
def incident_id(isolated_stores):
    alert = Alert(source="cloudwatch_alarm", event_id="e1", time=T0, service="checkout", title="cpu",
                  severity="high", fingerprint="f", metric="AWS/EC2|CPUUtilization|InstanceId=i-0abc|Average", raw={})
    incident_id, _ = inc.open_or_update(IncidentCandidate(group_key="g", title="cpu", severity="high", first_seen=T0,
                                                          last_seen=T0, alerts=[alert]), actor="t", run_id="r0")
    inc.transition(incident_id, "triaged", actor="t", reason="x")
    inc.transition(incident_id, "remediating", actor="t", reason="x",
                   links={"remediate_run": f"remediate/{response.trigger_run_id(incident_id, 'ir1')}"})
    return incident_id


def decision(incident_id: str) -> dict:
    return {"incident_id": incident_id, "action": "remediate", "evidence": None,
            "primary_signal": {"series_id": "AWS/EC2|CPUUtilization|InstanceId=i-0abc|Average", "metric": "CPUUtilization"},
            "match": {"runbook": "reboot-ec2-instance", "rule": "ec2-cpu-pinned",
                      "verify": {"metric_back_in_band": True, "within_minutes": 15}}}


def request(status: str, *, updated: datetime = T0, approvals: list | None = None) -> dict:
    return {"request_id": "req1", "run_id": "incident__x", "status": status, "approvals": approvals or [],
            "outcome": {}, "updated_at": updated}


@pytest.fixture
def world(monkeypatch):
    state: dict = {"request": None, "band": {"ok": True, "reason": "inside"}}
    monkeypatch.setattr("aiops.incidents.runbook_rules.latest_request", lambda _id: state["request"])
    monkeypatch.setattr("aiops.incidents.runbook_rules.back_in_band", lambda *a, **k: state["band"])
    return state


def test_succeeded_and_back_in_band_resolves(incident_id, world):
    world["request"] = request("succeeded")
    result = response.check_recovery(decision(incident_id), run_id="ir1", now=T0 + timedelta(minutes=3))
    assert result is not None
    assert result["outcome"] == "resolved"
    assert inc.get(incident_id)["state"] == "resolved"


def test_rejected_escalates_naming_the_approver(incident_id, world):
    world["request"] = request("rejected", approvals=[{"round": 1, "user": "alice.sre", "decision": "Reject"}])
    result = response.check_recovery(decision(incident_id), run_id="ir1")
    assert result is not None
    assert result["outcome"] == "escalated"
    assert "alice.sre: Reject" in inc.timeline(incident_id)[-1]["reason"]


def test_in_flight_remediation_waits(incident_id, world):
    world["request"] = request("awaiting_approval")
    assert response.check_recovery(decision(incident_id), run_id="ir1") is None
    assert inc.get(incident_id)["state"] == "remediating"


def test_out_of_band_waits_then_escalates_after_the_runbook_window(incident_id, world):
    world["request"] = request("succeeded", updated=T0)
    world["band"] = {"ok": False, "reason": "CPUUtilization = 97 is outside its band [20, 50]"}
    assert response.check_recovery(decision(incident_id), run_id="ir1", now=T0 + timedelta(minutes=5)) is None
    result = response.check_recovery(decision(incident_id), run_id="ir1", now=T0 + timedelta(minutes=16))
    assert result is not None
    assert result["outcome"] == "escalated"
    assert "verification failed" in inc.timeline(incident_id)[-1]["reason"]


def test_never_started_remediation_escalates(incident_id, world):
    result = response.check_recovery(decision(incident_id), run_id="ir1")
    assert result is not None
    assert result["outcome"] == "escalated"


def test_retried_check_after_resolution_is_a_noop(incident_id, world):
    world["request"] = request("succeeded")
    response.check_recovery(decision(incident_id), run_id="ir1")
    again = response.check_recovery(decision(incident_id), run_id="ir1")
    assert again is not None
    assert again["outcome"] == "resolved"
    assert [e["to_state"] for e in inc.timeline(incident_id)].count("resolved") == 1


def test_game_day_scenarios_are_listed(capsys):
    from aiops.cli import main

    assert main(["sandbox", "incident", "list"]) == 0
    out = capsys.readouterr().out
    for name in ("cpu-pinned", "rds-connection-storm", "5xx-surge"):
        assert name in out


def test_remediation_started_by_another_run_is_left_to_it(incident_id, world):
    world["request"] = request("succeeded")
    result = response.check_recovery(decision(incident_id), run_id="ir2")
    assert result is not None
    assert result["outcome"] == "handled_elsewhere"
    assert inc.get(incident_id)["state"] == "remediating"


def test_second_run_does_not_remediate_an_incident_already_remediating(incident_id):
    out = response.start_remediations([{**decision(incident_id), "title": "cpu",
                                        "match": {**decision(incident_id)["match"], "approval": "pre-approved",
                                                  "parameters": {"InstanceId": "i-0abc"}}}], run_id="ir2")
    assert out == []
