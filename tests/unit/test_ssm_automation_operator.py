"""SsmAutomationOperator / SsmAutomationTrigger against stubbed SSM responses of the real API's shape."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import boto3
import pytest
from botocore.exceptions import WaiterError
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


def ssm_client():
    return boto3.client("ssm", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")


def stubbed_hook(client):
    """The operator's real hook class (so its custom waiter), talking to ``client``."""
    hook = mod.SsmAutomationHook(aws_conn_id=None, region_name="us-east-1")
    hook.__dict__["conn"] = client  # the cached_property
    return hook


@pytest.fixture
def ssm(monkeypatch):
    client = ssm_client()
    hook = stubbed_hook(client)
    monkeypatch.setattr(mod.SsmAutomationOperator, "hook", property(lambda self: hook))
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
    ssm.add_response("get_automation_execution", execution(  # the summary is read once the waiter is done
        "Success", [step("stop", "aws:changeInstanceState", "Success")], {"stop.CurrentState": ["stopped"]}),
        {"AutomationExecutionId": EXEC_ID})
    result = operator().execute({"ti": ti})
    assert result["status"] == "Success"
    assert result["outputs"] == {"stop.CurrentState": ["stopped"]}
    assert ti.pushed["automation_execution_id"] == EXEC_ID
    ssm.assert_no_pending_responses()


def test_failure_names_the_failing_step_and_its_message(ssm):
    ti = FakeTI()
    expect_start(ssm, ti)
    failed = execution("Failed", [
        step("assertRunning", "aws:assertAwsResourceProperty", "Success"),
        step("stop", "aws:changeInstanceState", "Failed", "Instance i-0abc1234 is protected from stopping")],
        failure="Step fails when it is Verification. Instance i-0abc1234 is protected")
    for _ in range(2):  # the waiter's check, then the read that is summarised
        ssm.add_response("get_automation_execution", failed, {"AutomationExecutionId": EXEC_ID})
    with pytest.raises(RuntimeError, match=r"step 'stop' \(aws:changeInstanceState\) failed: Instance i-0abc1234"):
        operator().execute({"ti": ti})


def test_a_retry_reuses_the_client_token_of_the_first_try(ssm):
    first, retry = FakeTI(try_number=1), FakeTI(try_number=2)
    for ti in (first, retry):  # the stub asserts the exact ClientToken both times
        expect_start(ssm, ti)
        for _ in range(2):
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
    revived.waiter_delay = 0
    responses = [execution("InProgress"), execution("Success", outputs={"stop.CurrentState": ["stopped"]}),
                 execution("Success", outputs={"stop.CurrentState": ["stopped"]})]
    payload = first_event(revived, responses, monkeypatch)
    assert payload["status"] == "Success"
    result = operator(deferrable=True).execute_complete({"ti": ti}, payload)
    assert result["outputs"] == {"stop.CurrentState": ["stopped"]}


def first_event(trigger, responses, monkeypatch):
    """The trigger's first event, its async client (aiobotocore, retry hooks and all) stubbed."""
    from aiobotocore.session import get_session

    async def run():
        async with get_session().create_client("ssm", region_name="us-east-1", aws_access_key_id="x",
                                               aws_secret_access_key="x") as client:
            class Entered:
                async def __aenter__(self):
                    return client

                async def __aexit__(self, *exc):
                    return False

            async def conn(self):
                return Entered()

            monkeypatch.setattr(mod.SsmAutomationHook, "get_async_conn", conn)
            with Stubber(client) as stub:
                for response in responses:
                    stub.add_response("get_automation_execution", response, {"AutomationExecutionId": EXEC_ID})
                async for event in trigger.run():
                    stub.assert_no_pending_responses()
                    return event.payload

    return asyncio.run(run())


def test_deferred_wait_that_runs_out_of_checks_times_out(monkeypatch):
    trigger = mod.SsmAutomationTrigger(execution_id=EXEC_ID, waiter_delay=0, waiter_max_attempts=3)
    payload = first_event(trigger, [execution("InProgress")] * 3, monkeypatch)
    assert payload == {"execution_id": EXEC_ID, "status": "WaiterTimedOut", "message": "still running after 3 checks",
                       "outputs": {}, "steps": [], "failed_step": None}
    with pytest.raises(RuntimeError, match="ended WaiterTimedOut: still running after 3 checks"):
        operator(deferrable=True).execute_complete({"ti": FakeTI()}, payload)


