"""Run an SSM Automation document and wait for it — deferrably — like the Amazon provider would.

The Amazon provider has run-command operators but nothing for SSM Automation, so this module adds
``SsmAutomationOperator`` (``AwsBaseOperator[SsmHook]``) and ``SsmAutomationTrigger`` in the
provider's shape: keyword-only arguments, ``template_fields``, ``deferrable``,
``wait_for_completion``, ``execute_complete``. Both the worker and the triggerer wait through one
custom botocore waiter (``waiters/ssm.json``, ``automation_execution_finished``: every terminal
status ends the wait), loaded by :class:`SsmAutomationHook` the provider's way; the trigger is an
``AwsBaseWaiterTrigger``.

Idempotent across retries: the ``ClientToken`` is a UUID derived from (dag_id, run_id, task_id,
map_index), so a retry after a worker crash finds the execution the first try started instead of
starting a second one. On failure the error names the failing step and its message.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Sequence
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow.providers.amazon.aws.exceptions import WaiterMaxAttemptsError, WaiterNoCredentialsError
from airflow.providers.amazon.aws.hooks.ssm import SsmHook
from airflow.providers.amazon.aws.operators.base_aws import AwsBaseOperator
from airflow.providers.amazon.aws.triggers.base import AwsBaseWaiterTrigger
from airflow.providers.amazon.aws.utils import validate_execute_complete_event
from airflow.providers.amazon.aws.utils.mixins import aws_template_fields
from airflow.providers.amazon.aws.utils.waiter_with_logging import async_wait, wait
from airflow.triggers.base import TriggerEvent

from aiops.account.permissions import permissions
from aiops.airflow.aws_retry import AwsRetryPolicy
from aiops.core import aws
from aiops.remediation.approvals import ApprovalNotVerified
from aiops.remediation.guards import GuardViolation
from aiops.remediation.ssm import summarise

PERMISSIONS = permissions(
    "starting and following SSM automations of the MatCarv-* runbooks",
    executor=(
        "ssm:StartAutomationExecution @ arn:${AWS::Partition}:ssm:${AWS::Region}:${AWS::AccountId}:automation-definition/MatCarv-*",
        "ssm:GetAutomationExecution",
        "ssm:DescribeAutomationExecutions",
        "ssm:DescribeAutomationStepExecutions",
        "ssm:StopAutomationExecution",
        "iam:PassRole @ arn:${AWS::Partition}:iam::${AWS::AccountId}:role/MatCarvAIOps-*",
    ),
)

if TYPE_CHECKING:
    from airflow.sdk import Context

# the statuses the waiter model (waiters/ssm.json) accepts as the end of the wait
TERMINAL = {"Success", "Failed", "TimedOut", "Cancelled", "CompletedWithSuccess", "CompletedWithFailure",
            "Rejected", "Exited"}
SUCCESS = {"Success", "CompletedWithSuccess"}
TOKEN_NAMESPACE = uuid.UUID("5b0c5a3e-8f1d-4c4e-9a55-6d1f3c2b7e10")
WAITER = "automation_execution_finished"
WAITER_STATUS = ["AutomationExecution.AutomationExecutionStatus"]


def client_token(dag_id: str, run_id: str, task_id: str, map_index: int = -1) -> str:
    """SSM's ClientToken must be a UUID: derive it from the task instance, not the try."""
    return str(uuid.uuid5(TOKEN_NAMESPACE, f"{dag_id}/{run_id}/{task_id}/{map_index}"))


class SsmAutomationHook(SsmHook):
    """``SsmHook`` that also knows this package's custom waiters (``waiters/ssm.json``)."""

    @cached_property
    def waiter_path(self) -> os.PathLike[str] | None:
        return Path(__file__).with_name("waiters") / "ssm.json"


def timed_out(execution_id: str, message: str, **extra: Any) -> dict[str, Any]:
    """The event of a wait that ran out of checks (``execute_complete`` fails the task on it)."""
    return {"execution_id": execution_id, "status": "WaiterTimedOut", "message": message, "outputs": {},
            "steps": [], **extra}


