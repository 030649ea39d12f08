"""alert_intake with dag.test() on the simulated account: conf events -> enriched alerts -> one incident
(5B's incident store) -> SNS notifications -> INCIDENTS asset event; the same events again (a
re-delivery) open nothing, notify nobody and announce nothing."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import boto3
import pytest

from aiops_sandbox import events as ev

pytestmark = [pytest.mark.airflow, pytest.mark.emulator, pytest.mark.slow]
T = datetime(2026, 11, 20, 11, 0, tzinfo=UTC)  # inside the seeded history (anchor 12:00)


@pytest.fixture
def subscribed_queue(seeded, sandbox):
    """An SQS queue subscribed to the storefront and platform alert topics (to read what was sent)."""
    kw = {"endpoint_url": sandbox.endpoint, "region_name": "us-east-1", "aws_access_key_id": "testing",
          "aws_secret_access_key": "testing"}
    sqs, sns = boto3.client("sqs", **kw), boto3.client("sns", **kw)
    url = sqs.create_queue(QueueName=f"alert-intake-test-{datetime.now(UTC):%H%M%S%f}")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    for team in ("storefront", "platform"):
        sns.subscribe(TopicArn=seeded.manifest["resources"]["topics"][team], Protocol="sqs", Endpoint=arn)

    def drain() -> list[dict]:
        out = []
        while batch := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
            out += [json.loads(m["Body"]) for m in batch]
            sqs.delete_message_batch(QueueUrl=url, Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]}
                                                            for i, m in enumerate(batch)])
        return out
    yield drain
    sqs.delete_queue(QueueUrl=url)


def announced(run_id: str) -> list[dict]:
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session

    with create_session() as session:
        rows = session.query(AssetEvent).join(AssetModel, AssetEvent.asset_id == AssetModel.id).filter(
            AssetModel.name == "aiops_incidents", AssetEvent.source_run_id == run_id).all()
        return [dict(r.extra) for r in rows]


@pytest.fixture
def replaying_history(monkeypatch):
    """These events are timed inside the seeded history (for tags and CloudTrail enrichment); widen
    the freshness horizon so the intake treats them as live (history is otherwise recorded stale)."""
    from aiops.core.settings import get_settings

    monkeypatch.setenv("AIOPS_FRESHNESS_HORIZON_MINUTES", str(60 * 24 * 365))
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def test_conf_events_open_one_incident_notify_once_and_survive_redelivery(airflow_db, seeded, isolated_stores,
                                                                          subscribed_queue, replaying_history):
    from airflow.dag_processing.dagbag import DagBag

    from aiops.alerting.enrich import clear_tag_cache
    from aiops.alerting.ledger import SqlLedger
    from aiops.core.state import StateStore, incidents

    clear_tag_cache()
    web1 = seeded.manifest["resources"]["instances"]["checkout-prod-web-1"]
    events = [
        ev.cloudwatch_alarm("checkout-prod-web-1-cpu-high", namespace="AWS/EC2", metric="CPUUtilization",
                            dimensions={"InstanceId": web1}, time=T, event_id="evt-alarm-1"),
        ev.slo_burn_rate(ev.slo_detail(slo_id="checkout-availability", service="checkout", env="prod",
                                       team="storefront", severity="page", evaluated_at=T + timedelta(minutes=4)),
                         event_id="evt-slo-1"),
        json.dumps({**ev.ec2_state_change(web1, "stopped", time=T), "detail-type": "EC2 Spot Something"}),
        "{truncated",
    ]
    dag = DagBag(dag_folder="dags/alert_intake.py").get_dag("alert_intake")

    first = dag.test(run_conf={"events": events})
    tis = {ti.task_id: ti for ti in first.get_task_instances()}
    assert first.state == "success", {k: ti.state for k, ti in tis.items()}
    summary = tis["process_events"].xcom_pull(task_ids="process_events")
    assert summary["alerts"] == 2
    assert summary["dead_letters"] == 2
    assert summary["decisions"] == {"accepted": 2}
    [incident_id] = summary["created"]
    assert summary["announce"] == [incident_id]
    assert tis["announce_incidents"].state == "success"

    with StateStore().engine.connect() as conn:
        rows = [dict(r._mapping) for r in conn.execute(incidents.select())]
    assert [r["incident_id"] for r in rows] == [incident_id]
    assert rows[0]["service"] == "checkout"  # the alarm got its service from the instance's tags
    assert rows[0]["severity"] == "critical"
    assert {a["event_id"] for a in rows[0]["alerts"]} == {"evt-alarm-1", "evt-slo-1"}
    alarm = next(a for a in rows[0]["alerts"] if a["event_id"] == "evt-alarm-1")
    assert alarm["team"] == "storefront"
    assert alarm["enrichment"]["severity_rule"]["rule"] == "prod-cpu-alarm"
    assert "recent_changes" in alarm["enrichment"]
    assert "errors" not in alarm["enrichment"]
    assert announced(first.run_id) == [{"incident_ids": [incident_id], "created": [incident_id]}]

    ledger = SqlLedger()
    assert {d["reason"].split(":")[0] for d in ledger.dead_letters()} == {"unknown event type", "bad JSON"}
    sent = [n for n in ledger.notifications() if n["status"] == "sent"]
    assert sorted(n["topic"].rsplit(":", 1)[1] for n in sent) == ["aiops-alerts-platform", "aiops-alerts-storefront"]
    received = subscribed_queue()
    assert len(received) == 2
    assert {m["Subject"] for m in received} == {sent[0]["subject"]}
    assert sent[0]["subject"].startswith(f"[CRITICAL] {incident_id} checkout/prod:")
    assert "checkout-availability" in received[0]["Message"]

    again = dag.test(run_conf={"events": events})
    tis = {ti.task_id: ti for ti in again.get_task_instances()}
    summary = tis["process_events"].xcom_pull(task_ids="process_events")
    assert summary["decisions"] == {"redelivery": 2}
    assert summary["created"] == []
    assert summary["announce"] == []
    assert tis["announce_incidents"].state == "skipped"
    assert announced(again.run_id) == []
    with StateStore().engine.connect() as conn:
        assert len(conn.execute(incidents.select()).fetchall()) == 1
    assert len(SqlLedger().notifications()) == len(sent)
    assert subscribed_queue() == []
    assert len(SqlLedger().dead_letters()) == 2
