"""Approval of a prod patch install in the Airflow UI (providers-standard ``ApprovalOperator``).

Asks only when the plan has an enforced install that needs approval (a target tagged ``env=prod``,
or ``approval: required``); otherwise completes at once and says why. Only the policies'
``approvers`` may answer (anyone with the op role when none are listed); silence until
``settings.ops_patch_approval_timeout_minutes`` means Reject. The answer goes to the audit trail.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

from airflow.providers.standard.operators.hitl import ApprovalOperator

from aiops.core.settings import get_settings

if TYPE_CHECKING:
    from airflow.sdk import Context


class PatchInstallApprovalOperator(ApprovalOperator):
    def __init__(self, *, plan_task_id: str = "plan", **kwargs: Any) -> None:
        kwargs.setdefault("subject", "Approve patch install")
        kwargs.setdefault("defaults", [ApprovalOperator.REJECT])
        kwargs.setdefault("response_timeout", timedelta(minutes=get_settings().ops_patch_approval_timeout_minutes))
        super().__init__(ignore_downstream_trigger_rules=False, **kwargs)
        self.plan_task_id = plan_task_id

    def execute(self, context: Context) -> Any:
        plan = context["ti"].xcom_pull(task_ids=self.plan_task_id)
        if not plan or not plan.get("needs_approval") or plan.get("refused"):
            self.log.info("No enforced install needs approval in this run")
            return {"chosen_options": [self.APPROVE], "params_input": {}, "responded_by_user": None,
                    "auto": "no install needing approval"}
        gated = [i for i in plan["install"] if i["requires_approval"] and i["mode"] == "enforce"]
        n = sum(len(b) for i in gated for b in i["batches"])
        if plan.get("approvers"):
            self.assigned_users = [{"id": u, "name": u} for u in plan["approvers"]]
        self.subject = (f"Install patches on {n} prod instance(s) ({', '.join(i['policy'] for i in gated)}) "
                        f"— window until {gated[0]['window']['end'][11:16]}")
        self.body = plan["markdown"]
        self.log.info("Waiting for %s to approve the install", ", ".join(plan.get("approvers") or ["anyone"]))
        return super().execute(context)

    def execute_complete(self, context: Context, event: dict[str, Any]) -> Any:
        from aiops.core.state import StateStore

        plan = context["ti"].xcom_pull(task_ids=self.plan_task_id) or {}
        user = (event.get("responded_by_user") or {}).get("id")
        chosen = (event.get("chosen_options") or [None])[0]
        decision = f"error:{event.get('error_type')}" if "error" in event else (str(chosen) if user else "timeout")
        StateStore().audit(actor=user or "timeout", action=f"ops.patch_install.{decision.lower()}",
                           subject=f"ops_patching/{plan.get('interval')}",
                           detail={"policies": [i["policy"] for i in plan.get("install", []) if i["requires_approval"]]},
                           run_id=context["ti"].run_id)
        return super().execute_complete(context, event)
