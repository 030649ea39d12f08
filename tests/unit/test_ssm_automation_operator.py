"""SsmAutomationOperator / SsmAutomationTrigger against stubbed SSM responses of the real API's shape."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from types import SimpleNamespace

import boto3
import pytest
from botocore.stub import Stubber

from aiops.airflow import ssm_automation as mod

T = datetime(2026, 11, 20, 12, tzinfo=UTC)
EXEC_ID = "4d1c3f0a-1111-2222-3333-444455556666"


def execution(status, steps=(), outputs=None, failure=None):
    body = {"AutomationExecutionId": EXEC_ID, "DocumentName": "MatCarv-stop-idle-instance", "DocumentVersion": "1",
            "ExecutionStartTime": T, "AutomationExecutionStatus": status, "StepExecutions": list(steps),
            "Parameters": {"InstanceId": ["i-0abc1234"]}, "Outputs": outputs or {}, "Mode": "Auto"}
    if failure:
        body["FailureMessage"] = failure
    return {"AutomationExecution": body}


def step(name, action, status, message=None):
    s = {"StepName": name, "Action": action, "StepStatus": status, "ExecutionStartTime": T, "Inputs": {},
         "Outputs": {}}
    if message:
        s["FailureMessage"] = message
        s["FailureDetails"] = {"FailureStage": "Execution", "FailureType": "Verification"}
    return s


class FakeTI:
    def __init__(self, run_id="manual__2026-11-20", try_number=1):
        self.dag_id, self.run_id, self.task_id, self.map_index = "remediate", run_id, "execute", -1
        self.try_number = try_number
        self.pushed: dict = {}

    def xcom_push(self, key, value):
        self.pushed[key] = value


@pytest.fixture
def ssm(monkeypatch):
    client = boto3.client("ssm", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    monkeypatch.setattr(mod.SsmAutomationOperator, "hook", property(lambda self: SimpleNamespace(conn=client)))
    with Stubber(client) as stub:
        yield stub


def operator(**kw):
    return mod.SsmAutomationOperator(task_id="execute", document_name="MatCarv-stop-idle-instance",
                                     parameters={"InstanceId": "i-0abc1234", "Force": False}, waiter_delay=0, **kw)


def expect_start(ssm, ti):
    ssm.add_response("start_automation_execution", {"AutomationExecutionId": EXEC_ID}, {
        "DocumentName": "MatCarv-stop-idle-instance",
        "Parameters": {"InstanceId": ["i-0abc1234"], "Force": ["False"]},
        "ClientToken": mod.client_token(ti.dag_id, ti.run_id, ti.task_id, -1)})


def test_success_returns_outputs_and_pushes_the_execution_id(ssm):
    ti = FakeTI()
    expect_start(ssm, ti)
    ssm.add_response("get_automation_execution", execution("InProgress"), {"AutomationExecutionId": EXEC_ID})
    ssm.add_response("get_automation_execution", execution(
        "Success", [step("stop", "aws:changeInstanceState", "Success")], {"stop.CurrentState": ["stopped"]}),
        {"AutomationExecutionId": EXEC_ID})
    result = operator().execute({"ti": ti})
    assert result["status"] == "Success"
    assert result["outputs"] == {"stop.CurrentState": ["stopped"]}
    assert ti.pushed["automation_execution_id"] == EXEC_ID


def test_failure_names_the_failing_step_and_its_message(ssm):
    ti = FakeTI()
    expect_start(ssm, ti)
    ssm.add_response("get_automation_execution", execution("Failed", [
        step("assertRunning", "aws:assertAwsResourceProperty", "Success"),
        step("stop", "aws:changeInstanceState", "Failed", "Instance i-0abc1234 is protected from stopping")],
        failure="Step fails when it is Verification. Instance i-0abc1234 is protected"),
        {"AutomationExecutionId": EXEC_ID})
    with pytest.raises(RuntimeError, match=r"step 'stop' \(aws:changeInstanceState\) failed: Instance i-0abc1234"):
        operator().execute({"ti": ti})


def test_a_retry_reuses_the_client_token_of_the_first_try(ssm):
    first, retry = FakeTI(try_number=1), FakeTI(try_number=2)
    for ti in (first, retry):  # the stub asserts the exact ClientToken both times
        expect_start(ssm, ti)
        ssm.add_response("get_automation_execution", execution("Success"), {"AutomationExecutionId": EXEC_ID})
        operator().execute({"ti": ti})
    assert mod.client_token("remediate", "manual__2026-11-20", "execute") == \
        mod.client_token("remediate", "manual__2026-11-20", "execute")
    assert mod.client_token("remediate", "manual__other", "execute") != \
        mod.client_token("remediate", "manual__2026-11-20", "execute")


def test_client_token_is_a_uuid_as_ssm_requires():
    import re

    token = mod.client_token("remediate", "run", "execute", 3)
    assert re.fullmatch(r"[a-f0-9]{8}-[a-f0-9]{4}-[a-f0-9]{4}-[a-f0-9]{4}-[a-f0-9]{12}", token)


def test_deferral_round_trip(ssm, monkeypatch):
    from airflow.exceptions import TaskDeferred

    ti = FakeTI()
    expect_start(ssm, ti)
    with pytest.raises(TaskDeferred) as deferred:
        operator(deferrable=True).execute({"ti": ti})
    trigger = deferred.value.trigger
    assert deferred.value.method_name == "execute_complete"
    classpath, kwargs = trigger.serialize()
    assert classpath == "aiops.airflow.ssm_automation.SsmAutomationTrigger"
    revived = mod.SsmAutomationTrigger(**kwargs)

    responses = [execution("InProgress"), execution("Success", outputs={"stop.CurrentState": ["stopped"]})]

    class FakeAsyncClient:
        meta = SimpleNamespace(events=SimpleNamespace(register=lambda *a, **k: None))  # retry hooks go here

        async def get_automation_execution(self, AutomationExecutionId):
            assert AutomationExecutionId == EXEC_ID
            return responses.pop(0)

        async def __aenter__(self):
            return self

        async def __aexit__(self, *exc):
            return False

    async def fake_conn():
        return FakeAsyncClient()

    monkeypatch.setattr(mod.SsmHook, "get_async_conn", lambda self: fake_conn())
    revived.waiter_delay = 0

    async def first_event():
        async for event in revived.run():
            return event.payload

    payload = asyncio.run(first_event())
    assert payload["status"] == "Success"
    result = operator(deferrable=True).execute_complete({"ti": ti}, payload)
    assert result["outputs"] == {"stop.CurrentState": ["stopped"]}
