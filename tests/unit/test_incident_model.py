"""incident_response's hand-offs are pydantic models (aiops.incidents.model): the store validates
every incident row it reads, and each task validates the decision / result it is handed, refusing
a wrong or unknown field by name."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pydantic import ValidationError
from sqlalchemy import update

from aiops.core.alerts import Alert, IncidentCandidate
from aiops.core.state import StateStore, incidents
from aiops.incidents import pipeline as response
from aiops.incidents import store as inc
from aiops.incidents.model import Incident, RecoveryResult, TriageDecision

T0 = datetime(2026, 11, 27, 3, 0, tzinfo=UTC)
MATCH = {"runbook": "reboot-ec2-instance", "rule": "ec2-cpu-pinned", "approval": "approval",
         "parameters": {"InstanceId": "i-0abc"}, "verify": {"metric_back_in_band": True, "within_minutes": 15}}


@pytest.fixture
def db(tmp_path):
    return StateStore(f"sqlite:///{tmp_path / 'state.db'}")


def _open(db: StateStore) -> str:
    alert = Alert(source="cloudwatch_alarm", event_id="e1", time=T0, service="checkout", title="cpu",
                  severity="high", fingerprint="f", raw={})
    incident_id, _ = inc.open_or_update(IncidentCandidate(group_key="g", title="cpu", severity="high", first_seen=T0,
                                                          last_seen=T0, alerts=[alert]), actor="t", run_id="r0",
                                        store=db)
    return incident_id


def errors(exc: pytest.ExceptionInfo[ValidationError]) -> set[tuple[str, str]]:
    return {(".".join(str(p) for p in e["loc"]), e["type"]) for e in exc.value.errors()}


def test_the_store_returns_a_validated_incident_and_the_same_dict_as_before(db):
    incident_id = _open(db)
    incident = inc.get_incident(incident_id, store=db)
    assert isinstance(incident, Incident)
    assert (incident.state, incident.severity, incident.first_seen) == ("detected", "high", T0)
    row = inc.get(incident_id, store=db)
    assert row == incident.model_dump()
    assert set(row) == {c.name for c in incidents.columns}  # one key per column, as the row always had
    assert Incident.model_validate(row) == incident


def test_the_store_refuses_a_row_the_model_does_not_know(db):
    incident_id = _open(db)
    with db.engine.begin() as conn:
        conn.execute(update(incidents).where(incidents.c.incident_id == incident_id).values(state="snoozed"))
    with pytest.raises(ValidationError) as err:
        inc.get(incident_id, store=db)
    assert ("state", "literal_error") in errors(err)


@pytest.mark.parametrize("decision", [
    pytest.param({"incident_id": "INC-1", "title": "cpu", "run_id": "r1", "action": "skip", "state": "resolved"},
                 id="skip"),
    pytest.param({"incident_id": "INC-1", "title": "cpu", "run_id": "r1", "action": "escalate", "reason": "none",
                  "evidence": "incidents/evidence/dt=2026-11-27/INC-1.json"}, id="escalate"),
    pytest.param({"incident_id": "INC-1", "title": "cpu", "run_id": "r1", "action": "remediate", "match": MATCH,
                  "evidence": "k", "primary_signal": None}, id="remediate"),
])
def test_a_decision_round_trips_with_the_keys_it_had(decision):
    assert TriageDecision.model_validate(decision).to_xcom() == decision


@pytest.mark.parametrize(("decision", "error"), [
    pytest.param({"incident_id": "INC-1", "action": "remediate", "match": MATCH, "runbook": "x"},
                 ("runbook", "extra_forbidden"), id="unknown_key"),
    pytest.param({"incident_id": "INC-1", "action": "reboot", "match": MATCH}, ("action", "literal_error"),
                 id="unknown_action"),
    pytest.param({"action": "remediate", "match": MATCH}, ("incident_id", "missing"), id="no_incident"),
])
def test_start_remediations_and_check_recovery_refuse_a_malformed_decision(decision, error):
    with pytest.raises(ValidationError) as err:
        response.start_remediations([decision], run_id="ir1")
    assert error in errors(err)
    with pytest.raises(ValidationError) as err:
        response.check_recovery(decision, run_id="ir1")
    assert error in errors(err)


def test_check_recovery_hands_on_the_decision_with_its_outcome():
    decision = {"incident_id": "INC-1", "title": "cpu", "run_id": "r1", "action": "skip", "state": "resolved"}
    result = response.check_recovery(decision, run_id="r1")
    assert result == {**decision, "outcome": "skip"}
    assert RecoveryResult.model_validate(result).outcome == "skip"


@pytest.mark.parametrize(("result", "error"), [
    pytest.param({"incident_id": "INC-1", "action": "remediate", "outcome": "resolved", "postmortem": True},
                 ("postmortem", "extra_forbidden"), id="unknown_key"),
    pytest.param({"incident_id": "INC-1", "outcome": "resolved"}, ("action", "missing"), id="no_action"),
    pytest.param({"incident_id": "INC-1", "action": "remediate", "outcome": "resolved", "verification": "ok"},
                 ("verification", "dict_type"), id="wrong_type"),
])
def test_write_postmortem_refuses_a_malformed_result(result, error):
    with pytest.raises(ValidationError) as err:
        response.write_postmortem(result, run_id="ir1")
    assert error in errors(err)
