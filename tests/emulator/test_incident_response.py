"""A game-day incident end to end with dag.test(): the injected failure's events reach the SQS
queue, alert intake opens one incident, incident_response triages it, starts `remediate` (the
pre-approved reboot, or a reboot of RDS approved through HITL), the overlay ends when SSM acts, the
metric is verified back in band, the incident resolves and its post-mortem is written.

dag.test() has no scheduler: :class:`RemediateRunner` stands in for it for the `remediate` run that
incident_response triggers (runs that run's conf with dag.test() and reports the final state back
onto the triggered run, which the deferred TriggerDagRunOperator is waiting for), and
:class:`OverlayTicker` stands in for the live feeder of `make run`.
"""

from __future__ import annotations

import json
import os
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest

from aiops_sandbox.hitl import HitlResponder, approve, reject

pytestmark = [pytest.mark.airflow, pytest.mark.emulator, pytest.mark.slow]


@pytest.fixture(scope="module")
def account(tmp_path_factory, airflow_db):
    """A seeded account whose history ends now (the game day happens now), catalog published."""
    from conftest import EmulatorProcess, aws_conn_json

    from aiops.core import aws
    from aiops.core.settings import get_settings
    from aiops.remediation.sync import sync_catalog

    tmp = tmp_path_factory.mktemp("incident-response")
    anchor = datetime.fromtimestamp(time.time() // 300 * 300, UTC).isoformat().replace("+00:00", "Z")
    emulator = EmulatorProcess(seed=True, anchor=anchor, days=1, manifest=tmp / "truth.json")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AIRFLOW_CONN_AWS_DEFAULT", aws_conn_json(emulator.endpoint))
        mp.setenv("AIOPS_HOME", str(tmp / "aiops"))
        mp.setenv("AIOPS_ARTIFACT_BUCKET", "aiops-test-incident-response")
        mp.setenv("AIOPS_ALERTING_NOTIFY", "false")
        mp.setenv("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS", "admin:admin,alice.sre:op,bob.finops:op")
        get_settings.cache_clear()
        aws.clear_client_cache()
        sync_catalog()
        yield emulator
    get_settings.cache_clear()
    aws.clear_client_cache()
    emulator.stop()


@pytest.fixture(scope="module")
def dags(account):
    from airflow.dag_processing.dagbag import DagBag

    return (DagBag(dag_folder="dags/incident_response.py").get_dag("incident_response"),
            DagBag(dag_folder="dags/remediate.py").get_dag("remediate"))


def clients(emulator):
    from aiops_sandbox.seed import boto_factory

    return boto_factory(emulator.endpoint)


def drain_queue(emulator) -> list[dict]:
    sqs = emulator.client("sqs")
    url = sqs.get_queue_url(QueueName="aiops-ops-events")["QueueUrl"]
    bodies: list[dict] = []
    for _ in range(5):
        resp = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1)
        for msg in resp.get("Messages", []):
            bodies.append({"Body": msg["Body"], "MessageId": msg["MessageId"]})
            sqs.delete_message(QueueUrl=url, ReceiptHandle=msg["ReceiptHandle"])
        if not resp.get("Messages"):
            break
    return bodies


