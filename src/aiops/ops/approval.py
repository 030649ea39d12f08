"""Approval of a prod patch install in the Airflow UI (providers-standard ``ApprovalOperator``).

Asks only when the plan has an enforced install that needs approval (a target tagged ``env=prod``,
or ``approval: required``) and is not a first start (which installs nothing); otherwise completes
at once and says why. Only the policies' ``approvers`` may answer (the op/admin role holders when
none are listed; never the user who triggered the run); silence until
``settings.ops_patch_approval_timeout_minutes`` means Reject. The plan comes from its stored,
hash-checked copy; the round's assigned users and the answer are recorded in the audit trail, and
``install_approved`` installs only when that recorded answer verifies
(:func:`aiops.ops.pipeline.verify_patch_approval`) — a task marked success is no approval.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

from airflow.providers.standard.operators.hitl import ApprovalOperator

from aiops.core.settings import get_settings
from aiops.core.state import StateStore
from aiops.remediation.approvals import md_escape

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
        from aiops.ops.pipeline import approved_plan  # lazy: DAG parse path
        from aiops.remediation.pipeline import approvers_for  # lazy: DAG parse path

        ti = context["ti"]
        plan = approved_plan("ops_patching", ti.run_id)  # the stored plan, not the XCom
        if not plan or not plan.get("needs_approval") or plan.get("refused"):
            # a first start plans its installs and makes none: nothing to ask anyone
            why = ("first start: installs planned, not made" if plan and plan.get("first_start")
                   else "no install needing approval")
            self.log.info("No enforced install needs approval in this run (%s)", why)
            return {"chosen_options": [self.APPROVE], "params_input": {}, "responded_by_user": None,
                    "auto": why}
        gated = [i for i in plan["install"] if i["requires_approval"] and i["mode"] == "enforce"]
        n = sum(len(b) for i in gated for b in i["batches"])
        dag_run = context.get("dag_run")
        requester = getattr(dag_run, "triggering_user_name", None) if dag_run is not None else None
        # every HITL step has assigned users: the policies' approvers, else the op/admin role holders
        candidates = list(plan.get("approvers") or []) or approvers_for([], ["admin", "op"])
        approvers = [u for u in candidates if u != requester]
        if not approvers:
            raise RuntimeError("prod install needs an approver other than the requester; none is configured")
        self.assigned_users = [{"id": u, "name": u} for u in approvers]
        instances = [x for i in gated for b in i["batches"] for x in b][:3]
        self.subject = (f"Install patches on {n} prod instance(s) ({', '.join(instances)}"
                        f"{', ...' if n > 3 else ''}; {', '.join(i['policy'] for i in gated)}) "
                        f"— window until {gated[0]['window']['end'][11:16]} UTC")[:250]
        self.body = (f"**Plan hash** `{plan['plan_hash'][:12]}`; planned for {md_escape(plan['interval'])}. "
                     "Unanswered by the timeout it is rejected and nothing is installed.\n\n" + plan["markdown"])
        StateStore().audit(actor="aiops", action="ops.patch_install.asked", subject=f"ops_patching/{plan['interval']}",
                           detail={"assigned": approvers, "plan_hash": plan["plan_hash"]}, run_id=ti.run_id)
        self.log.info("Waiting for %s to approve the install (plan %s)", ", ".join(approvers), plan["plan_hash"][:12])
        return super().execute(context)

    def execute_complete(self, context: Context, event: dict[str, Any]) -> Any:
        from aiops.ops.pipeline import approved_plan  # lazy: DAG parse path

        plan = approved_plan("ops_patching", context["ti"].run_id)
        user = (event.get("responded_by_user") or {}).get("id")
        chosen = (event.get("chosen_options") or [None])[0]
        decision = f"error:{event.get('error_type')}" if "error" in event else (str(chosen) if user else "timeout")
        # the mirror of Airflow's stored HITL response that install_approved verifies
        StateStore().audit(actor=user or "timeout", action=f"ops.patch_install.{decision.lower()}",
                           subject=f"ops_patching/{plan.get('interval')}",
                           detail={"policies": [i["policy"] for i in plan.get("install", []) if i["requires_approval"]],
                                   "source": "hitl", "plan_hash": plan.get("plan_hash"),
                                   "responded_at": str(event.get("responded_at") or "")},
                           run_id=context["ti"].run_id)
        return super().execute_complete(context, event)