def test_sync_wait_that_runs_out_of_checks_times_out(ssm):
    ti = FakeTI()
    expect_start(ssm, ti)
    for _ in range(3):
        ssm.add_response("get_automation_execution", execution("Waiting"), {"AutomationExecutionId": EXEC_ID})
    with pytest.raises(RuntimeError, match="ended WaiterTimedOut: still running"):
        operator(waiter_max_attempts=3).execute({"ti": ti})
    ssm.assert_no_pending_responses()


def test_trigger_serialisation_keeps_every_parameter():
    trigger = mod.SsmAutomationTrigger(execution_id=EXEC_ID, waiter_delay=5, waiter_max_attempts=7,
                                       aws_conn_id="aws_ops", region_name="eu-west-1", verify=False,
                                       botocore_config={"read_timeout": 9})
    classpath, kwargs = trigger.serialize()
    assert kwargs == {"execution_id": EXEC_ID, "waiter_delay": 5, "waiter_max_attempts": 7, "aws_conn_id": "aws_ops",
                      "region_name": "eu-west-1", "verify": False, "botocore_config": {"read_timeout": 9}}
    revived = mod.SsmAutomationTrigger(**kwargs)
    assert revived.serialize() == (classpath, kwargs)
    assert revived.waiter_max_attempts == 7


def _waiter(client):
    return mod.SsmAutomationHook(aws_conn_id=None, region_name="us-east-1").get_waiter(mod.WAITER, client=client)


def test_waiter_model_ships_in_the_package_and_knows_every_status():
    import json
    from importlib.resources import files

    shipped = files("aiops.airflow").joinpath("waiters/ssm.json")
    hook = mod.SsmAutomationHook(aws_conn_id=None, region_name="us-east-1")
    assert str(hook.waiter_path) == str(shipped)
    assert shipped.is_file()
    assert mod.WAITER in hook._list_custom_waiters()
    acceptors = json.loads(shipped.read_text())["waiters"][mod.WAITER]["acceptors"]
    done = {a["expected"] for a in acceptors if a["state"] == "success"}
    retry = {a["expected"] for a in acceptors if a["state"] == "retry"}
    enum = set(ssm_client().meta.service_model.shape_for("AutomationExecutionStatus").enum)
    assert done == mod.TERMINAL
    assert retry == enum - mod.TERMINAL
    assert {a["state"] for a in acceptors} == {"success", "retry"}  # the operator judges the outcome


@pytest.mark.parametrize("status", sorted(mod.TERMINAL))
def test_waiter_ends_on_every_terminal_status(status):
    client = ssm_client()
    with Stubber(client) as stub:
        stub.add_response("get_automation_execution", execution(status), {"AutomationExecutionId": EXEC_ID})
        _waiter(client).wait(AutomationExecutionId=EXEC_ID, WaiterConfig={"Delay": 0, "MaxAttempts": 1})
        stub.assert_no_pending_responses()


NON_TERMINAL = sorted(set(ssm_client().meta.service_model.shape_for("AutomationExecutionStatus").enum) - mod.TERMINAL)


@pytest.mark.parametrize("status", NON_TERMINAL)
def test_waiter_keeps_checking_on_a_non_terminal_status(status):
    client = ssm_client()
    with Stubber(client) as stub:
        stub.add_response("get_automation_execution", execution(status), {"AutomationExecutionId": EXEC_ID})
        with pytest.raises(WaiterError, match="Max attempts exceeded"):
            _waiter(client).wait(AutomationExecutionId=EXEC_ID, WaiterConfig={"Delay": 0, "MaxAttempts": 1})
        stub.add_response("get_automation_execution", execution(status), {"AutomationExecutionId": EXEC_ID})
        stub.add_response("get_automation_execution", execution("Success"), {"AutomationExecutionId": EXEC_ID})
        _waiter(client).wait(AutomationExecutionId=EXEC_ID, WaiterConfig={"Delay": 0, "MaxAttempts": 2})
        stub.assert_no_pending_responses()