class SsmAutomationTrigger(AwsBaseWaiterTrigger):
    """Waits in the triggerer for ``automation_execution_finished``, then yields the summarised
    execution (one more ``GetAutomationExecution``); ``WaiterTimedOut`` when the checks run out."""

    aws_hook_class = SsmAutomationHook

    def __init__(self, *, execution_id: str, waiter_delay: int = 10, waiter_max_attempts: int = 360,
                 aws_conn_id: str | None = "aws_default", region_name: str | None = None,
                 verify: bool | str | None = None, botocore_config: dict | None = None) -> None:
        super().__init__(
            serialized_fields={"execution_id": execution_id}, waiter_name=WAITER,
            waiter_args={"AutomationExecutionId": execution_id},
            failure_message=f"SSM Automation {execution_id} failed", status_message=f"Automation {execution_id} is",
            status_queries=WAITER_STATUS, return_key="execution_id", return_value=execution_id,
            waiter_delay=waiter_delay, waiter_max_attempts=waiter_max_attempts, aws_conn_id=aws_conn_id,
            region_name=region_name, verify=verify, botocore_config=botocore_config)
        self.execution_id = execution_id

    @property
    def waiter_max_attempts(self) -> int:
        return self.attempts

    @waiter_max_attempts.setter
    def waiter_max_attempts(self, value: int) -> None:
        self.attempts = value

    async def run(self) -> AsyncIterator[TriggerEvent]:
        from asgiref.sync import sync_to_async

        # the platform retry policy (standard mode, more attempts, throttle codes) under the connection's
        # config_kwargs and the operator's botocore_config, resolved here in the triggerer
        config = await sync_to_async(aws.botocore_config)(self.aws_conn_id, self.botocore_config)
        hook = self.aws_hook_class(**{**self._hook_parameters, "config": config})
        async with await hook.get_async_conn() as client:
            aws.install_retry_hooks(client, config)
            waiter = hook.get_waiter(self.waiter_name, deferrable=True, client=client)
            try:
                await async_wait(waiter, self.waiter_delay, self.attempts, self.waiter_args, self.failure_message,
                                 self.status_message, self.status_queries)
            except WaiterNoCredentialsError:
                raise
            except WaiterMaxAttemptsError:
                yield TriggerEvent(timed_out(self.execution_id, f"still running after {self.attempts} checks",
                                             failed_step=None))
                return
            resp = await client.get_automation_execution(AutomationExecutionId=self.execution_id)
        yield TriggerEvent(summarise(resp["AutomationExecution"]))


