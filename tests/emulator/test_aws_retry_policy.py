"""One retry policy for every AWS client, proven through a throttling fault proxy in front of the emulator.

The proxy answers the first N calls of an operation with the service's real throttle code, in the
service's wire protocol (JSON, CBOR, query XML, EC2 XML); the call must still succeed. Reproduction
first: a client with botocore's defaults (``legacy`` mode) fails on Cost Explorer's
``LimitExceededException`` and after 4 EC2 throttles.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime, timedelta

import boto3
import pytest
from botocore.exceptions import ClientError

from aiops.core import aws
from aiops_sandbox.faults import Fault, FaultProxy

pytestmark = [pytest.mark.emulator]


@pytest.fixture
def proxy(sandbox, monkeypatch):
    """The default AWS connection goes through a fault proxy in front of the session emulator.
    Backoff sleeps are zeroed: the tests count attempts, not seconds."""
    monkeypatch.setattr("botocore.retries.standard.ExponentialBackoff.delay_amount", lambda self, context: 0)
    monkeypatch.setattr("botocore.retryhandler.delay_exponential", lambda *args, **kwargs: 0)
    with FaultProxy(sandbox.endpoint) as p:
        monkeypatch.setenv("AIRFLOW_CONN_AWS_DEFAULT", json.dumps({
            "conn_type": "aws", "login": "testing", "password": "testing",
            "extra": {"region_name": "us-east-1", "endpoint_url": p.endpoint}}))
        aws.clear_client_cache()
        yield p
    aws.clear_client_cache()


def _plain(proxy: FaultProxy, service: str):
    """A client with botocore's defaults (what every client used before the policy)."""
    return boto3.client(service, endpoint_url=proxy.endpoint, region_name="us-east-1",
                        aws_access_key_id="testing", aws_secret_access_key="testing")


def _code(exc: pytest.ExceptionInfo) -> str:
    return exc.value.response["Error"]["Code"]


def _ce_args():
    end = datetime.now(UTC).date()
    return {"TimePeriod": {"Start": str(end - timedelta(days=2)), "End": str(end)}, "Granularity": "DAILY",
            "Metrics": ["UnblendedCost"]}


def test_reproduction_legacy_mode_does_not_retry_cost_explorer_throttling(proxy):
    proxy.add(Fault("ce", "LimitExceededException", times=1))
    with pytest.raises(ClientError) as exc:
        _plain(proxy, "ce").get_cost_and_usage(**_ce_args())
    assert _code(exc) == "LimitExceededException"
    assert proxy.calls("ce") == 1  # not retried at all


def test_reproduction_legacy_mode_gives_up_after_five_attempts(proxy):
    proxy.add(Fault("ec2", "RequestLimitExceeded", times=5))
    with pytest.raises(ClientError) as exc:
        _plain(proxy, "ec2").describe_instances()
    assert _code(exc) == "RequestLimitExceeded"


@pytest.mark.parametrize(("service", "signing", "code", "times", "call"), [
    ("ce", "ce", "LimitExceededException", 3, lambda c: c.get_cost_and_usage(**_ce_args())),
    ("ec2", "ec2", "RequestLimitExceeded", 5, lambda c: c.describe_instances()),
    ("cloudwatch", "monitoring", "Throttling", 3, lambda c: c.get_metric_data(
        MetricDataQueries=[{"Id": "m", "MetricStat": {"Metric": {"Namespace": "AWS/EC2", "MetricName": "CPUUtilization"},
                                                      "Period": 300, "Stat": "Average"}}],
        StartTime=datetime.now(UTC) - timedelta(hours=1), EndTime=datetime.now(UTC))),
    ("ssm", "ssm", "ThrottlingException", 3, lambda c: c.describe_parameters()),
    ("ssm", "ssm", "TooManyUpdates", 2, lambda c: c.put_parameter(
        Name=f"/aiops/test/{uuid.uuid4().hex[:8]}", Value="x", Type="String")),
    ("sqs", "sqs", "RequestThrottled", 3, lambda c: c.list_queues()),
    ("iam", "iam", "Throttling", 3, lambda c: c.list_users()),
    ("securityhub", "securityhub", "TooManyRequestsException", 3, lambda c: c.get_findings(MaxResults=1)),
])
def test_every_service_family_rides_out_throttling(proxy, service, signing, code, times, call):
    fault = proxy.add(Fault(signing, code, times=times))
    call(aws.client(service))
    assert fault.hits == times
    assert proxy.calls(signing) == times + 1


