"""Alerting against the emulator: the simulator's events travel EventBridge -> SQS as on AWS and
normalise; enrichment fills service/team/owner/env from the Resource Groups Tagging API (and the
Auto Scaling group for instances in one); ASFF findings are valid for Security Hub's own API."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import boto3
import pytest

from aiops.alerting.normalise import normalise_batch, normalise_message
from aiops.core.alerts import Alert
from aiops_sandbox import events as ev

pytestmark = [pytest.mark.emulator]
T = datetime(2026, 11, 20, 11, 0, tzinfo=UTC)


def _client(sandbox, service):
    return boto3.client(service, endpoint_url=sandbox.endpoint, region_name="us-east-1",
                        aws_access_key_id="testing", aws_secret_access_key="testing")


def _drain(sqs, url: str) -> None:
    """Empty the queue of other tests' events (PurgeQueue is limited to once a minute)."""
    while batch := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
        sqs.delete_message_batch(QueueUrl=url, Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]}
                                                        for i, m in enumerate(batch)])


def test_put_ops_events_reach_the_queue_and_normalise(seeded, sandbox):
    web1 = seeded.manifest["resources"]["instances"]["checkout-prod-web-1"]
    sent = [ev.cloudwatch_alarm("checkout-prod-web-1-cpu-high", namespace="AWS/EC2", metric="CPUUtilization",
                                dimensions={"InstanceId": web1}, time=T),
            ev.rds_instance_event("checkout-prod-db", time=T),
            ev.guardduty_finding(web1, time=T),
            ev.slo_burn_rate(ev.slo_detail(slo_id="checkout-availability", service="checkout", env="prod",
                                           team="storefront", severity="page", evaluated_at=T))]
    sqs = _client(sandbox, "sqs")
    url = seeded.manifest["resources"]["queues"]["ops_events"]
    _drain(sqs, url)
    result = ev.put_ops_events(sent)
    assert (result["sent"], result["failed"]) == (4, 0)
    messages = []
    while batch := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
        messages += batch
        sqs.delete_message_batch(QueueUrl=url, Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]}
                                                        for i, m in enumerate(batch)])
    alerts, dead = normalise_batch([{"Body": m["Body"], "MessageId": m["MessageId"]} for m in messages])
    assert dead == []
    assert sorted(a.source for a in alerts) == ["aiops_slo", "cloudwatch_alarm", "guardduty", "rds_event"]
    assert {a.event_id for a in alerts} == set(result["event_ids"])  # EventBridge assigns the ids


def test_enrichment_from_tags(seeded):
    from aiops.alerting.enrich import clear_tag_cache, enrich_tags

    clear_tag_cache()
    res = seeded.manifest["resources"]
    bodies = [
        ev.cloudwatch_alarm("web1-cpu", namespace="AWS/EC2", metric="CPUUtilization",
                            dimensions={"InstanceId": res["instances"]["checkout-prod-web-1"]}, time=T),
        ev.rds_instance_event("payments-prod-db", time=T),
        ev.cloudwatch_alarm("tg-5xx", namespace="AWS/ApplicationELB", metric="HTTPCode_Target_5XX_Count",
                            dimensions={"TargetGroup": res["target_groups"]["catalog/prod"]["dimension"],
                                        "LoadBalancer": res["target_groups"]["catalog/prod"]["lb_dimension"]},
                            stat="Sum", time=T),
        ev.asg_event("checkout-prod-asg", res["instances"]["checkout-prod-web-2"], time=T),
        ev.cloudwatch_alarm("ghost", namespace="AWS/EC2", metric="CPUUtilization",
                            dimensions={"InstanceId": "i-00000000000000000"}, time=T),
    ]
    alerts = [a for b in bodies for a in normalise_message(b)]
    assert all(isinstance(a, Alert) for a in alerts)
    enrich_tags(alerts)  # type: ignore[arg-type]
    got = [(a.service, a.env, a.team) for a in alerts]  # type: ignore[union-attr]
    assert got == [("checkout", "prod", "storefront"), ("payments", "prod", "payments"),
                   ("catalog", "prod", "storefront"), ("checkout", "prod", "storefront"), (None, None, None)]
    assert alerts[0].owner == "maria.lopez@matcarv.example"  # type: ignore[union-attr]
    assert alerts[0].enrichment["root_resource"] == "checkout-prod-asg"  # type: ignore[union-attr]
    assert "tags" not in alerts[4].enrichment  # type: ignore[union-attr]


def test_asff_findings_are_accepted_by_security_hub_model():
    """Our ASFF builder validates against botocore's BatchImportFindings input shape."""
    import botocore.session
    from botocore.validate import ParamValidator

    model = botocore.session.get_session().get_service_model("securityhub")
    shape = model.operation_model("BatchImportFindings").input_shape
    finding = ev.asff_finding(title="S3 bucket is public", resource_type="AwsS3Bucket",
                              resource_id="arn:aws:s3:::matcarv-public-assets", severity_label="CRITICAL", time=T)
    report = ParamValidator().validate({"Findings": [finding]}, shape)
    assert not report.has_errors(), report.generate_report()


def test_put_events_entries_are_valid_for_eventbridge_model():
    import botocore.session
    from botocore.validate import ParamValidator

    shape = botocore.session.get_session().get_service_model("events").operation_model("PutEvents").input_shape
    fixtures = Path(__file__).resolve().parents[1] / "fixtures" / "events"
    entries = [ev.to_put_events_entry(json.loads(p.read_text())) for p in sorted(fixtures.glob("*.json"))]
    report = ParamValidator().validate({"Entries": entries}, shape)
    assert not report.has_errors(), report.generate_report()


def test_watcher_trigger_payload_reaches_the_intake(seeded):
    """The AssetWatcher's trigger (as alert_intake's asset configures it) yields the SQS batch in the
    shape ``bodies_from_asset_events`` reads (Airflow stores the trigger payload as the asset event's
    ``extra["payload"]``)."""
    import asyncio

    from airflow.providers.common.messaging.triggers.msg_queue import MessageQueueTrigger

    from aiops.alerting.pipeline import bodies_from_asset_events

    url = seeded.manifest["resources"]["queues"]["ops_events"]
    _drain(boto3.client("sqs", endpoint_url=url.split("/123456789012")[0], region_name="us-east-1"), url)
    sent = ev.ec2_state_change(seeded.manifest["resources"]["instances"]["catalog-prod-api-1"], "stopped", time=T)
    ev.put_ops_events([sent])
    trigger = MessageQueueTrigger(scheme="sqs", sqs_queue=url, aws_conn_id="aws_default", waiter_delay=1)

    async def first():
        async for event in trigger.run():
            return event
        return None

    event = asyncio.run(asyncio.wait_for(first(), timeout=60))
    bodies = bodies_from_asset_events([{"extra": {"from_trigger": True, "payload": event.payload}}])
    alerts, dead = normalise_batch(bodies)
    assert dead == []
    assert [(a.source, a.labels["instance_state"]) for a in alerts] == [("ec2_state", "stopped")]
