"""security_events with dag.test(): a manual time-range run on the simulated account detects the
CloudTrail tampering and puts the alerts on EventBridge (a private bus, routed to a test queue)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import pytest

pytestmark = [pytest.mark.airflow, pytest.mark.emulator, pytest.mark.slow]


@pytest.fixture
def alert_queue(seeded, isolated_stores, monkeypatch):
    from aiops.core import aws
    from aiops.core.settings import get_settings

    events, sqs = aws.client("events"), aws.client("sqs")
    events.create_event_bus(Name="aiops-test-security")
    url = sqs.create_queue(QueueName="aiops-test-security-alerts")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(Name="to-test-queue", EventBusName="aiops-test-security",
                    EventPattern=json.dumps({"source": ["matcarv.aiops"]}))
    events.put_targets(Rule="to-test-queue", EventBusName="aiops-test-security", Targets=[{"Id": "q", "Arn": arn}])
    monkeypatch.setenv("AIOPS_SECURITY_EVENT_BUS", "aiops-test-security")
    get_settings.cache_clear()
    yield sqs, url
    events.remove_targets(Rule="to-test-queue", EventBusName="aiops-test-security", Ids=["q"])
    events.delete_rule(Name="to-test-queue", EventBusName="aiops-test-security")
    events.delete_event_bus(Name="aiops-test-security")
    sqs.delete_queue(QueueUrl=url)


def test_time_range_run_detects_tampering_and_alerts(airflow_db, seeded, alert_queue):
    from airflow.dag_processing.dagbag import DagBag

    sqs, url = alert_queue
    stop = next(e for e in seeded.manifest["security_events"] if e["event_name"] == "StopLogging")
    t = datetime.fromisoformat(stop["event_time"].replace("Z", "+00:00"))
    dag = DagBag(dag_folder="dags/security_events.py").get_dag("security_events")
    run = dag.test(run_conf={"start": (t - timedelta(minutes=30)).isoformat(),
                             "end": (t + timedelta(minutes=30)).isoformat()})
    states = {ti.task_id: ti.state for ti in run.get_task_instances()}
    assert run.state == "success", states

    msgs = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
    details = [json.loads(m["Body"])["detail"] for m in msgs]
    tampering = [d for d in details if d["detection"] == "cloudtrail_tampering"]
    assert {tuple(d["event_ids"]) for d in tampering} >= {tuple(stop["detail"]["event_ids"])}
    assert all(d["log_keys"] for d in details)
    assert {d["detection"] for d in details} <= {"cloudtrail_tampering", "unusual_region_activity"}
