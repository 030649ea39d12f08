"""Least privilege, proven against the emulator with IAM enforcement on (moto's
``INITIAL_NO_AUTH_ACTION_COUNT``, switched on through ``/moto-api/reset-auth`` once the seeded
account, the bootstrap stack and two IAM users exist).

* ``aws_default`` = a user holding only the generated reader + notifier policies: the read-only
  paths (compliance sweep incl. its email, metrics extract, cost, CloudTrail analysis, alert
  notification, event publishing) succeed, and every write any runbook makes is refused.
* ``aws_executor`` = a user holding only the generated executor policy: publishes the runbooks and
  runs ``stop-idle-instance`` as its automation role ``MatCarvAIOps-stop-idle-instance`` (the
  role's policy = the runbook metadata's permissions; each step is authorised against it).

The emulator variant of the policies widens resource scopes where moto only authorises against
``*`` (see aiops.account.iam); actions are exactly the generated ones.
"""

from __future__ import annotations

import json
import urllib.request
from datetime import datetime, timedelta

import pytest

pytestmark = [pytest.mark.emulator]

ANCHOR = "2026-11-20T12:00:00Z"


def _conn(endpoint: str, key: dict[str, str]) -> str:
    return json.dumps({"conn_type": "aws", "login": key["AccessKeyId"], "password": key["SecretAccessKey"],
                       "extra": {"region_name": "us-east-1", "endpoint_url": endpoint}})


