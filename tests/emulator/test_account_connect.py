"""Connecting a fresh account (issue 16 acceptance, on an empty emulator): `aiops account check`
lists every missing piece and exits 1; every DAG that needs a missing piece fails at its first task
with the preflight's message; after `aiops account bootstrap` the check is green, the compliance
summary email is sent, the gate's pass is cached (a failure never is), and a CloudWatch alarm event
put on the account's default bus goes through the stack's rule and queue to the AssetWatcher's
trigger and alert_intake's own tasks, which record the alert, open an incident, page and ack."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

pytestmark = [pytest.mark.emulator]

ANCHOR = datetime(2026, 11, 20, 12, tzinfo=UTC)
MISSING_ON_A_FRESH_ACCOUNT = [
    ("artifacts", "bucket matcarv-aiops-artifacts"),
    ("alerting", "queue aiops-ops-events"),
    ("alerting", "rule aiops-ops-events"),
    ("alerting", "SNS topics"),
    ("security_events", "queue aiops-cloudtrail-files"),
    ("security_events", "trail"),
    ("email", "SES sender aiops@matcarv.example"),
    ("compliance", "Security Hub"),
    ("runbooks", "automation roles"),
]


@pytest.fixture
def fresh(monkeypatch, tmp_path):
    from conftest import EmulatorProcess, aws_conn_json

    from aiops.account import connections
    from aiops.core import aws
    from aiops.core.settings import get_settings

    emulator = EmulatorProcess()
    conn = aws_conn_json(emulator.endpoint)
    monkeypatch.setenv("AIRFLOW_CONN_AWS_DEFAULT", conn)
    monkeypatch.setenv("AIRFLOW_CONN_AWS_EXECUTOR", conn)
    monkeypatch.setenv("AIOPS_AWS_EXECUTOR_CONN_ID", "aws_executor")
    monkeypatch.setenv("AIOPS_HOME", str(tmp_path / "aiops"))
    monkeypatch.setenv("AIOPS_ARTIFACT_BUCKET", "matcarv-aiops-artifacts")
    get_settings.cache_clear()
    aws.clear_client_cache()
    connections._checked.clear()
    yield emulator
    emulator.stop()
    monkeypatch.undo()
    get_settings.cache_clear()
    aws.clear_client_cache()


def test_fresh_account_is_connected_by_bootstrap(fresh, capsys, monkeypatch):
    from botocore.exceptions import ClientError

    from aiops.account.check import AccountNotReady, missing, require_for_dag, run_checks
    from aiops.cli import main
    from aiops.compliance import pipeline as compliance
    from aiops.core import aws

    # 1. every missing piece is listed, with its fix, and the command fails
    assert main(["account", "check"]) == 1
    out = capsys.readouterr().out
    absent = {(i.capability, i.name) for i in missing(run_checks())}
    assert set(MISSING_ON_A_FRESH_ACCOUNT) <= absent, absent
    assert "fix: deploy the bootstrap stack" in out
    assert "click the link AWS mails to aiops@matcarv.example" in out

    # 2. the compliance sweep fails at its first task with that message, not deep in the send call
    with pytest.raises(AccountNotReady, match=r"SES sender aiops@matcarv\.example"):
        require_for_dag("compliance_sweep")
    with pytest.raises(ClientError, match=r"MessageRejected|Did not have authority"):  # what it would have hit
        aws.client("ses").send_raw_email(Source="aiops@matcarv.example", Destinations=["security@matcarv.example"],
                                         RawMessage={"Data": b"Subject: x\r\n\r\nx"})

    # 3. bootstrap through the connection; then all green
    assert main(["account", "bootstrap", "-p", "EnforceTls=false"]) == 0
    capsys.readouterr()
    assert main(["account", "check"]) == 0, capsys.readouterr().out
    assert "0 missing" in capsys.readouterr().out
    assert require_for_dag("compliance_sweep")

    # 4. the compliance summary email is sent
    evaluated = compliance.evaluate_sweep(compliance.collect_inventory(ANCHOR), run_id="connect-test")
    compliance.send_summary(compliance.build_summary(evaluated, compliance.gather_external()))
    assert aws.client("ses").get_send_quota()["SentLast24Hours"] >= 1

    # 5. the alert intake's gate passes; a pass is trusted for the TTL, a failure never is
    _gate_is_cached_only_while_it_passes(fresh)

    # 6. an operational event put on the account's default bus reaches alert_intake and opens an incident
    _event_on_the_bus_opens_an_incident(fresh, monkeypatch)


def _gate_is_cached_only_while_it_passes(emulator) -> None:
    from datetime import timedelta

    from aiops.account.check import AccountNotReady, require_for_dag

    ttl = timedelta(minutes=15)
    assert {i.status for i in require_for_dag("alert_intake", max_age=ttl)} == {"ready"}
    sns = emulator.client("sns")  # the account's admin, not the platform
    arn = next(t["TopicArn"] for t in sns.list_topics()["Topics"] if t["TopicArn"].endswith(":aiops-alerts-payments"))
    sns.delete_topic(TopicArn=arn)
    try:
        with pytest.raises(AccountNotReady, match="absent: aiops-alerts-payments"):
            require_for_dag("alert_intake")  # a fresh check sees the topic gone
        cached = require_for_dag("alert_intake", max_age=ttl)  # the pass of a moment ago is trusted
        assert [i.name for i in cached] == ["preflight"]
        assert "passed at" in cached[0].detail
        with pytest.raises(AccountNotReady, match="absent: aiops-alerts-payments"):
            require_for_dag("alert_intake", max_age=timedelta(microseconds=1))  # expired: checked again
        with pytest.raises(AccountNotReady):
            require_for_dag("alert_intake", max_age=ttl)  # ... and a failure is never remembered
    finally:
        sns.create_topic(Name="aiops-alerts-payments")
    assert require_for_dag("alert_intake", max_age=ttl)


def _fire(trigger) -> dict:
    import asyncio

    async def first():
        async for event in trigger.run():
            return event.payload
        return None

    return asyncio.run(asyncio.wait_for(first(), timeout=60))


def _event_on_the_bus_opens_an_incident(emulator, monkeypatch) -> None:
    """events:PutEvents (a CloudWatch alarm state change, as CloudWatch puts it on the default bus) ->
    the stack's rule aiops-ops-events -> SQS aiops-ops-events -> the AssetWatcher's trigger ->
    alert_intake's own task callables (gate, process, ack): the alert is recorded and an incident opened."""
    import json

    from airflow.dag_processing.dagbag import DagBag
    from sqlalchemy import select

    from aiops.core import aws
    from aiops.core.settings import get_settings
    from aiops.core.state import StateStore, alert_ledger, incidents
    from aiops_sandbox import events as ev

    sqs = aws.client("sqs")
    url = sqs.get_queue_url(QueueName="aiops-ops-events")["QueueUrl"]  # the stack output OpsEventsQueueUrl
    monkeypatch.setenv("AIOPS_ALERTING_QUEUE_URL", url)
    get_settings.cache_clear()
    dag = DagBag(dag_folder="dags/alert_intake.py").dags["alert_intake"]
    (asset,) = dag.timetable.asset_condition.objects  # schedule=[OPS_EVENTS]
    watcher = asset.watchers[0].trigger.trigger  # the SqsSensorTrigger the triggerer runs for the AssetWatcher
    assert watcher.sqs_queue == url

    alarm = ev.cloudwatch_alarm("checkout-prod-web-1-cpu-high", namespace="AWS/EC2", metric="CPUUtilization",
                                dimensions={"InstanceId": "i-0123456789abcdef0"}, time=datetime.now(UTC))
    put = emulator.client("events").put_events(Entries=[{
        "Source": alarm["source"], "DetailType": alarm["detail-type"], "Resources": alarm["resources"],
        "Detail": json.dumps(alarm["detail"])}])  # no EventBusName: the default bus, where CloudWatch puts them
    assert put["FailedEntryCount"] == 0
    event_id = put["Entries"][0]["EventId"]
    other = emulator.client("events").put_events(Entries=[{  # a source the rule does not listen to
        "Source": "acme.billing", "DetailType": "Invoice Paid", "Detail": "{}"}])
    assert other["FailedEntryCount"] == 0

    payload = _fire(watcher)
    batch = payload["message_batch"]
    assert [json.loads(m["Body"])["id"] for m in batch] == [event_id]  # the rule's pattern filtered the other

    tasks = {t.task_id: t.python_callable for t in dag.tasks}
    summary = tasks["process_events"](params={}, triggering_asset_events={
        "aiops_ops_events": [{"extra": {"from_trigger": True, "payload": payload}}]}, run_id="connect-e2e")
    assert summary["alerts"] == 1, summary
    assert summary["dead_letters"] == 0, summary
    assert summary["decisions"] == {"accepted": 1}, summary
    assert len(summary["created"]) == 1
    assert summary["announce"] == summary["created"]
    with StateStore().engine.connect() as conn:
        row = conn.execute(select(alert_ledger).where(alert_ledger.c.event_id == event_id)).mappings().one()
        incident = conn.execute(select(incidents).where(
            incidents.c.incident_id == summary["created"][0])).mappings().one()
    assert row["decision"] == "accepted"
    assert row["source"] == "cloudwatch_alarm"
    assert incident["state"] == "detected"
    assert incident["group_key"] == row["group_key"]
    assert summary["notifications"]
    assert all(n["status"] == "sent" for n in summary["notifications"]), summary["notifications"]
    assert all(":aiops-alerts-" in n["topic"] for n in summary["notifications"]), summary["notifications"]
    assert tasks["ack_messages"](summary) == {"deleted": 1, "failed": []}
    attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert (attrs["ApproximateNumberOfMessages"], attrs["ApproximateNumberOfMessagesNotVisible"]) == ("0", "0")