def test_policy_is_standard_mode_with_more_attempts(proxy):
    cfg = aws.client("ec2").meta.config
    assert cfg.retries["mode"] == "standard"
    # botocore counts retries in max_attempts; the total includes the first call
    assert cfg.retries["total_max_attempts"] == aws.DEFAULT_RETRIES["max_attempts"] + 1 > 5


def test_the_connection_overrides_the_policy(proxy, monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_AWS_DEFAULT", json.dumps({
        "conn_type": "aws", "login": "testing", "password": "testing",
        "extra": {"region_name": "us-east-1", "endpoint_url": proxy.endpoint,
                  "config_kwargs": {"retries": {"max_attempts": 2}, "connect_timeout": 7}}}))
    aws.clear_client_cache()
    client = aws.client("ssm")
    assert client.meta.config.retries == {"mode": "standard", "total_max_attempts": 3}  # merged, mode kept
    assert client.meta.config.connect_timeout == 7
    proxy.add(Fault("ssm", "ThrottlingException", times=3))
    with pytest.raises(ClientError) as exc:
        client.describe_parameters()
    assert _code(exc) == "ThrottlingException"
    assert proxy.calls("ssm") == 3


def test_operator_hooks_get_the_policy_under_the_connection(proxy):
    from aiops.airflow.aws_retry import SsmRunCommand
    from aiops.airflow.ssm_automation import SsmAutomationOperator

    op = SsmAutomationOperator(task_id="t", document_name="d", botocore_config={"read_timeout": 9})
    cfg = op.hook.conn.meta.config
    assert cfg.retries == {"mode": "standard", "total_max_attempts": aws.DEFAULT_RETRIES["max_attempts"] + 1}
    assert cfg.read_timeout == 9
    scan = SsmRunCommand(task_id="scan", document_name="AWS-RunPatchBaseline", run_command_kwargs={})
    assert scan.hook.conn.meta.config.retries["mode"] == "standard"
    proxy.add(Fault("ssm", "ThrottlingException", times=3))
    op.hook.conn.describe_parameters()


NOOP_DOC = """
schemaVersion: '0.3'
description: describe the account's instances
mainSteps:
  - name: Describe
    action: aws:executeAwsApi
    inputs:
      Service: ec2
      Api: DescribeInstances
"""


def test_deferrable_ssm_trigger_rides_out_throttling(proxy, sandbox, monkeypatch):
    from aiops.airflow.ssm_automation import SsmAutomationTrigger

    # the provider's waiter loop re-polls on throttle codes itself; switch that off so only the
    # trigger's async client (the platform policy) can ride the throttles out
    monkeypatch.setattr("airflow.providers.amazon.aws.utils.waiter_with_logging.RETRIABLE_ERROR_CODES", set())
    ssm = boto3.client("ssm", endpoint_url=sandbox.endpoint, region_name="us-east-1",
                       aws_access_key_id="testing", aws_secret_access_key="testing")
    name = f"aiops-retry-{uuid.uuid4().hex[:8]}"
    ssm.create_document(Content=NOOP_DOC, Name=name, DocumentType="Automation", DocumentFormat="YAML")
    execution_id = ssm.start_automation_execution(DocumentName=name)["AutomationExecutionId"]
    # 5 throttles: more than botocore's default (legacy, 5 attempts) rides out (see the reproduction above)
    fault = proxy.add(Fault("ssm", "ThrottlingException", times=5, operation="GetAutomationExecution"))
    trigger = SsmAutomationTrigger(execution_id=execution_id, waiter_delay=0, waiter_max_attempts=50)
    revived = SsmAutomationTrigger(**trigger.serialize()[1])

    async def first_event():
        async for event in revived.run():
            return event.payload

    payload = asyncio.run(first_event())
    assert payload["status"] == "Success", payload
    assert fault.hits == 5
