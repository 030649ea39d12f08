"""
### remediate — the one path by which MatCarv AIOps changes AWS

Trigger with a conf naming a runbook from `include/runbooks/` and its parameters, from the UI or
from other DAGs (incidents, right-sizing, compliance):

```json
{"runbook": "stop-idle-instance", "parameters": {"InstanceId": "i-0abc..."},
 "requested_by": "alice.sre", "reason": "idle for 14 days", "dry_run": false}
```

1. **plan** — validates every parameter against the runbook's patterns, describes the targets and
   refuses protected (`aiops:protected=true`), missing or too many targets; renders the dry-run
   plan (targets, parameters, what will change, blast radius, rollback).
2. **approve_1 / approve_2** — human-in-the-loop approval in the Airflow UI by the runbook's
   approvers only (two different people for `requires-two-approvals`); the page shows the plan.
   Reject or no answer before the timeout means *not executed*. Pre-approved runbooks pass through.
3. **gate** — stops here for `dry_run`.
4. **execute** — SSM Automation (`SsmAutomationOperator`, deferrable, idempotent ClientToken).
5. **verify** — checks the targets reached the state the runbook promises.
6. **record** — always runs: status, approvers, execution id and outcome into the audit trail; the
   run ends failed when the execution or its verification failed (rejected / timed out / dry run
   end green: nothing was meant to change).
"""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import Param, dag, task

from aiops.airflow import default_args
from aiops.airflow.approval import RunbookApprovalOperator
from aiops.airflow.ssm_automation import SsmAutomationOperator


@dag(
    dag_id="remediate",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=4,
    render_template_as_native_obj=True,
    default_args=default_args(retries=1),
    tags=["aiops", "remediation", "runbooks"],
    doc_md=__doc__,
    params={
        "runbook": Param("", type="string", description="Runbook id from include/runbooks/"),
        "parameters": Param({}, type="object", description="The runbook's parameters"),
        "requested_by": Param("", type="string", description="Who (or which DAG) asks for it"),
        "reason": Param("", type="string", description="Why (shown to the approvers)"),
        "incident_id": Param(None, type=["null", "string"]),
        "dry_run": Param(False, type="boolean", description="Plan and approve only; change nothing"),
    },
)
def remediate():
    @task
    def plan(params=None, dag_run=None) -> dict:
        from airflow.exceptions import AirflowFailException

        from aiops.remediation.guards import GuardViolation
        from aiops.remediation.pipeline import make_plan

        conf = dict(params or {})
        conf["requested_by"] = conf.get("requested_by") or getattr(dag_run, "triggering_user_name", None) or "unknown"
        try:
            return make_plan(conf, dag_id=dag_run.dag_id, run_id=dag_run.run_id)
        except (GuardViolation, KeyError, ValueError) as exc:  # bad request: retrying cannot help
            raise AirflowFailException(f"refused: {exc}") from exc

    approve_1 = RunbookApprovalOperator(task_id="approve_1", round_no=1)
    approve_2 = RunbookApprovalOperator(task_id="approve_2", round_no=2)

    @task.short_circuit(ignore_downstream_trigger_rules=False)
    def gate(the_plan: dict) -> bool:
        if the_plan.get("dry_run"):
            return False
        from aiops.remediation.sync import ensure_published

        # SSM runs exactly the catalog version that was planned and approved
        published = ensure_published(the_plan["runbook"])
        print(f"{published.document_name}: {published.action} (version {published.version})")
        return True

    execute = SsmAutomationOperator(
        task_id="execute",
        document_name="{{ ti.xcom_pull(task_ids='plan')['document_name'] }}",
        parameters="{{ ti.xcom_pull(task_ids='plan')['parameters'] }}",
        tags={"aiops:request": "{{ ti.xcom_pull(task_ids='plan')['request_id'] }}"},
        deferrable=True,
        waiter_delay=5,
        retries=2,
    )

    @task
    def verify(the_plan: dict, execution: dict) -> dict:
        from aiops.remediation.pipeline import verify_remediation

        return verify_remediation(the_plan, execution)

    @task(trigger_rule="all_done", retries=2)
    def record(dag_run=None, ti=None) -> dict:
        from airflow.exceptions import AirflowFailException

        from aiops.remediation.pipeline import finalise

        outcome = finalise(dag_run, ti)
        if outcome["status"] in {"execution_failed", "verification_failed"} or outcome["status"].startswith("incomplete"):
            # recorded above; the run itself must not look green when AWS was not changed as promised
            raise AirflowFailException(f"remediation {outcome['status']}: see the audit trail and the execute log")
        return outcome

    the_plan = plan()
    execution = execute
    the_plan >> approve_1 >> approve_2 >> gate(the_plan) >> execution
    verify(the_plan, execution.output) >> record()


remediate()