#: The first task of each DAG of DAG_NEEDS: where its account gate runs.
FIRST_TASKS = {"compliance_sweep": "preflight", "cost_daily_report": "build", "slo_weekly_report": "build",
               "alert_intake": "process_events", "security_events": "plan_files", "remediate": "plan",
               "runbook_sync": "publish"}


@pytest.fixture(scope="module")
def unbootstrapped(tmp_path_factory):
    """A fresh emulator account none of the platform's resources were deployed to (shared: the gates
    only read it)."""
    from conftest import EmulatorProcess, aws_conn_json

    from aiops.account import connections
    from aiops.core import aws
    from aiops.core.settings import get_settings

    emulator = EmulatorProcess()
    conn = aws_conn_json(emulator.endpoint)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AIRFLOW_CONN_AWS_DEFAULT", conn)
        mp.setenv("AIRFLOW_CONN_AWS_EXECUTOR", conn)
        mp.setenv("AIOPS_HOME", str(tmp_path_factory.mktemp("gates") / "aiops"))
        mp.setenv("AIOPS_ALERTING_QUEUE_URL", f"{emulator.endpoint}/123456789012/aiops-ops-events")
        get_settings.cache_clear()
        aws.clear_client_cache()
        connections._checked.clear()
        yield emulator
    emulator.stop()
    get_settings.cache_clear()
    aws.clear_client_cache()


