"""
### slo_tracking — SLIs, error budgets and multi-window burn-rate alerts

Every 5 minutes: evaluate the SLOs in `include/slos/*.yaml` (see its README) over the metrics
store — SLI and error budget over the rolling window, burn rates over the alerting windows — and
record one row per SLO and 5-minute point in the state store table `aiops_slo_history`.

* **alert**: when a page or ticket *starts* (both windows of a burn-rate rule over its threshold,
  higher than any severity in the quiet period before), one event to EventBridge
  (`source: matcarv.aiops`, `detail-type: AIOps SLO Burn Rate`), routed to the ops-events queue.
* **publish_metrics**: `SLI`, `ErrorBudgetRemaining`, `BurnRate<window>` in namespace `MatCarv/SLO`.
* **dashboards**: one CloudWatch dashboard per service (`MatCarv-SLO-<service>`), re-published
  when the SLO set changes and otherwise at most hourly.

A scheduled run evaluates the points since the last one up to the *settled* metrics (the
`metrics_extract` watermark minus its settle time), so alerts lag the data by 10-25 minutes.
**Backfill** a range in one run (every 5-minute point; the same rows a live run writes):
conf `{"start": "2026-11-13T00:00Z", "end": "2026-11-20T00:00Z"}`, add `"emit_alerts": true` to
also send the alerts that started in it (the intake records those older than the freshness horizon
as history: no incident, no page). A scheduled run sends only onsets younger than
`AIOPS_FRESHNESS_HORIZON_MINUTES` (60); on a first start or a catch-up older ones are recorded in the
history, not sent (docs/first-start.md).
"""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import CronDataIntervalTimetable, Param, dag, task

from aiops.airflow import default_args


@dag(
    dag_id="slo_tracking",
    # Data intervals [t, t + 5 min): the point evaluated for an interval is its end.
    schedule=CronDataIntervalTimetable("*/5 * * * *", timezone="UTC"),
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args=default_args(),
    tags=["aiops", "slo", "alerting"],
    doc_md=__doc__,
    params={
        "start": Param(None, type=["null", "string"], description="Backfill: range start (ISO 8601)."),
        "end": Param(None, type=["null", "string"], description="Backfill: range end (ISO 8601)."),
        "emit_alerts": Param(False, type="boolean",
                             description="Backfill only: also send the alerts that started in the range."),
    },
)
def slo_tracking():
    @task
    def plan(data_interval_end=None, params=None, dag_run=None) -> dict:
        from aiops.slo.pipeline import plan as plan_range

        conf = {k: v for k, v in (params or {}).items() if v not in (None, "")}
        return plan_range(data_interval_end or dag_run.run_after, conf)  # without start/end: a scheduled run, which alerts

    @task
    def evaluate(task_range: dict, run_id=None) -> dict:
        from aiops.slo.pipeline import record

        return record(task_range, run_id=run_id)

    @task
    def alert(result: dict, task_range: dict, run_id=None) -> int:
        from aiops.slo.pipeline import advance, send_alerts

        sent = send_alerts(result["alerts"])
        if task_range["mode"] == "scheduled" and task_range["points"]:
            advance(task_range["end"], run_id=run_id)  # after the alerts went out: none is lost
        return sent

    @task
    def publish_metrics(task_range: dict) -> int:
        from aiops.slo.pipeline import publish_metrics as put_metrics

        return put_metrics(task_range["start"], task_range["end"]) if task_range["points"] else 0

    @task
    def dashboards(result: dict, data_interval_end=None, dag_run=None) -> dict:
        from aiops.slo.pipeline import update_dashboards

        return update_dashboards(result["series"], data_interval_end or dag_run.run_after)

    task_range = plan()
    result = evaluate(task_range)
    alert(result, task_range)
    result >> publish_metrics(task_range)
    dashboards(result)


slo_tracking()
