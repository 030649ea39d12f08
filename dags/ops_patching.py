"""
### ops_patching — SSM Run Command `AWS-RunPatchBaseline`, batch by batch

Hourly. Patch policies in `include/ops/*.yaml` (`patching:`) select instances by tag (e.g.
`PatchGroup=staging`) and give each a maintenance window, a batch size and approvers.

1. **plan** — Scan targets (every selected, running, non-protected instance; scheduled runs scan
   at 00:00 UTC, manual runs always) and, for each policy whose maintenance window is open at the
   run's time, the Install batches. Readable in the log, the XCom and
   `ops/ops_patching/dt=<day>/plan-<time>.json`.
2. **scan** — `SsmRunCommandOperator` (`Operation=Scan`, changes nothing), one command over all targets.
3. **install** — the policies that need no approval (non-prod), batch by batch: each batch's
   command must succeed and its instances pass their health check (EC2 instance and system status,
   load-balancer target health) before the next batch starts; the first failure stops the policy.
4. **approve** — installing on prod (`env=prod` targets, or `approval: required`) waits for one of
   the policy's approvers in **Required Actions**; reject or no answer means not installed.
5. **install_approved** — the approved prod installs, batch by batch as above.
6. **compliance** — always runs: patch compliance per instance (`DescribeInstancePatchStates`;
   on the emulator, which lacks that API, from the command invocations — each row says its
   source) into `compliance*.json` and the audit trail.

Manual trigger: `{"operation": "scan"}` scans only; `{"dry_run": true}` plans only.

**First start** (the workflow has never run on this account): the plan is made, reported and
audited as always (the Scan, which installs nothing, is sent as scheduled), but nothing is
installed and no approval is asked — each install is "first start: planned, not made — acts
from the next scheduled run" (`docs/first-start.md`). A manual run with `{"act_now": true}`
installs on the first run deliberately (prod still waits for its approval).
"""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import CronTriggerTimetable, Param, dag, task

from aiops.airflow import default_args
from aiops.airflow.aws_retry import SsmRunCommand
from aiops.core.settings import get_settings
from aiops.ops.approval import PatchInstallApprovalOperator


@dag(
    dag_id="ops_patching",
    schedule=CronTriggerTimetable("0 * * * *", timezone="UTC"),
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    render_template_as_native_obj=True,
    default_args=default_args(),
    tags=["aiops", "routine-ops", "patching"],
    doc_md=__doc__,
    params={
        "operation": Param("auto", enum=["auto", "scan"],
                           description="auto: scan, and install where a maintenance window is open; scan: scan only"),
        "dry_run": Param(False, type="boolean", description="Plan only: install nothing, whatever the policies say."),
        "act_now": Param(False, type="boolean",
                         description="The workflow's first run on this account installs too (by default it only plans)."),
    },
)
def ops_patching():
    @task
    def plan(params=None, data_interval_end=None, dag_run=None, run_id=None) -> dict:
        from aiops.ops.patching import scan_command
        from aiops.ops.pipeline import as_utc, make_plan

        at = as_utc(data_interval_end or dag_run.run_after)
        scheduled = str(getattr(dag_run, "run_type", "")) in {"scheduled", "DagRunType.SCHEDULED"}
        conf = {**(params or {}), "scan": not scheduled or at.hour == 0}
        the_plan = make_plan("ops_patching", at, conf=conf, run_id=run_id)
        the_plan["scan_command"] = scan_command(the_plan)
        return the_plan

    @task.short_circuit(ignore_downstream_trigger_rules=False)
    def scan_due(the_plan: dict) -> bool:
        return bool(the_plan["scan"]["instance_ids"]) and not the_plan["refused"]

    scan = SsmRunCommand(
        task_id="scan",
        document_name="AWS-RunPatchBaseline",
        aws_conn_id=get_settings().aws_executor_conn_id,  # SendCommand: the executor (docs/connect-account.md)
        run_command_kwargs="{{ ti.xcom_pull(task_ids='plan')['scan_command'] }}",
        wait_for_completion=True,
        waiter_delay=get_settings().ops_command_wait_seconds,
        waiter_max_attempts=120,
    )

    @task(trigger_rule="none_failed")
    def install(the_plan: dict, run_id=None) -> dict:
        from aiops.ops.pipeline import install_patches

        return install_patches(the_plan, requires_approval=False, approval=None, run_id=run_id)

    approve = PatchInstallApprovalOperator(task_id="approve", trigger_rule="none_failed")

    @task
    def install_approved(the_plan: dict, approval: dict, run_id=None) -> dict:
        from aiops.ops.pipeline import install_patches

        return install_patches(the_plan, requires_approval=True, approval=approval, run_id=run_id)

    @task(trigger_rule="all_done")
    def compliance(run_id=None, ti=None) -> dict:
        from aiops.ops.pipeline import compliance_report

        pulled = {t: ti.xcom_pull(task_ids=t) for t in ("plan", "scan", "install", "install_approved")}
        return compliance_report(pulled["plan"], pulled["scan"], [pulled["install"], pulled["install_approved"]],
                                 run_id=run_id)

    the_plan = plan()
    scan_due(the_plan) >> scan
    installed = install(the_plan)
    scan >> installed
    approved = install_approved(the_plan, approve.output)
    installed >> approve
    [installed, approved] >> compliance()


ops_patching()