def test_every_dag_that_needs_a_piece_is_gated():
    from aiops.account.check import DAG_NEEDS

    assert set(FIRST_TASKS) == set(DAG_NEEDS)


@pytest.mark.parametrize("dag_id", sorted(FIRST_TASKS))
def test_dag_fails_at_its_first_task_with_the_preflight_message(unbootstrapped, dag_id):
    """On an account missing the DAG's pieces its first task (upstream of every other task) fails at
    once (AirflowFailException: not retried) with exactly what the preflight says is missing."""
    from airflow.dag_processing.dagbag import DagBag
    from airflow.exceptions import AirflowFailException

    from aiops.account.check import DAG_NEEDS, AccountNotReady, missing, run_checks

    dag = DagBag(dag_folder=f"dags/{dag_id}.py").dags[dag_id]
    first = dag.get_task(FIRST_TASKS[dag_id])
    assert not first.upstream_task_ids
    assert set(dag.task_ids) - {first.task_id} <= first.get_flat_relative_ids(upstream=False)
    expected = missing(run_checks(DAG_NEEDS[dag_id]))
    assert expected, f"the fresh account should lack a piece {dag_id} needs"
    with pytest.raises(AirflowFailException) as failed:
        first.python_callable()  # before it reads a param, a date or the account
    assert str(failed.value) == str(AccountNotReady(expected))
    for item in expected:
        assert f"{item.capability}/{item.name}: {item.detail} -> fix: {item.fix}" in str(failed.value)
    assert failed.value.__cause__.items == expected


def test_dag_without_email_is_not_gated_on_the_sender(unbootstrapped):
    """compliance_sweep with send_email=false does not need the SES sender (Security Hub it still needs)."""
    from airflow.dag_processing.dagbag import DagBag
    from airflow.exceptions import AirflowFailException

    dag = DagBag(dag_folder="dags/compliance_sweep.py").dags["compliance_sweep"]
    with pytest.raises(AirflowFailException) as failed:
        dag.get_task("preflight").python_callable(params={"send_email": False})
    assert "compliance/Security Hub" in str(failed.value)
    assert "SES sender" not in str(failed.value)
