"""Connecting a fresh account (issue 16 acceptance, on an empty emulator): `aiops account check`
lists every missing piece and exits 1; the compliance sweep's gate fails first with the SES fix;
after `aiops account bootstrap` the check is green, the compliance summary email is sent and an
event put on the account's bus reaches the alert intake's queue and normalises into an alert."""

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


def test_fresh_account_is_connected_by_bootstrap(fresh, capsys):
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

    # 5. an event put on the account's bus reaches the intake queue and becomes an alert
    from aiops.alerting.normalise import normalise_batch

    events, sqs = aws.client("events"), aws.client("sqs")
    put = events.put_events(Entries=[{"Source": "aws.ec2", "DetailType": "EC2 Instance State-change Notification",
                                      "Detail": '{"instance-id": "i-0123456789abcdef0", "state": "stopped"}'}])
    assert put["FailedEntryCount"] == 0
    url = sqs.get_queue_url(QueueName="aiops-ops-events")["QueueUrl"]
    messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=2).get("Messages", [])
    assert [m for m in messages if put["Entries"][0]["EventId"] in m["Body"]]
    alerts, dead = normalise_batch([{"Body": m["Body"], "MessageId": m["MessageId"]} for m in messages])
    assert len(alerts) + len(dead) == len(messages)