class RemediateRunner(threading.Thread):
    """Runs each `remediate` run incident_response triggers (the scheduler's job): `airflow dags
    test remediate` with that run's conf in a subprocess (two dag.test() in one process share the
    in-process task supervisor), then puts the result's state on the triggered run."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.done: list[tuple[str, str]] = []
        self._stop = threading.Event()

    def run(self) -> None:
        import subprocess
        import sys

        from airflow.models.dagrun import DagRun
        from airflow.utils.session import create_session

        while not self._stop.wait(1):
            with create_session() as session:
                queued = [(r.run_id, dict(r.conf or {})) for r in session.query(DagRun).filter(
                    DagRun.dag_id == "remediate", DagRun.run_id.like("incident__%"), DagRun.state == "queued")]
            for run_id, conf in queued:
                logical = datetime.now(UTC).isoformat()
                proc = subprocess.run([sys.executable, "-m", "airflow", "dags", "test", "remediate", logical,
                                       "--conf", json.dumps(conf)], env=os.environ.copy(), capture_output=True,
                                      text=True, timeout=600)
                with create_session() as session:
                    result = session.query(DagRun).filter(DagRun.dag_id == "remediate", DagRun.logical_date ==
                                                          datetime.fromisoformat(logical)).one()
                    state = str(result.state)
                    triggered = session.query(DagRun).filter(DagRun.dag_id == "remediate",
                                                             DagRun.run_id == run_id).one()
                    triggered.state = state
                self.done.append((run_id, state))
                if state != "success":
                    print(proc.stdout[-4000:], proc.stderr[-4000:])

    def stop(self) -> None:
        self._stop.set()


class OverlayTicker(threading.Thread):
    def __init__(self, overlay) -> None:
        super().__init__(daemon=True)
        self.overlay = overlay
        self._stop = threading.Event()

    def run(self) -> None:
        while not self._stop.wait(2):
            self.overlay.tick()

    def stop(self) -> None:
        self._stop.set()


def game_day(account, dags, scenario: str, answers: dict):
    """Inject, take the events off the queue through alert intake, run incident_response."""
    from aiops.alerting.pipeline import process
    from aiops_sandbox import gameday

    injection = gameday.inject(scenario, clients(account))
    bodies = drain_queue(account)
    intake = process(bodies, run_id=f"test-intake-{scenario}", notify=False)
    assert len(intake["incident_ids"]) == 1, intake  # one injected failure -> one incident
    [incident_id] = intake["incident_ids"]
    incident_response, _ = dags
    runner, ticker = RemediateRunner(), OverlayTicker(gameday.GameDayOverlay(clients(account)))
    runner.start()
    ticker.start()
    try:
        with HitlResponder(answers, process_timeouts=True):
            dag_run = incident_response.test(run_conf={"incident_id": incident_id})
    finally:
        runner.stop()
        ticker.stop()
    return injection, bodies, incident_id, dag_run, runner


@pytest.fixture(scope="module")
def cpu_pinned(account, dags):
    return game_day(account, dags, "cpu-pinned", {})


def test_game_day_events_reach_the_queue_and_the_metric_changes(cpu_pinned, account):
    injection, bodies, *_ = cpu_pinned
    events = [json.loads(b["Body"]) for b in bodies]
    assert {e["detail"]["alarmName"] for e in events if e["detail-type"] == "CloudWatch Alarm State Change"} == {
        s.alarm for s in injection.series}
    cpu = injection.series[0]
    stats = account.client("cloudwatch").get_metric_statistics(
        Namespace=cpu.namespace, MetricName=cpu.metric, Dimensions=[{"Name": "InstanceId", "Value": injection.target}],
        StartTime=datetime.fromisoformat(injection.started_at) - timedelta(minutes=3),
        EndTime=datetime.fromisoformat(injection.started_at) + timedelta(minutes=1), Period=60, Statistics=["Maximum"])
    assert max(p["Maximum"] for p in stats["Datapoints"]) == pytest.approx(98.5)


def test_cpu_pinned_is_rebooted_and_resolved(cpu_pinned, account):
    from aiops.incidents import store

    injection, _, incident_id, dag_run, runner = cpu_pinned
    states = {(ti.task_id, ti.map_index): ti.state for ti in dag_run.get_task_instances()}
    assert states[("check_recovery", 0)] == "success", states
    assert runner.done
    assert runner.done[0][1] == "success"
    incident = store.get(incident_id)
    assert incident["state"] == "resolved"
    moves = [(e["from_state"], e["to_state"]) for e in store.timeline(incident_id) if e["kind"] == "transition"]
    assert moves == [("detected", "triaged"), ("triaged", "remediating"), ("remediating", "resolved")]
    assert incident["mttr_seconds"] > 0
    assert incident["time_to_detect_seconds"] >= 0
    assert incident["links"]["remediate_run"].startswith("remediate/incident__")
    # the reboot really ran on the pinned instance and ended the injected failure
    overlay = json.loads(account.client("ssm").get_parameter(Name="/matcarv/sandbox/gameday/cpu-pinned")
                         ["Parameter"]["Value"])
    assert overlay["state"] == "recovering"
    execution = account.client("ssm").get_automation_execution(AutomationExecutionId=overlay["fixed_by_execution"])
    assert execution["AutomationExecution"]["DocumentName"] == "MatCarv-reboot-ec2-instance"
    assert execution["AutomationExecution"]["Parameters"]["InstanceId"] == [injection.target]


def test_cpu_pinned_event_to_ssm_execution_is_measured_from_recorded_timestamps(cpu_pinned, account):
    """Issue 19's acceptance, from recorded timestamps (not the test's clock): the game day's first
    event (its EventBridge ``time``) to the start of the SSM Automation execution that fixed it (SSM's
    ``ExecutionStartTime``, also recorded by remediate in the request's outcome).

    dag.test() has no scheduler: the time :class:`RemediateRunner` (the stand-in) took to pick the
    triggered run up — from the run's ``queued_at`` to the ``run_after`` of the run it started, a
    fresh ``airflow dags test`` process — is the harness's, not the platform's, and is taken off.
    The figure is printed, not asserted against the 60 s budget: performance targets live in
    benchmarks, never in timed tests (here it measured 66 s at load 5 and 93-314 s at load 7-15 on 2
    cores, most of it ``airflow dags test`` start-up). The budget is checked on a real scheduler by
    ``scripts/first_start_figures.py`` after ``make run`` + a game day (docs/first-start.md)."""
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session

    from aiops.incidents import store

    _injection, bodies, incident_id, *_ = cpu_pinned
    event_at = min(datetime.fromisoformat(json.loads(b["Body"])["time"].replace("Z", "+00:00")) for b in bodies)
    overlay = json.loads(account.client("ssm").get_parameter(Name="/matcarv/sandbox/gameday/cpu-pinned")
                         ["Parameter"]["Value"])
    started = account.client("ssm").get_automation_execution(
        AutomationExecutionId=overlay["fixed_by_execution"])["AutomationExecution"]["ExecutionStartTime"]
    incident = store.get(incident_id)
    assert incident["first_seen"] <= started  # the incident's clock starts no later than the fix
    # remediate recorded the same start with its outcome (what scripts/first_start_figures.py reads)
    request = _request_of(incident_id)
    recorded = datetime.fromisoformat(request["outcome"]["execution"]["started_at"])
    assert abs((recorded - started).total_seconds()) < 1

    triggered_run = incident["links"]["remediate_run"].split("/", 1)[1]
    with create_session() as session:
        queued_at = session.query(DagRun.queued_at).filter(DagRun.dag_id == "remediate",
                                                           DagRun.run_id == triggered_run).scalar()
        stand_in = session.query(DagRun.run_after).filter(
            DagRun.dag_id == "remediate", DagRun.run_id.like("manual__%"),
            DagRun.run_after >= queued_at).order_by(DagRun.run_after).first()[0]
    pickup = (stand_in - queued_at).total_seconds()
    event_to_ssm = (started - event_at).total_seconds()
    print(f"game day cpu-pinned: event -> SSM execution {event_to_ssm:.1f} s, of it the test's stand-in "
          f"scheduler {pickup:.1f} s; detect {(incident['detected_at'] - event_at).total_seconds():.1f} s, "
          f"remediation triggered {(incident['remediation_started_at'] - event_at).total_seconds():.1f} s")
    assert 0 <= pickup <= event_to_ssm
    assert event_at <= incident["detected_at"] <= incident["remediation_started_at"] <= started


def _request_of(incident_id: str) -> dict:
    from sqlalchemy import select

    from aiops.core.state import StateStore, remediation_requests

    store = StateStore()
    with store.engine.connect() as conn:
        return dict(conn.execute(select(remediation_requests).where(
            remediation_requests.c.incident_id == incident_id)).one()._mapping)


def test_triage_evidence_is_stored_and_linked(cpu_pinned):
    from aiops.core.artifacts import ArtifactStore
    from aiops.incidents import store

    incident_id = cpu_pinned[2]
    incident = store.get(incident_id)
    key = incident["links"]["evidence"]
    assert key.startswith("incidents/evidence/dt=")
    assert key.endswith(f"/{incident_id}.json")
    evidence = ArtifactStore().get_json(key)
    assert evidence["runbooks"][0]["runbook"] == "reboot-ec2-instance"
    assert evidence["metric"]["outside_band"] >= 1
    assert evidence["primary_signal"]["metric"] == "CPUUtilization"
    assert evidence["logs"]["errors"] >= 1
    assert any("worker pool exhausted" in m["message"] for m in evidence["logs"]["top_messages"])


def test_postmortem_has_times_actions_and_plot(cpu_pinned):
    from aiops.core.artifacts import ArtifactStore
    from aiops.incidents import store

    _injection, _, incident_id, *_ = cpu_pinned
    incident = store.get(incident_id)
    md = ArtifactStore().get_bytes(incident["links"]["postmortem_md"]).decode()
    html = ArtifactStore().get_bytes(incident["links"]["postmortem_html"]).decode()
    assert incident["links"]["postmortem_md"] == (
        f"incidents/postmortems/dt={incident['first_seen']:%Y-%m-%d}/{incident_id}.md")
    assert "MTTR" in md
    assert "time to detect" in md
    assert f"{incident['resolved_at']:%Y-%m-%d %H:%M:%S}" in md
    assert "reboot-ec2-instance" in md
    assert "pre-approved runbook" in md
    assert "succeeded" in md
    assert "triaged -> remediating" in md
    assert '<img alt="metric with forecast band and incident window" src="data:image/png;base64,' in html
    # one model: the HTML has the Evidence section too, and the triage count matches the timeline's
    assert "<h2>Evidence</h2>" in html
    [triaged] = [e for e in store.timeline(incident_id) if e["to_state"] == "triaged"]
    count = int(triaged["reason"].split("evidence: ", 1)[1].split(" ", 1)[0])
    assert f"at triage: {count} point(s) outside the band" in md
    assert f"at triage: {count} point(s) outside the band" in html


def test_rds_storm_waits_for_approval_and_escalates_on_reject(account, dags):
    from aiops.incidents import store

    _, _, incident_id, _dag_run, _runner = game_day(account, dags, "rds-connection-storm",
                                                  {"approve_1": reject(by="alice.sre")})
    incident = store.get(incident_id)
    assert incident["state"] == "escalated"
    [escalation] = [e for e in store.timeline(incident_id) if e["to_state"] == "escalated"]
    assert "rejected" in escalation["reason"]
    assert "alice.sre" in escalation["reason"]
    assert "postmortem_md" not in incident["links"]
    assert approve  # the approving path is the remediate DAG's own test (tests/dags/test_remediate_dag.py)


def test_5xx_surge_emits_its_alarm_and_is_fixed_by_scaling_out(account):
    from aiops_sandbox import gameday

    injection = gameday.inject("5xx-surge", clients(account))
    events = [json.loads(b["Body"]) for b in drain_queue(account)]
    assert [e["detail"]["configuration"]["metrics"][0]["metricStat"]["metric"]["name"] for e in events] == [
        "HTTPCode_Target_5XX_Count"]
    assert injection.target in account.manifest["resources"]["asgs"]
    assert injection.fixed_by == ["MatCarv-scale-out-asg"]
    assert "5xx-surge" in [i.scenario for i in gameday.active(clients(account)) if i.state == "active"]
    assert gameday.fixed_by(clients(account), injection) is None  # nothing has scaled out yet
