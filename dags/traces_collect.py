"""
### traces_collect — AWS X-Ray per service and edge into the traces store

Every 15 minutes: `GetServiceGraph` per 5-minute window (per service and per caller -> callee edge:
requests, error / throttle / fault counts, latency p50/p95/p99 from X-Ray's response-time histogram)
and `GetTraceSummaries` (the slowest and the faulty trace ids per service and hour), replacing that
window in `s3://<artifact bucket>/traces/{stats,slow}/dt=.../`. The console's service page shows them.

**First run / gaps** catch up from the `traces_collect` watermark like metrics_extract (one mapped
task per day). **Backfill**: trigger with conf `{"backfill_days": 7}` or `{"start": ..., "end": ...}`;
a re-run of a window rewrites it (idempotent).
"""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import CronDataIntervalTimetable, Param, dag, task

from aiops.airflow import default_args


@dag(
    dag_id="traces_collect",
    schedule=CronDataIntervalTimetable("*/15 * * * *", timezone="UTC"),
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args=default_args(),
    tags=["aiops", "traces", "xray"],
    doc_md=__doc__,
    params={
        "backfill_days": Param(None, type=["null", "number"], minimum=0, maximum=63,
                               description="Collect this many days before the interval end in this run."),
        "start": Param(None, type=["null", "string"], description="Explicit range start (ISO 8601)."),
        "end": Param(None, type=["null", "string"], description="Explicit range end (ISO 8601)."),
    },
)
def traces_collect():
    @task
    def plan(data_interval_start=None, data_interval_end=None, params=None, dag_run=None) -> list[dict]:
        from datetime import timedelta

        from aiops.traces.pipeline import plan as plan_chunks

        conf = {k: v for k, v in (params or {}).items() if v not in (None, "")}
        if data_interval_end is None:
            data_interval_end = dag_run.run_after
            data_interval_start = data_interval_end - timedelta(minutes=15)
        return plan_chunks(data_interval_start, data_interval_end, conf)

    @task(max_active_tis_per_dagrun=2)
    def collect(chunk: dict) -> dict:
        from aiops.traces.pipeline import collect_chunk

        return collect_chunk(chunk)

    @task
    def publish(results: list[dict], run_id=None) -> dict:
        from aiops.traces.pipeline import publish as publish_run

        return publish_run(list(results), run_id=run_id)

    publish(collect.expand(chunk=plan()))


traces_collect()