@pytest.fixture(scope="module")
def account(tmp_path_factory):
    from conftest import EmulatorProcess

    from aiops.account.iam import default_params, render_policies

    manifest = tmp_path_factory.mktemp("iam") / "ground_truth.json"
    emulator = EmulatorProcess(seed=True, anchor=ANCHOR, days=1, manifest=manifest)
    iam = emulator.client("iam")
    policies = render_policies(default_params(trail_bucket=emulator.manifest["resources"]["buckets"]["cloudtrail"]),
                               emulator=True)
    keys = {}
    for user, names in (("aiops-reader-user", ("aiops-reader", "aiops-notifier")),
                        ("aiops-executor-user", ("aiops-executor",))):
        iam.create_user(UserName=user)
        for name in names:
            arn = iam.create_policy(PolicyName=f"{name}-emulator",
                                    PolicyDocument=json.dumps(policies[name]))["Policy"]["Arn"]
            iam.attach_user_policy(UserName=user, PolicyArn=arn)
        keys[user] = iam.create_access_key(UserName=user)["AccessKey"]
    req = urllib.request.Request(f"{emulator.endpoint}/moto-api/reset-auth", data=b"0", method="POST",
                                 headers={"Content-Type": "text/plain"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        assert json.loads(resp.read())["status"] == "ok"
    yield emulator, keys
    emulator.stop()


@pytest.fixture
def identities(account, monkeypatch, tmp_path):
    from aiops.account import connections
    from aiops.core import aws
    from aiops.core.settings import get_settings

    emulator, keys = account
    monkeypatch.setenv("AIRFLOW_CONN_AWS_DEFAULT", _conn(emulator.endpoint, keys["aiops-reader-user"]))
    monkeypatch.setenv("AIRFLOW_CONN_AWS_EXECUTOR", _conn(emulator.endpoint, keys["aiops-executor-user"]))
    monkeypatch.setenv("AIOPS_AWS_EXECUTOR_CONN_ID", "aws_executor")
    monkeypatch.setenv("AIOPS_HOME", str(tmp_path / "aiops"))
    monkeypatch.setenv("AIOPS_ARTIFACT_BUCKET", "matcarv-aiops-artifacts")  # the stack's bucket
    monkeypatch.setenv("AIOPS_SECURITY_TRAIL_NAME", emulator.manifest["resources"]["trail"])
    get_settings.cache_clear()
    aws.clear_client_cache()
    connections._checked.clear()
    yield emulator
    get_settings.cache_clear()
    aws.clear_client_cache()


def _denied(exc: Exception) -> bool:
    code = str(getattr(exc, "response", {}).get("Error", {}).get("Code", ""))
    return code in {"AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "403"} or "not authorized" in str(exc)


def test_reader_runs_the_read_only_paths(identities):
    from aiops.compliance import pipeline as compliance
    from aiops.core import aws
    from aiops.cost.spend import cost_and_usage
    from aiops.metrics import pipeline as metrics
    from aiops.security import pipeline as security

    anchor = datetime.fromisoformat(ANCHOR.replace("Z", "+00:00"))
    # compliance sweep: collect, evaluate, import findings, external results, summary, email
    evaluated = compliance.evaluate_sweep(compliance.collect_inventory(anchor), run_id="iam-test")
    assert evaluated["counts"]["FAILED"] > 0
    compliance.publish_findings(evaluated)
    stored = compliance.build_summary(evaluated, compliance.gather_external())
    sent = compliance.send_summary(stored)
    assert sent.get("message_id") or sent.get("MessageId") or sent
    # metrics extract (15 minutes)
    chunks = metrics.plan(anchor - timedelta(minutes=15), anchor,
                          {"start": (anchor - timedelta(hours=2)).isoformat(), "end": anchor.isoformat()})
    published = metrics.publish([metrics.extract_chunk(c, metrics.discover()["key"]) for c in chunks])
    assert published
    # cost explorer
    assert cost_and_usage((anchor - timedelta(days=3)).date(), anchor.date(), ["SERVICE"])
    # CloudTrail log files from the trail bucket
    files = security.keys_for_range(anchor - timedelta(hours=6), anchor)
    assert files
    security.analyse_files(files, start=anchor - timedelta(hours=6), end=anchor)
    # notifier: SNS to a team topic, an event on the bus
    topic = identities.manifest["resources"]["topics"]["platform"]
    aws.client("sns").publish(TopicArn=topic, Message="least-privilege test")
    aws.client("events").put_events(Entries=[{"Source": "matcarv.aiops", "DetailType": "test", "Detail": "{}"}])


def test_reader_is_refused_every_runbook_write(identities):
    from botocore.config import Config

    from aiops.account.iam import allowed, default_params, render_policies, runbook_permissions
    from aiops.core import aws

    instance = next(iter(identities.manifest["resources"]["instances"].values()))
    with pytest.raises(Exception) as refused:
        aws.client("ec2").stop_instances(InstanceIds=[instance])
    assert _denied(refused.value), refused.value

    reader = render_policies(default_params(), emulator=True)
    reader_docs = [reader["aiops-reader"], reader["aiops-notifier"]]
    writes = sorted({a for actions in runbook_permissions().values() for a in actions
                     if not a.split(":", 1)[1].startswith(("Describe", "Get", "List"))})
    assert "ec2:StopInstances" in writes
    assert len(writes) >= 10
    # statically: no runbook write is in the reader's policies on anything but the platform's own bucket ...
    def target(action: str) -> str:
        service = action.split(":", 1)[0]
        return "arn:aws:s3:::matcarv-public-assets" if service == "s3" else f"arn:aws:{service}:us-east-1:1:x/y"

    assert [a for a in writes if allowed(a, reader_docs, resource=target(a))] == []
    # ... and live: the emulator refuses each one the reader tries (authorisation precedes validation)
    import boto3

    session = boto3.session.Session()
    conn = json.loads(__import__("os").environ["AIRFLOW_CONN_AWS_DEFAULT"])
    tried = 0
    for action in writes:
        service, op = action.split(":", 1)
        client = session.client({"elasticloadbalancing": "elbv2"}.get(service, service),
                                endpoint_url=identities.endpoint, region_name="us-east-1",
                                aws_access_key_id=conn["login"], aws_secret_access_key=conn["password"],
                                config=Config(parameter_validation=False, retries={"max_attempts": 1}))
        if op not in client.meta.service_model.operation_names:
            continue
        from botocore import xform_name

        params = {"Bucket": "matcarv-public-assets"} if service == "s3" else {}
        with pytest.raises(Exception) as exc_info:
            getattr(client, xform_name(op))(**params)
        assert _denied(exc_info.value), f"{action}: {exc_info.value}"
        tried += 1
    assert tried >= 10


def test_executor_runs_a_runbook_as_its_automation_role(identities):
    from aiops.account.connections import executor_client
    from aiops.account.iam import runbook_role_name
    from aiops.core import aws
    from aiops.remediation.sync import sync_catalog

    report = sync_catalog()
    assert report["counts"]["error"] == 0, report
    instance = identities.manifest["resources"]["instances"]["batch-worker-1"] \
        if "batch-worker-1" in identities.manifest["resources"]["instances"] \
        else next(iter(identities.manifest["resources"]["instances"].values()))
    ssm = executor_client("ssm")
    account = ssm.meta.region_name and identities.manifest["account_id"]
    role = f"arn:aws:iam::{account}:role/{runbook_role_name('stop-idle-instance')}"
    execution_id = ssm.start_automation_execution(
        DocumentName="MatCarv-stop-idle-instance",
        Parameters={"InstanceId": [instance], "AutomationAssumeRole": [role]})["AutomationExecutionId"]
    import time

    for _ in range(120):
        execution = ssm.get_automation_execution(AutomationExecutionId=execution_id)["AutomationExecution"]
        if execution["AutomationExecutionStatus"] in {"Success", "Failed", "TimedOut", "Cancelled"}:
            break
        time.sleep(0.5)
    assert execution["AutomationExecutionStatus"] == "Success", execution.get("FailureMessage")
    state = aws.client("ec2").describe_instances(InstanceIds=[instance])["Reservations"][0]["Instances"][0]
    assert state["State"]["Name"] == "stopped"
    # the reader may not start automations
    with pytest.raises(Exception) as refused:
        aws.client("ssm").start_automation_execution(DocumentName="MatCarv-stop-idle-instance",
                                                     Parameters={"InstanceId": [instance]})
    assert _denied(refused.value), refused.value
