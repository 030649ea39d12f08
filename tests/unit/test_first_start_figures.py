"""The README's start-up and game-day figures come from the state store (issue 19):
aiops.incidents.figures and scripts/first_start_figures.py."""

from __future__ import annotations

import importlib.util
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

START = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
REPO = Path(__file__).resolve().parents[2]


def _seed(store) -> None:
    from sqlalchemy import insert

    from aiops.core.state import alert_ledger, alert_notifications, incidents, remediation_requests

    def alert(n: int, decision: str, minute: float) -> dict:
        return {"event_id": f"e{n}", "fingerprint": "f" * 64, "source": "aiops_anomaly", "time": START,
                "received_at": START + timedelta(minutes=minute), "state": "firing", "severity": "high",
                "scope": "s", "decision": decision, "alert": {}}

    def incident(iid: str, first: datetime, detected: datetime, resolved: datetime | None, state: str) -> dict:
        return {"incident_id": iid, "group_key": iid, "title": f"CPU pinned {iid}", "severity": "high",
                "state": state, "first_seen": first, "last_seen": detected, "detected_at": detected,
                "resolved_at": resolved, "remediation_started_at": detected + timedelta(seconds=20) if resolved else None,
                "alerts": [], "routed_to": [], "links": {}, "created_at": detected, "updated_at": detected}

    game = START + timedelta(minutes=45)
    with store.engine.begin() as conn:
        conn.execute(insert(alert_ledger), [alert(1, "stale", 5), alert(2, "stale", 6), alert(3, "accepted", 20),
                                            alert(4, "accepted", 50)])  # the last one: after the window
        conn.execute(insert(alert_notifications), [
            {"group_key": "g", "severity": "high", "topic": "t", "status": "sent", "subject": "s",
             "sent_at": START + timedelta(minutes=21)},
            {"group_key": "g2", "severity": "high", "topic": "t", "status": "sent", "subject": "s",
             "sent_at": game + timedelta(seconds=30)}])
        conn.execute(insert(incidents), [
            incident("INC-LIVE", START + timedelta(minutes=19), START + timedelta(minutes=20), None, "escalated"),
            incident("INC-GAME", game, game + timedelta(seconds=12), game + timedelta(seconds=98), "resolved")])
        conn.execute(insert(remediation_requests), [
            {"request_id": "r1", "run_id": "incident__1", "runbook": "reboot-ec2-instance", "parameters": {},
             "targets": [], "plan": {"origin": "incident"}, "requested_by": "platform:incident_response",
             "incident_id": "INC-GAME", "status": "succeeded", "approvals": [],
             "outcome": {"execution": {"execution_id": "x", "started_at": (game + timedelta(seconds=41)).isoformat()}},
             "created_at": game + timedelta(seconds=30), "updated_at": game}])


def test_figures_count_the_start_window_and_time_the_game_day(isolated_stores):
    from aiops.core.state import StateStore
    from aiops.incidents.figures import first_activity, incident_figures, markdown, startup_figures

    store = StateStore()
    store._ready()
    _seed(store)
    assert first_activity() == START + timedelta(minutes=5)
    start = startup_figures(START, 30)
    assert start["alerts"] == {"stale": 2, "accepted": 1}
    assert (start["notifications_sent"], start["incidents"], start["incidents_from_history"]) == (1, 1, 0)
    assert start["remediations"] == 0
    [game] = incident_figures(START + timedelta(minutes=30))
    assert game["incident_id"] == "INC-GAME"
    assert (game["detect_seconds"], game["event_to_ssm_seconds"], game["mttr_seconds"]) == (12.0, 41.0, 98.0)
    assert game["runbooks"] == ["reboot-ec2-instance"]
    table = markdown(start, [game])
    assert "| 3 | 2 | 1 | 1 | 0 | 0 |" in table
    assert "| 12 s | 41 s | 98 s |" in table


def test_script_prints_the_tables(isolated_stores, capsys):
    from aiops.core.state import StateStore

    store = StateStore()
    store._ready()
    _seed(store)
    spec = importlib.util.spec_from_file_location("first_start_figures", REPO / "scripts" / "first_start_figures.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    api = ["--api", "http://127.0.0.1:9"]  # nothing listens: the DAG-run table is left out
    assert script.main(["--since", START.isoformat(), "--minutes", "30", *api]) == 0
    out = capsys.readouterr().out
    assert "First 30 minutes after the start (2026-12-02 12:00 UTC)" in out
    assert "INC-GAME" in out
    assert "INC-LIVE" not in out.split("| incident |")[1]  # opened inside the start window: not a game day
    assert script.main(["--since", START.isoformat(), "--json", *api]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["game_days"][0]["event_to_ssm_seconds"] == 41.0


def test_figures_count_ops_changes_made_in_the_start_window(isolated_stores):
    """`ops changes: N` counts what the routine-operations workflows changed in AWS (done, failed, a
    patch batch sent) in the window — not refusals, not later changes — and the changes their
    first starts planned and held back."""
    from sqlalchemy import insert

    from aiops.core.state import StateStore, ops_changes
    from aiops.incidents.figures import markdown, startup_figures

    def change(n: int, workflow: str, status: str, minute: float) -> dict:
        return {"change_key": f"{workflow}/d/a/r{n}", "workflow": workflow, "action": "a", "resource_id": f"r{n}",
                "status": status, "detail": {}, "at": START + timedelta(minutes=minute)}

    store = StateStore()
    store._ready()
    assert startup_figures(START, 30)["ops_changes"] == 0
    assert "ops changes: 0\n" in markdown(startup_figures(START, 30), [])
    with store.engine.begin() as conn:
        conn.execute(insert(ops_changes), [
            change(1, "ops_snapshots", "done", 2), change(2, "ops_snapshots", "failed", 3),
            change(3, "ops_log_retention", "done", 4), change(4, "ops_patching", "sent", 5),
            change(5, "ops_snapshots", "refused", 6),  # nothing called on AWS
            change(6, "ops_snapshots", "done", 45)])  # after the window
    start = startup_figures(START, 30)
    assert start["ops_changes"] == 4
    assert start["ops_changes_by_workflow"] == {"ops_snapshots": 2, "ops_log_retention": 1, "ops_patching": 1}
    assert "ops changes: 4 (ops_log_retention 1, ops_patching 1, ops_snapshots 2)" in markdown(start, [])


def test_figures_report_a_quiet_first_start_of_the_ops_workflows(isolated_stores):
    from aiops.core.state import StateStore
    from aiops.incidents.figures import markdown, startup_figures

    store = StateStore()
    store._ready()
    for workflow, held in (("ops_snapshots", 5), ("ops_log_retention", 6)):  # what ops.pipeline.arm records
        store.audit(actor=workflow, action="ops.armed", subject=f"{workflow}/2026-12-02",
                    detail={"account_id": "123456789012", "first_start": True, "held_back": held})
    start = startup_figures(datetime.now(UTC) - timedelta(minutes=1), 30)
    assert (start["ops_changes"], start["ops_first_start_held_back"]) == (0, 11)
    assert "ops changes: 0; planned and held back by first starts: 11" in markdown(start, [])
