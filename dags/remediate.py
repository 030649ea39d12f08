"""
### remediate — the one path by which MatCarv AIOps changes AWS

Trigger with a conf naming a runbook from `include/runbooks/` and its parameters, from the UI or
from other DAGs (incidents, right-sizing, compliance):

```json
{"runbook": "stop-idle-instance", "parameters": {"InstanceId": "i-0abc..."},
 "reason": "idle for 14 days", "dry_run": false}
```

The requester is the run's triggering user (or the platform component for incident / scheduled
runs); `requested_by` in the conf is kept as a note, never as an identity. See docs/change-path.md.

1. **plan** — validates every parameter against the runbook's patterns, describes the targets and
   refuses protected (`aiops:protected=true`), missing or too many targets; pins the SSM document
   version and the runbook's automation role; stores the plan with its SHA-256 hash in the state
   store; supersedes an older pending request for the same runbook and targets. A refused plan
   fails the run (unless `dry_run`).
2. **approve_1 / approve_2** — human-in-the-loop approval by the runbook's approvers only, never
   the requester (two different people for `requires-two-approvals`); the page names the
   resource(s), incident, time, plan hash and what happens on timeout (Reject: nothing changes).
3. **gate** — stops here for `dry_run`.
4. **execute** — re-verifies the recorded approvals (a round marked success by hand is no
   approval), rebuilds the SSM call from the stored plan (never XCom), re-runs the guards against
   live AWS, then SSM Automation (deferrable, idempotent ClientToken) at the approved version.
5. **verify** — checks the targets reached the state the runbook promises.
6. **record** — always runs: status, who approved which plan hash, execution id and outcome into
   the audit trail; the run fails when the plan or the execution was refused or failed.

Working tasks run in the pool of the request's origin (aiops_remediation_incident / _scheduled /
_manual) so a backlog cannot block a live incident.
"""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import Param, dag, task

from aiops.airflow import default_args
from aiops.airflow.approval import RunbookApprovalOperator
from aiops.airflow.ssm_automation import ApprovedRunbookAutomationOperator
from aiops.core.settings import get_settings


@dag(
    dag_id="remediate",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    # runs waiting for an approval hold no worker slot; capacity is the per-origin pools
    max_active_runs=64,
    render_template_as_native_obj=True,
    default_args=default_args(retries=1),
    tags=["aiops", "remediation", "runbooks"],
    doc_md=__doc__,
    params={
        "runbook": Param("", type="string", description="Runbook id from include/runbooks/"),
        "parameters": Param({}, type="object", description="The runbook's parameters"),
        "requested_by": Param("", type="string", description="A note only: the requester is who triggers"),
        "reason": Param("", type="string", description="Why (shown to the approvers)"),
        "incident_id": Param(None, type=["null", "string"]),
        "dry_run": Param(False, type="boolean", description="Plan and approve only; change nothing"),
    },
)
def remediate():
    @task
    def plan(params=None, dag_run=None) -> dict:
        from airflow.exceptions import AirflowFailException

        from aiops.airflow import account_ready
        from aiops.remediation.approvals import ApprovalNotVerified, resolve_requester
        from aiops.remediation.guards import GuardViolation
        from aiops.remediation.pipeline import make_plan

        account_ready("remediate", cached=True)  # the runbooks' automation roles (cached: incident bursts)
        conf = dict(params or {})
        try:
            requester = resolve_requester(run_type=dag_run.run_type, triggering_user=dag_run.triggering_user_name,
                                          conf=conf)
            return make_plan(conf, dag_id=dag_run.dag_id, run_id=dag_run.run_id, requester=requester)
        except (GuardViolation, ApprovalNotVerified, KeyError, ValueError) as exc:  # retrying cannot help
            raise AirflowFailException(f"refused: {exc}") from exc

    approve_1 = RunbookApprovalOperator(task_id="approve_1", round_no=1)
    approve_2 = RunbookApprovalOperator(task_id="approve_2", round_no=2)

    @task.short_circuit(ignore_downstream_trigger_rules=False)
    def gate(the_plan: dict) -> bool:
        # informational only: execute re-reads the stored plan and refuses a dry run on its own
        return not the_plan.get("dry_run")

    execute = ApprovedRunbookAutomationOperator(
        task_id="execute", deferrable=True, waiter_delay=5, retries=2,
        aws_conn_id=get_settings().aws_executor_conn_id,  # the executor role (docs/connect-account.md)
    )

    @task
    def verify(execution: dict, dag_run=None) -> dict:
        from aiops.remediation.pipeline import request_id, stored_plan, verify_remediation

        stored, _row = stored_plan(request_id(dag_run.dag_id, dag_run.run_id))
        return verify_remediation(stored, execution)

    @task(trigger_rule="all_done", retries=2)
    def record(params=None, dag_run=None, ti=None) -> dict:
        from airflow.exceptions import AirflowFailException

        from aiops.remediation.pipeline import finalise

        outcome = finalise(dag_run, ti)
        status = outcome["status"]
        if status == "rejected_by_guard" and (params or {}).get("dry_run"):
            return outcome  # the user asked what would happen: the refusal is the answer
        if status in {"execution_failed", "verification_failed", "rejected_by_guard", "refused_at_execution"} \
                or status.startswith("incomplete"):
            # recorded above; the run must not look green when a plan was refused or AWS not changed as promised
            raise AirflowFailException(f"remediation {status}: {outcome.get('error') or 'see the audit trail'}")
        return outcome

    the_plan = plan()
    execution = execute
    the_plan >> approve_1 >> approve_2 >> gate(the_plan) >> execution
    verify(execution.output) >> record()


remediate()
