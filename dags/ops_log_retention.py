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

**First start** (the workflow has never run on this account): the plan is made, reported and
audited as always, but nothing is changed — each change is "first start: planned, not made — acts
from the next scheduled run" (`docs/first-start.md`). A manual run with `{"act_now": true}` acts on
the first run deliberately.
"""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import CronTriggerTimetable, Param, dag

from aiops.airflow import default_args
from aiops.airflow.ops_tasks import plan_then_execute


@dag(
    dag_id="ops_log_retention",
    schedule=CronTriggerTimetable("30 1 * * *", timezone="UTC"),
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args=default_args(),
    tags=["aiops", "routine-ops", "logs"],
    doc_md=__doc__,
    params={
        "dry_run": Param(False, type="boolean", description="Plan only: change nothing, whatever the policies say."),
        "act_now": Param(False, type="boolean",
                         description="The workflow's first run on this account acts too (by default it only plans)."),
    },
)
def ops_log_retention():
    plan_then_execute("ops_log_retention")


ops_log_retention()
