"""Human-in-the-loop approval of a remediation plan, in the Airflow UI.

``RunbookApprovalOperator`` is Airflow's ``ApprovalOperator`` with these added at run time,
because they depend on the request being approved, not on the DAG:

* the plan comes from the state store (stored with its hash by the plan task), never from XCom;
* only the plan's approvers may answer (``assigned_users``; the requester is never one of them,
  and a later round excludes everyone who answered an earlier one, read from the state store);
* the page names the resource(s), the incident, the request's time, the plan hash and what happens
  on timeout (Reject: nothing changes), with the plan's Markdown (AWS text escaped);
* when the round is asked, who may answer it and the plan hash are recorded; the answer Airflow
  resumes the task with (its stored HITL response) is mirrored into the state store. The execute
  task re-verifies those records, so a round marked success by hand is no approval.

A round the plan does not need (a pre-approved runbook, or the second round of a one-approval
policy) completes at once without asking anyone, and says so in its log and return value. A
request superseded by a newer one for the same runbook and targets is not asked (skipped); one
superseded *while* its prompt waits is closed by its trigger (:class:`SupersedableHITLTrigger`
answers the prompt Reject, as a timeout does), so it leaves Required Actions, and the round is
recorded ``superseded`` and skipped.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from airflow.providers.standard.operators.hitl import ApprovalOperator
from airflow.providers.standard.triggers.hitl import HITLTrigger
from airflow.sdk.timezone import utcnow
from airflow.triggers.base import TriggerEvent
from asgiref.sync import sync_to_async

from aiops.core.settings import get_settings
from aiops.core.state import StateStore

if TYPE_CHECKING:
    from airflow.sdk import Context

log = logging.getLogger(__name__)


def superseded_by(request_id: str) -> str | None:
    """The request that superseded ``request_id`` (state store), or ``None`` while it stands."""
    row = StateStore().get_request(request_id) or {}
    if row.get("status") != "superseded":
        return None
    return str((row.get("outcome") or {}).get("superseded_by") or "a newer request")


class SupersedableHITLTrigger(HITLTrigger):
    """Airflow's HITL trigger that also ends when its request is superseded in the state store.

    Between polls for an answer it looks the request up; once a newer request for the same runbook
    and targets has superseded it, it answers its own prompt Reject (what a timeout does, through the
    same task-API call), so the prompt no longer waits in Required Actions, and resumes the task
    with ``superseded_by`` in the event."""

    def __init__(self, *, request_id: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.request_id = request_id

    def serialize(self) -> tuple[str, dict[str, Any]]:
        _path, kwargs = super().serialize()
        return f"{type(self).__module__}.{type(self).__qualname__}", {**kwargs, "request_id": self.request_id}

    async def _handle_superseded(self) -> TriggerEvent | None:
        from airflow.sdk.execution_time.hitl import update_hitl_detail_response

        try:
            newer = await sync_to_async(superseded_by)(self.request_id)
        except Exception:  # the state store unreachable: keep waiting for the answer or the timeout
            log.exception("could not read request %s from the state store; still waiting", self.request_id)
            return None
        if newer is None:
            return None
        resp = await sync_to_async(update_hitl_detail_response)(
            ti_id=self.ti_id, chosen_options=[ApprovalOperator.REJECT], params_input=self.params.dump())
        log.info("[HITL] request %s superseded by %s: prompt closed (Reject)", self.request_id, newer)
        return TriggerEvent({"chosen_options": [ApprovalOperator.REJECT], "params_input": self.params.dump(),
                             "responded_by_user": None, "responded_at": resp.responded_at, "timedout": False,
                             "superseded_by": newer})

    async def run(self) -> AsyncIterator[TriggerEvent]:
        while True:
            if self.timeout_datetime and self.timeout_datetime < utcnow():
                yield await self._handle_timeout()
                return
            event = await self._handle_response() or await self._handle_superseded()
            if event:
                yield event
                return
            await asyncio.sleep(self.poke_interval)


class RunbookApprovalOperator(ApprovalOperator):
    def __init__(self, *, round_no: int, plan_task_id: str = "plan", **kwargs: Any) -> None:
        kwargs.setdefault("subject", "Approve remediation")
        kwargs.setdefault("defaults", [ApprovalOperator.REJECT])  # silence is not consent
        kwargs.setdefault("response_timeout",
                          timedelta(minutes=get_settings().remediation_approval_timeout_minutes))
        super().__init__(ignore_downstream_trigger_rules=False, **kwargs)
        self.round_no = round_no
        self.plan_task_id = plan_task_id
        self._context_ti: Any = None  # the running task instance (execute -> defer)

    def _stored(self, context: Context) -> tuple[dict[str, Any], dict[str, Any]]:
        from aiops.remediation.pipeline import request_id, stored_plan  # lazy: DAG parse path

        ti = context["ti"]
        return stored_plan(request_id(ti.dag_id, ti.run_id))

    def execute(self, context: Context) -> Any:
        from airflow.exceptions import AirflowSkipException

        from aiops.remediation.pipeline import (  # lazy: DAG parse path
            approval_rounds,
            approval_subject,
            record_asked,
        )

        self._context_ti = context["ti"]
        plan, row = self._stored(context)
        if row["status"] == "superseded":
            raise AirflowSkipException(f"request superseded by {(row.get('outcome') or {}).get('superseded_by')}")
        if approval_rounds(plan) < self.round_no:
            self.log.info("Approval round %d not required by policy %s", self.round_no, plan["approval"])
            return {"chosen_options": [self.APPROVE], "params_input": {}, "responded_by_user": None,
                    "auto": f"round {self.round_no} not required ({plan['approval']})"}
        earlier = {a.get("user") for a in row.get("approvals") or []
                   if a.get("round", 0) < self.round_no and a.get("user")}
        approvers = [u for u in plan["approvers"] if u not in earlier and u != plan["requested_by"]]
        if not approvers:
            raise RuntimeError(f"runbook {plan['runbook']} needs approval round {self.round_no} but no other "
                               "approver is configured; add approvers to its metadata")
        self.assigned_users = [{"id": u, "name": u} for u in approvers]
        self.subject = approval_subject(plan, self.round_no)
        deadline = ""
        if self.response_timeout:
            from datetime import UTC, datetime

            deadline = (datetime.now(UTC) + self.response_timeout).strftime("%Y-%m-%d %H:%M UTC")
        self.body = (f"**Approval {self.round_no} of {plan['approval_rounds']}** for request "
                     f"`{plan['request_id']}`, plan hash `{plan['plan_hash'][:12]}`. "
                     + (f"Unanswered at {deadline} it is rejected and nothing changes.\n\n" if deadline else "\n\n")
                     + plan["markdown"])
        # the first thing the waiting task's log says: this run waits for people, whom, until when
        self.log.info("WAITING FOR APPROVAL: %s — %s may answer in Required Actions (or `aiops approvals`)%s; "
                      "request %s, plan %s", self.subject, ", ".join(approvers),
                      f"; unanswered at {deadline} it is rejected and nothing changes" if deadline else "",
                      plan["request_id"], plan["plan_hash"][:12])
        record_asked(plan, round_no=self.round_no, assigned=approvers, run_id=context["ti"].run_id)
        return super().execute(context)

    def defer(self, *, trigger: Any, method_name: str, kwargs: dict[str, Any] | None = None,
              timeout: timedelta | int | float | None = None) -> Any:
        """Wait with :class:`SupersedableHITLTrigger` instead of the plain HITL trigger."""
        if type(trigger) is HITLTrigger:
            from aiops.remediation.pipeline import request_id  # lazy: DAG parse path

            ti = self._context_ti
            _path, trigger_kwargs = trigger.serialize()
            trigger = SupersedableHITLTrigger(request_id=request_id(ti.dag_id, ti.run_id), **trigger_kwargs)
        return super().defer(trigger=trigger, method_name=method_name, kwargs=kwargs, timeout=timeout)

    def execute_complete(self, context: Context, event: dict[str, Any]) -> Any:
        from aiops.remediation.pipeline import record_approval  # lazy: DAG parse path

        plan, _row = self._stored(context)
        if event.get("superseded_by"):
            from airflow.exceptions import AirflowSkipException

            record_approval(plan, round_no=self.round_no, user=None, decision="superseded",
                            run_id=context["ti"].run_id, responded_at=str(event.get("responded_at") or "") or None)
            raise AirflowSkipException(f"request superseded by {event['superseded_by']} while waiting; "
                                       "its prompt was closed")
        chosen = (event.get("chosen_options") or [None])[0]
        user = (event.get("responded_by_user") or {}).get("id")
        decision = "timeout" if user is None and "error" not in event else str(chosen)
        if "error" in event:
            decision = f"error:{event.get('error_type')}"
        responded_at = event.get("responded_at")
        record_approval(plan, round_no=self.round_no, user=user, decision=decision, run_id=context["ti"].run_id,
                        responded_at=str(responded_at) if responded_at else None)
        return super().execute_complete(context, event)
