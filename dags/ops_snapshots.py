"""
### ops_snapshots — EBS snapshot lifecycle

Daily at 01:00 UTC. Policies in `include/ops/*.yaml` (`snapshots:`; format in `include/ops/README.md`)
select volumes by tag (e.g. `aiops:backup=daily` on the volume or its instance) and say how long
snapshots are kept (a volume's `aiops:retention-days` tag overrides).

1. **plan** — one snapshot per selected volume per day (volume tags copied, keyed by the tag
   `aiops:snapshot-key`, so a re-run creates nothing twice) and the policy's snapshots older than
   the retention to expire. Never touched: a snapshot an AMI uses, one tagged `aiops:keep=true` or
   `aiops:protected=true`, any volume of a protected instance. The plan is in this task's log, its
   XCom and `ops/ops_snapshots/dt=<day>/plan.json`; a plan over `AIOPS_OPS_MAX_CHANGES_PER_RUN` is
   refused whole.
2. **execute** — creates and deletes (only `mode: enforce` policies; a new policy is dry-run),
   each change once, recorded in `aiops_ops_changes` and the audit trail; `result.json` next to the plan.

Trigger with `{"dry_run": true}` to see the plan without changing anything.

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
    dag_id="ops_snapshots",
    schedule=CronTriggerTimetable("0 1 * * *", timezone="UTC"),
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args=default_args(),
    tags=["aiops", "routine-ops", "ebs"],
    doc_md=__doc__,
    params={
        "dry_run": Param(False, type="boolean", description="Plan only: change nothing, whatever the policies say."),
        "act_now": Param(False, type="boolean",
                         description="The workflow's first run on this account acts too (by default it only plans)."),
    },
)
def ops_snapshots():
    plan_then_execute("ops_snapshots")


ops_snapshots()
