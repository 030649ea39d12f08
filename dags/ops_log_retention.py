"""
### ops_log_retention — CloudWatch Logs retention

Daily at 01:30 UTC. Policies in `include/ops/*.yaml` (`log_retention:`) map log-group name patterns
to a retention; the first policy whose pattern matches a group wins.

1. **plan** — every group whose retention differs from its policy's. Groups no policy matches are
   reported (*Findings*); those keeping logs forever get `AIOPS_OPS_LOG_RETENTION_DEFAULT_DAYS`
   (applied only with `AIOPS_OPS_LOG_RETENTION_DEFAULT_MODE=enforce`, else dry-run). Shortening a
   retention deletes logs: only for a policy with `allow_decrease: true`. Groups tagged
   `aiops:protected=true` are never changed. Plan: log, XCom, `ops/ops_log_retention/dt=<day>/plan.json`.
2. **execute** — `PutRetentionPolicy` for the enforced changes, each recorded (`aiops_ops_changes`,
   audit trail with the previous value, so a change can be undone by hand).

Trigger with `{"dry_run": true}` to see the plan only.
"""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import CronTriggerTimetable, Param, dag, task

from aiops.airflow import default_args


@dag(
    dag_id="ops_log_retention",
    schedule=CronTriggerTimetable("30 1 * * *", timezone="UTC"),
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args=default_args(),
    tags=["aiops", "routine-ops", "logs"],
    doc_md=__doc__,
    params={"dry_run": Param(False, type="boolean", description="Plan only: change nothing, whatever the policies say.")},
)
def ops_log_retention():
    @task
    def plan(params=None, data_interval_end=None, dag_run=None, run_id=None) -> dict:
        from aiops.ops.workflows import make_plan

        return make_plan("ops_log_retention", data_interval_end or dag_run.run_after, conf=params, run_id=run_id)

    @task
    def execute(the_plan: dict, run_id=None) -> dict:
        from airflow.exceptions import AirflowFailException

        from aiops.ops.workflows import run_changes

        if the_plan["refused"]:
            raise AirflowFailException(f"refused: {the_plan['refused']}")
        return run_changes(the_plan, run_id=run_id)

    execute(plan())


ops_log_retention()