class SsmAutomationOperator(AwsRetryPolicy, AwsBaseOperator[SsmAutomationHook]):
    """Start an SSM Automation execution of ``document_name`` and wait for it.

    :param document_name: the Automation document (e.g. ``MatCarv-stop-idle-instance``).
    :param parameters: document parameters; scalar values are wrapped in lists as the API wants.
    :param document_version: a version number, ``$DEFAULT`` or ``$LATEST`` (default: the default).
    :param client_token: idempotency token (UUID); default derived from the task instance.
    :param wait_for_completion: wait for a terminal status (default True).
    :param deferrable: wait in the triggerer instead of a worker slot.
    :param waiter_delay: seconds between status checks; ``waiter_max_attempts`` bounds them.

    Pushes ``automation_execution_id`` to XCom as soon as the execution starts; returns the
    execution summary (id, status, outputs, steps) on success; raises naming the failing step.
    """

    aws_hook_class = SsmAutomationHook
    template_fields: Sequence[str] = aws_template_fields("document_name", "parameters", "document_version",
                                                         "client_token")
    template_fields_renderers = {"parameters": "json"}
    ui_color = "#f0e4ff"

    def __init__(self, *, document_name: str, parameters: dict[str, Any] | None = None,
                 document_version: str | None = None, client_token: str | None = None,
                 tags: dict[str, str] | None = None, wait_for_completion: bool = True,
                 deferrable: bool = False, waiter_delay: int = 10, waiter_max_attempts: int = 360,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.document_name = document_name
        self.parameters = parameters or {}
        self.document_version = document_version
        self.client_token = client_token
        self.tags = tags or {}
        self.wait_for_completion = wait_for_completion
        self.deferrable = deferrable
        self.waiter_delay = waiter_delay
        self.waiter_max_attempts = waiter_max_attempts

    def _token(self, context: Context) -> str:
        if self.client_token:
            return self.client_token
        ti = context["ti"]
        return client_token(ti.dag_id, ti.run_id, ti.task_id, getattr(ti, "map_index", -1) or -1)

    def execute(self, context: Context) -> dict[str, Any]:
        params = {k: [str(x) for x in v] if isinstance(v, list | tuple) else [str(v)]
                  for k, v in self.parameters.items() if v is not None}
        kwargs: dict[str, Any] = {"DocumentName": self.document_name, "Parameters": params,
                                  "ClientToken": self._token(context)}
        if self.document_version:
            kwargs["DocumentVersion"] = self.document_version
        if self.tags:
            kwargs["Tags"] = [{"Key": k, "Value": v} for k, v in self.tags.items()]
        execution_id = self.hook.conn.start_automation_execution(**kwargs)["AutomationExecutionId"]
        self.log.info("Started SSM Automation %s of %s (ClientToken %s)", execution_id, self.document_name,
                      kwargs["ClientToken"])
        context["ti"].xcom_push(key="automation_execution_id", value=execution_id)
        if not self.wait_for_completion:
            return {"execution_id": execution_id, "status": "InProgress"}
        if self.deferrable:
            self.defer(trigger=SsmAutomationTrigger(
                execution_id=execution_id, waiter_delay=self.waiter_delay,
                waiter_max_attempts=self.waiter_max_attempts, aws_conn_id=self.aws_conn_id,
                region_name=self.region_name, verify=self.verify, botocore_config=self.botocore_config),
                method_name="execute_complete")
        waiter = self.hook.get_waiter(WAITER, client=self.hook.conn)
        try:
            wait(waiter, self.waiter_delay, self.waiter_max_attempts, {"AutomationExecutionId": execution_id},
                 f"SSM Automation {execution_id} failed", f"Automation {execution_id} is", WAITER_STATUS)
        except WaiterNoCredentialsError:
            raise
        except WaiterMaxAttemptsError:
            return self.execute_complete(context, timed_out(execution_id, "still running"))
        execution = self.hook.conn.get_automation_execution(AutomationExecutionId=execution_id)["AutomationExecution"]
        return self.execute_complete(context, summarise(execution))

    def execute_complete(self, context: Context, event: dict[str, Any] | None = None) -> dict[str, Any]:
        event = validate_execute_complete_event(event)
        if event.get("status") not in SUCCESS:
            raise RuntimeError(f"SSM Automation {event.get('execution_id')} of {self.document_name} ended "
                               f"{event.get('status')}: {event.get('message') or 'no failure message'}")
        self.log.info("SSM Automation %s succeeded; outputs %s", event["execution_id"], event.get("outputs"))
        return event


class ApprovedRunbookAutomationOperator(SsmAutomationOperator):
    """``SsmAutomationOperator`` for the remediate DAG: the call is never taken from XCom or
    templates. Right before starting SSM it rebuilds the call from the plan stored when it was shown
    for approval, re-verifies the recorded approvals and every guard against live AWS, pins the
    approved document version and sets ``AutomationAssumeRole`` from the runbook's metadata
    (:func:`aiops.remediation.pipeline.authorise_execution`). Any refusal fails the task without
    retries, with the reason in the log and the audit trail; nothing reaches SSM."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("document_name", "(the approved plan's document)")
        super().__init__(**kwargs)

    def execute(self, context: Context) -> dict[str, Any]:
        from airflow.exceptions import AirflowFailException

        from aiops.remediation.pipeline import authorise_execution, request_id  # lazy: DAG parse path

        ti = context["ti"]
        try:
            call = authorise_execution(request_id(ti.dag_id, ti.run_id), run_id=ti.run_id)
        except (ApprovalNotVerified, GuardViolation) as exc:
            raise AirflowFailException(f"refused at execution: {exc}") from exc
        self.document_name = call["document_name"]
        self.document_version = call["document_version"]
        self.parameters = call["parameters"]
        self.tags = call["tags"]
        self.log.info("Executing plan %s approved by %s: %s version %s", call["plan_hash"][:12],
                      ", ".join(call["approved_by"]) or "policy (pre-approved)", self.document_name,
                      self.document_version)
        return super().execute(context)
