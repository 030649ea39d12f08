"""
### anomaly_refit — fit the day's anomaly models ahead of scoring

Daily at 00:05 UTC: for every batch of series, fit the Prophet-based models that
`anomaly_detection` uses for the day (each on the series' history before 00:00 UTC, per
`include/models/*.yaml`) and persist them (Prophet JSON) to `anomaly/models/dt=<day>/`. Scoring runs
reuse them all day instead of fitting. Trigger with conf `{"day": "2026-11-20", "force": true}` to
refit a past day.

**Waits for its data**: skipped (reason in the log) until the metrics store is complete up to the
day's midnight and holds the models' minimum history (`min_history_hours`); a fresh start's first
scoring fits on demand instead, so no model is ever fitted on a partial extract.
"""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import CronDataIntervalTimetable, Param, dag, task

from aiops.airflow import default_args


@dag(
    dag_id="anomaly_refit",
    schedule=CronDataIntervalTimetable("5 0 * * *", timezone="UTC"),
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    is_paused_upon_creation=False,
    default_args=default_args(),
    tags=["aiops", "anomaly", "models"],
    doc_md=__doc__,
    params={
        "day": Param(None, type=["null", "string"], description="Day to fit for (YYYY-MM-DD); default today."),
        "force": Param(False, type="boolean", description="Refit even when models exist."),
    },
)
def anomaly_refit():
    @task
    def plan(data_interval_end=None, params=None, dag_run=None) -> list[dict]:
        from aiops.airflow import data_ready
        from aiops.anomaly.pipeline import refit_plan, refit_ready

        day = (params or {}).get("day") or (data_interval_end or dag_run.run_after).isoformat()
        data_ready(refit_ready, day)  # the history before the day's midnight must be in the store
        return refit_plan(day, force=bool((params or {}).get("force")))

    @task(max_active_tis_per_dagrun=2)
    def fit(batch: dict) -> dict:
        from aiops.anomaly.pipeline import refit

        return refit(batch)

    fit.expand(batch=plan())


anomaly_refit()
