"""Approvals people can act on (issue 19): `aiops approvals list` shows what waits — resource,
incident, age, deadline — and hides expired and superseded prompts; `aiops approvals reject` answers
several prompts Reject through Airflow's own HITL REST API (assignees enforced by Airflow)."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta

import pytest
from remediate_runs import remediate_run, serialized_remediate

NOW = datetime.now(UTC)


def _request(store, n: int, *, age: timedelta, status: str = "awaiting_approval", decision: str | None = None,
             run_id: str | None = None, assigned=("alice.sre",), superseded_by: str | None = None) -> str:
    rid = f"req{n:02d}" + "0" * 12
    created = NOW - age
    plan = {"title": "Reboot an EC2 instance", "risk": "medium", "approval_rounds": 1, "origin": "scheduled",
            "approval_timeout_minutes": 240,
            "targets": [{"id": f"i-{n:017x}", "detail": {"name": f"web-{n}"}, "tags": {}}]}
    asked = {"round": 1, "status": "asked", "assigned": list(assigned), "plan_hash": "h",
             "asked_at": created.isoformat(), "user": None, "decision": None, "source": None}
    if decision:
        asked = {**asked, "status": None, "decision": decision, "user": "alice.sre", "source": "hitl"}
    store.upsert_request(rid, run_id=run_id or f"manual-{n:02d}", runbook="reboot-ec2-instance",
                         requested_by="platform:compliance_sweep", reason="test", incident_id=f"INC-{n}",
                         parameters={}, status=status, plan=plan, approvals=[asked],
                         outcome={"superseded_by": superseded_by} if superseded_by else None)
    from sqlalchemy import update

    from aiops.core.state import remediation_requests

    with store.engine.begin() as conn:  # as if requested `age` ago
        conn.execute(update(remediation_requests).where(remediation_requests.c.request_id == rid)
                     .values(created_at=created))
    return rid


def test_list_names_what_waits_and_hides_expired_and_superseded(isolated_stores, capsys):
    from aiops.cli import main
    from aiops.core.state import StateStore
    from aiops.remediation.approval_queue import parse_age, pending, select_for_reject

    store = StateStore()
    waiting = _request(store, 1, age=timedelta(hours=1))
    expired = _request(store, 2, age=timedelta(hours=5))  # asked 5 h ago, 4 h timeout
    superseded = _request(store, 3, age=timedelta(minutes=30), status="superseded", superseded_by=waiting)
    answered = _request(store, 4, age=timedelta(minutes=10), decision="Approve")

    assert [e["request_id"] for e in pending()] == [waiting]
    states = {e["request_id"]: e["state"] for e in pending(include_closed=True)}
    assert states == {waiting: "waiting", expired: "expired", superseded: "superseded"}
    assert answered not in states

    assert main(["approvals", "list"]) == 0
    out = capsys.readouterr().out
    assert waiting[:12] in out
    assert "i-00000000000000001 (web-1)" in out
    assert "for INC-1" in out
    assert re.search(r"\b(0h59m|1h[0-5]\dm)\b", out), out  # its age: asked an hour ago (a slow machine adds minutes)
    assert expired[:12] not in out
    assert superseded[:12] not in out
    assert main(["approvals", "list", "--all", "--json"]) == 0
    listed = {e["request_id"]: e for e in json.loads(capsys.readouterr().out)}
    assert listed[superseded]["superseded_by"] == waiting
    assert listed[waiting]["deadline"].startswith((NOW + timedelta(hours=3)).strftime("%Y-%m-%d"))

    everything = pending(include_closed=True)
    assert {e["request_id"] for e in select_for_reject(everything, older_than=parse_age("2h"))} == {expired}
    assert {e["request_id"] for e in select_for_reject(everything, superseded=True, expired=True)} == {
        expired, superseded}
    assert {e["request_id"] for e in select_for_reject(everything, ids=[waiting[:8]])} == {waiting}
    assert select_for_reject(everything) == []  # no criterion, nothing selected
    assert parse_age("1h30m") == timedelta(minutes=90)
    with pytest.raises(ValueError):
        parse_age("soon")

    assert main(["approvals", "reject", "--older-than", "2h", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert expired[:12] in out
    assert waiting[:12] not in out
    assert "1 prompt(s) would be answered Reject" in out


@pytest.fixture
def remediate_dag(airflow_db):
    yield from serialized_remediate()


@pytest.fixture
def airflow_api(airflow_db, tmp_path, monkeypatch):
    """Airflow's own API app (in-process) with two approvers who can log in."""
    from fastapi.testclient import TestClient

    passwords = tmp_path / "passwords.json"
    passwords.write_text(json.dumps({"alice.sre": "a-pass", "carol.sre": "c-pass"}))
    monkeypatch.setenv("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS", "alice.sre:op,carol.sre:op")
    monkeypatch.setenv("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE", str(passwords))
    monkeypatch.setenv("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS", "False")
    monkeypatch.setenv("AIRFLOW__API_AUTH__JWT_SECRET", "test-only-secret-for-the-in-process-api")
    from airflow.api_fastapi.app import create_app

    with TestClient(create_app(), base_url="http://testserver") as client:
        yield client


