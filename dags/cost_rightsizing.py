"""
### cost_rightsizing — right-sizing and waste, approved by FinOps

Daily at 06:30 UTC (after `metrics_extract` has filled the day). **Waits for its data**: the run is
skipped (reason in the log) unless the metrics store holds `AIOPS_COST_LOOKBACK_DAYS` of metrics up
to an hour before the run — on a fresh start, until the first extraction has pulled the history.

1. **recommend** — inventory through EC2/RDS/ELB describe calls and `AIOPS_COST_LOOKBACK_DAYS` (14)
   of metrics from the metrics store, then the rules (Compute Optimizer's method for
   over-provisioned EC2: p99.5 of 5-minute CPU maxima + memory when the CloudWatch agent reports it,
   `AIOPS_COST_HEADROOM_PCT` headroom; Trusted Advisor's low-utilisation rule for idle EC2; idle RDS
   and load balancers; unattached EBS; gp2 -> gp3; snapshots past retention; unassociated Elastic
   IPs). Protected resources (`aiops:protected=true`) are never proposed; nor is what FinOps dismissed
   in the last `AIOPS_COST_DISMISS_DAYS` days. Written to
   `cost/rightsizing/dt=<day>/recommendations.json` (schema: `aiops.cost.model`). On real AWS with
   `AIOPS_COST_EXTERNAL_RECOMMENDATIONS=true`, Compute Optimizer and Cost Explorer right-sizing are
   merged in.
2. **review** — FinOps (`AIOPS_COST_APPROVERS`) sees the table of recommendations with savings and
   evidence in **Required Actions**: choose **Apply**, **Defer** or **Dismiss** for the batch and
   list refs (`R1, R3`) in the apply / defer / dismiss fields for individual choices. No answer in
   `AIOPS_COST_REVIEW_TIMEOUT_HOURS` defers everything.
3. **decide** — records each decision (`aiops_cost_decisions` + audit trail).
4. **apply** — one `remediate` run per applied recommendation with its runbook (the runbook's own
   approvers still approve it there); realised savings appear in `cost_daily_report`.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.providers.standard.operators.hitl import HITLOperator
from airflow.providers.standard.operators.trigger_dagrun import TriggerDagRunOperator
from airflow.sdk import CronDataIntervalTimetable, Param, dag, task

from aiops.airflow import default_args
from aiops.core.settings import get_settings

_REFS = "Recommendation refs (R1, R3 ...), full ids, or 'all'"


@dag(
    dag_id="cost_rightsizing",
    schedule=CronDataIntervalTimetable("30 6 * * *", timezone="UTC"),
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args=default_args(),
    tags=["aiops", "cost", "finops", "rightsizing"],
    doc_md=__doc__,
)
def cost_rightsizing():
    settings = get_settings()

    @task
    def recommend(data_interval_end=None, dag_run=None) -> dict:
        from aiops.airflow import data_ready
        from aiops.cost.rightsizing import recommend as run
        from aiops.metrics.readiness import require_metrics

        at = data_interval_end or dag_run.run_after  # manual runs may have no data interval
        # never recommend from partial data: the whole lookback must be in the metrics store, up to ~now
        data_ready(require_metrics, "cost_rightsizing", days=settings.cost_lookback_days,
                   until=at - timedelta(hours=1))
        return run(at)

    @task.short_circuit
    def anything_to_review(summary: dict) -> bool:
        return bool(summary["recommendations"])

    review = HITLOperator(
        task_id="review",
        subject="{{ ti.xcom_pull(task_ids='recommend')['subject'] }}",
        body="{{ ti.xcom_pull(task_ids='recommend')['review_markdown'] }}",
        options=["Apply", "Defer", "Dismiss"],
        defaults=["Defer"],
        params={
            "apply": Param("", type="string", description=f"Apply these. {_REFS}."),
            "defer": Param("", type="string", description=f"Ask again tomorrow. {_REFS}."),
            "dismiss": Param("", type="string",
                             description=f"Do not propose for {settings.cost_dismiss_days} days. {_REFS}."),
        },
        assigned_users=[{"id": u, "name": u} for u in settings.cost_approvers],
        response_timeout=timedelta(hours=settings.cost_review_timeout_hours),
    )

    @task
    def decide(summary: dict, answer: dict, dag_run=None) -> list[dict]:
        from aiops.cost.rightsizing import decide as record

        return record(summary, answer, review_run_id=dag_run.run_id,
                      decided_at=answer.get("responded_at") or dag_run.data_interval_end or dag_run.run_after)

    summary = recommend()
    decided = decide(summary, review.output)
    anything_to_review(summary) >> review
    TriggerDagRunOperator.partial(
        task_id="apply", trigger_dag_id="remediate", skip_when_already_exists=True, wait_for_completion=False,
    ).expand_kwargs(decided)


cost_rightsizing()
