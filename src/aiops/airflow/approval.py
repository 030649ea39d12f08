"""Human-in-the-loop approval of a remediation plan, in the Airflow UI.

``RunbookApprovalOperator`` is Airflow's ``ApprovalOperator`` with three things added at run time,
because they depend on the request being approved, not on the DAG:

* only the runbook's approvers may answer (``assigned_users`` from the plan; in a second round
  the first approver is excluded, so two approvals are two people);
* the approval page shows the dry-run plan (subject and Markdown body from the plan);
* the answer — or the timeout, which defaults to Reject — is written to the audit trail.

A round the plan does not need (a pre-approved runbook, or the second round of a one-approval
policy) completes at once without asking anyone, and says so in its log and return value.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

from airflow.providers.standard.operators.hitl import ApprovalOperator

from aiops.core.settings import get_settings

if TYPE_CHECKING:
    from airflow.sdk import Context


class RunbookApprovalOperator(ApprovalOperator):
    def __init__(self, *, round_no: int, plan_task_id: str = "plan", **kwargs: Any) -> None:
        kwargs.setdefault("subject", "Approve remediation")
        kwargs.setdefault("defaults", [ApprovalOperator.REJECT])  # silence is not consent
        kwargs.setdefault("response_timeout",
                          timedelta(minutes=get_settings().remediation_approval_timeout_minutes))
        super().__init__(ignore_downstream_trigger_rules=False, **kwargs)
        self.round_no = round_no
        self.plan_task_id = plan_task_id

    def _plan(self, context: Context) -> dict[str, Any]:
        return context["ti"].xcom_pull(task_ids=self.plan_task_id)

    def execute(self, context: Context) -> Any:
        from aiops.remediation.pipeline import approval_rounds

        plan = self._plan(context)
        if approval_rounds(plan) < self.round_no:
            self.log.info("Approval round %d not required by policy %s", self.round_no, plan["approval"])
            return {"chosen_options": [self.APPROVE], "params_input": {}, "responded_by_user": None,
                    "auto": f"round {self.round_no} not required ({plan['approval']})"}
        approvers = list(plan["approvers"])
        if self.round_no > 1:
            first = context["ti"].xcom_pull(task_ids=f"approve_{self.round_no - 1}") or {}
            who = (first.get("responded_by_user") or {}).get("id")
            approvers = [u for u in approvers if u != who]
        if not approvers:
            raise RuntimeError(f"runbook {plan['runbook']} needs approval round {self.round_no} but no other "
                               "approver is configured; add approvers to its metadata")
        self.assigned_users = [{"id": u, "name": u} for u in approvers]
        n = plan["blast_radius"]["targets"]
        self.subject = (f"[{plan['risk']} risk] {plan['title']} on {n} target(s)"
                        + (f" — approval {self.round_no} of {plan['approval_rounds']}" if plan["approval_rounds"] > 1
                           else ""))
        self.body = plan["markdown"]
        self.log.info("Waiting for %s to approve %s", ", ".join(approvers), plan["request_id"])
        return super().execute(context)

    def execute_complete(self, context: Context, event: dict[str, Any]) -> Any:
        from aiops.remediation.pipeline import record_approval

        plan = self._plan(context)
        chosen = (event.get("chosen_options") or [None])[0]
        user = (event.get("responded_by_user") or {}).get("id")
        decision = "timeout" if user is None and "error" not in event else str(chosen)
        if "error" in event:
            decision = f"error:{event.get('error_type')}"
        record_approval(plan, round_no=self.round_no, user=user, decision=decision, run_id=context["ti"].run_id)
        return super().execute_complete(context, event)
