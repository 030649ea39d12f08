"""
### ops_scheduling — off-hours stop/start and scheduled ASG capacity

Every 15 minutes (data intervals `[t, t + 15 min)`). Schedules in `include/ops/*.yaml`:

* `schedules:` — instances tagged `aiops:schedule=<id>` run from `start` to `stop` on the listed
  days in the schedule's time zone and are stopped otherwise. Instances tagged `env=prod` or
  `aiops:protected=true` are never stopped or started. An instance is acted on when a start/stop
  time falls in the run's interval (someone who starts a staging box at night keeps it) — or on
  every run with `enforce_state: true`.
* `asg_schedules:` — at each step's time an Auto Scaling group's min / max / desired become the step's.

1. **plan** — the stops, starts and capacity changes due; readable in the log, the XCom and
   `ops/ops_scheduling/dt=<day>/plan-<time>.json`. A new schedule is `mode: dry-run` until it says
   `mode: enforce`.
2. **execute** — `StopInstances` / `StartInstances` / `UpdateAutoScalingGroup`, each once per
   interval (`aiops_ops_changes`), audited.

Manual trigger: `{"reconcile": true}` brings every scheduled instance to its schedule's state now;
`{"dry_run": true}` plans only.

**First start** (the workflow has never run on this account): the plan is made, reported and
audited as always, but nothing is changed — each change is "first start: planned, not made — acts
from the next scheduled run" (`docs/first-start.md`). A manual run with `{"act_now": true}` acts on
the first run deliberately.
"""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import CronDataIntervalTimetable, Param, dag

from aiops.airflow import default_args
from aiops.airflow.ops_tasks import plan_then_execute


@dag(
    dag_id="ops_scheduling",
    schedule=CronDataIntervalTimetable("*/15 * * * *", timezone="UTC"),
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args=default_args(),
    tags=["aiops", "routine-ops", "scaling"],
    doc_md=__doc__,
    params={
        "dry_run": Param(False, type="boolean", description="Plan only: change nothing, whatever the policies say."),
        "reconcile": Param(False, type="boolean",
                           description="Bring every scheduled instance to its schedule's state now."),
        "act_now": Param(False, type="boolean",
                         description="The workflow's first run on this account acts too (by default it only plans)."),
    },
)
def ops_scheduling():
    plan_then_execute("ops_scheduling")


ops_scheduling()