def _park_approval(dag, session, n: int, *, assigned: str):
    """A remediate run whose approve_1 waits in Required Actions (as the operator parks it)."""
    from airflow.models.hitl import HITLDetail
    from airflow.utils.state import TaskInstanceState

    run = remediate_run(dag, session, n, origin="scheduled", at=NOW - timedelta(hours=n))
    tis = {ti.task_id: ti for ti in run.get_task_instances(session=session)}
    tis["plan"].state = TaskInstanceState.SUCCESS
    tis["approve_1"].state = TaskInstanceState.AWAITING_INPUT
    session.add(HITLDetail(ti_id=tis["approve_1"].id, options=["Approve", "Reject"], subject=f"reboot {n}",
                           defaults=["Reject"], multiple=False, params={},
                           assignees=[{"id": assigned, "name": assigned}]))
    session.flush()
    return run.run_id, tis["approve_1"].id


def test_bulk_reject_answers_through_airflows_hitl_api(isolated_stores, remediate_dag, airflow_api):
    from airflow.models.hitl import HITLDetail
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session

    from aiops.core.state import StateStore
    from aiops.remediation.approval_queue import AirflowApi, pending, reject, select_for_reject

    store = StateStore()
    with create_session() as session:
        parked = {n: _park_approval(remediate_dag, session, n, assigned=who)
                  for n, who in ((20, "alice.sre"), (14, "alice.sre"), (13, "carol.sre"), (1, "alice.sre"))}
    rids = {n: _request(store, n, age=timedelta(hours=n), run_id=run_id) for n, (run_id, _) in parked.items()}

    chosen = select_for_reject(pending(include_closed=True), older_than=timedelta(hours=12))
    assert {e["request_id"] for e in chosen} == {rids[20], rids[14], rids[13]}
    api = AirflowApi("http://testserver", username="alice.sre", password="a-pass", http=airflow_api)
    results = {r["request_id"]: r for r in reject(chosen, api)}
    assert results[rids[20]]["result"] == results[rids[14]]["result"] == "rejected"
    assert results[rids[13]]["status_code"] == 403  # carol's to answer, not alice's: Airflow says so

    with create_session() as session:
        for n, (_run_id, ti_id) in parked.items():
            detail = session.get(HITLDetail, ti_id)
            state = session.get(TaskInstance, ti_id).state
            if n in (20, 14):
                assert detail.chosen_options == ["Reject"]
                assert detail.responded_by["id"] == "alice.sre"
                assert state == "scheduled"  # resumed: the run goes on to record 'rejected'
            else:
                assert detail.responded_at is None
                assert state == "awaiting_input"
    again = reject([e for e in chosen if e["request_id"] == rids[20]], api)
    assert again[0]["status_code"] == 409  # already answered
    with pytest.raises(PermissionError):
        AirflowApi("http://testserver", username="alice.sre", password="wrong", http=airflow_api)
