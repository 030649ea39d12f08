"""cost_rightsizing and cost_daily_report under dag.test(): the FinOps review round trip (apply ->
remediate triggered; dismiss -> not proposed next run) and a backfilled report run."""

from __future__ import annotations

import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from aiops_sandbox.hitl import HitlResponder, choose

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "emulator"))
from cost_fixtures import ANCHOR, fill_metrics_store

pytestmark = [pytest.mark.airflow, pytest.mark.emulator, pytest.mark.slow]


@pytest.fixture(scope="module")
def cost_stores(seeded, airflow_db, tmp_path_factory):
    import uuid

    from aiops.core.settings import get_settings

    mp = pytest.MonkeyPatch()
    mp.setenv("AIOPS_ARTIFACT_BUCKET", f"aiops-test-{uuid.uuid4().hex[:12]}")
    mp.setenv("AIOPS_HOME", str(tmp_path_factory.mktemp("cost-dags")))
    mp.setenv("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS", "admin:admin,alice.sre:op,bob.finops:op")
    get_settings.cache_clear()
    fill_metrics_store(seeded, end=ANCHOR + timedelta(days=2), days=16)  # covers every run below (right-sizing waits for its data)
    yield seeded
    mp.undo()
    get_settings.cache_clear()


def _dag(name: str):
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=f"dags/{name}.py").get_dag(name)


def _remediate_runs() -> dict[str, dict]:
    from airflow.models.dagrun import DagRun

    return {r.run_id: r.conf for r in DagRun.find(dag_id="remediate")}


def test_review_round_trip_apply_triggers_remediate_and_dismiss_sticks(cost_stores):
    from aiops.core.state import StateStore
    from aiops.cost.decisions import history

    truth = cost_stores.manifest["waste"]
    idle = truth["idle_instances"][0]
    gp2 = sorted(set(truth["gp2_volumes"]) - set(truth["unattached_volumes"]))[0]
    dag = _dag("cost_rightsizing")
    # The approver applies the idle instance, dismisses one gp2 volume and defers the rest.
    # (the form submits every field, as the UI does)
    answer = choose("Defer", by="bob.finops", apply=f"idle_instance:{idle}", defer="", dismiss=f"gp2_volume:{gp2}")
    with HitlResponder({"review": answer}) as responder:
        # a manual run evaluates at the end of its data interval, which ends at the logical date
        run = dag.test(logical_date=datetime(2026, 11, 20, 6, 30, tzinfo=UTC))
    states = {ti.task_id: ti.state for ti in run.get_task_instances()}
    assert run.state == "success", states
    request = responder.answered[0][0]
    assert "Right-sizing 2026-11-20" in request.subject
    assert idle in request.body
    assert "$/month saved" in request.body
    assert {u["id"] for u in request.assigned_users} == {"bob.finops", "admin"}

    triggered = {k: v for k, v in _remediate_runs().items() if k.startswith("cost__")}
    mine = [conf for conf in triggered.values() if conf["parameters"].get("InstanceId") == idle]
    assert len(triggered) == 1
    assert len(mine) == 1
    assert mine[0]["runbook"] == "stop-idle-instance"
    assert mine[0]["requested_by"].startswith("bob.finops")
    decided = {d["recommendation_id"]: d for d in history() if d["review_run_id"] == run.run_id}
    assert decided[f"idle_instance:{idle}"]["decision"] == "apply"
    assert decided[f"gp2_volume:{gp2}"]["decision"] == "dismiss"
    assert decided[f"gp2_volume:{gp2}"]["decided_by"] == "bob.finops"
    assert {d["decision"] for k, d in decided.items() if not k.endswith((idle, gp2))} == {"defer"}
    assert any(e["action"] == "cost_dismiss" for e in StateStore().audit_entries(f"cost:gp2_volume:{gp2}"))

    # Next day: the dismissed and the applied ones are not proposed; the deferred ones are, again.
    with HitlResponder({"review": choose("Defer", by="bob.finops", apply="", defer="", dismiss="")}) as responder:
        second = dag.test(logical_date=datetime(2026, 11, 21, 6, 30, tzinfo=UTC))
    assert second.state == "success"
    body = responder.answered[0][0].body
    assert f"`{gp2}`" not in body  # the resource column
    assert f"`{idle}`" not in body
    assert f"`{truth['unassociated_eips'][0]}`" in body
    assert "2 recommendation(s) hidden by earlier decisions" in body


def test_daily_report_backfill_run_for_a_past_day(cost_stores):
    from moto.ses.models import ses_backends

    from aiops.core.artifacts import ArtifactStore

    backend = ses_backends[cost_stores.manifest["account_id"]]["us-east-1"]
    before = len(backend.sent_messages)
    # The report day is the run's data interval start: a scheduled or backfill run's logical date;
    # for a manual run (as dag.test makes), the last complete day before it.
    run = _dag("cost_daily_report").test(logical_date=datetime(2026, 10, 16, 6, tzinfo=UTC))
    assert run.state == "success"
    assert ArtifactStore().get_bytes("cost/reports/dt=2026-10-15/report.html") is not None
    assert ArtifactStore().get_bytes("cost/reports/dt=2026-10-15/cost.csv") is not None
    assert len(backend.sent_messages) == before + 1
    assert "Cost report 2026-10-15" in backend.sent_messages[-1].raw_data


def test_unanswered_review_defers_everything_after_the_timeout(cost_stores, monkeypatch):
    from aiops.core.settings import get_settings
    from aiops.cost.decisions import history

    monkeypatch.setenv("AIOPS_COST_REVIEW_TIMEOUT_HOURS", "0.0005")  # ~2 s
    get_settings.cache_clear()
    dag = _dag("cost_rightsizing")
    before = set(_remediate_runs())
    with HitlResponder({"review": None}, process_timeouts=True):
        run = dag.test(logical_date=datetime(2026, 11, 22, 6, 30, tzinfo=UTC))
    monkeypatch.delenv("AIOPS_COST_REVIEW_TIMEOUT_HOURS")
    get_settings.cache_clear()
    states = {ti.task_id: ti.state for ti in run.get_task_instances()}
    assert run.state == "success", states
    decided = [d for d in history() if d["review_run_id"] == run.run_id]
    assert decided
    assert {d["decision"] for d in decided} == {"defer"}
    assert {d["decided_by"] for d in decided} == {"nobody (review timed out)"}
    assert set(_remediate_runs()) == before  # nothing applied
