"""
### metrics_extract — CloudWatch metrics into the metrics store

Every 15 minutes: discover the catalogued series (`include/metrics/catalog.yaml`) with their
resource tags, pull the interval with `GetMetricData` (500 queries per call), validate with Great
Expectations, upsert Parquet day partitions at `s3://<artifact bucket>/metrics/cloudwatch/dt=.../`,
and update the **aiops_metrics_cloudwatch** Asset that analysis DAGs are scheduled on.

**First run / gaps**: on an empty store it pulls the last 14 days in one run (one mapped task per
day); after downtime it catches up from the watermark. **Backfill** a range in one run:
trigger with conf `{"backfill_days": 7}` or `{"start": "2026-11-01T00:00Z", "end": "2026-11-08T00:00Z"}`.

Bad series (nulls, duplicate timestamps, out-of-range values) are quarantined to
`metrics/quarantine/` with a report naming the series and the expectation; the rest still land.
"""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import CronDataIntervalTimetable, Param, dag, task

from aiops.airflow import default_args
from aiops.airflow.assets import METRICS


@dag(
    dag_id="metrics_extract",
    # Real data intervals [t, t + 15 min) on the quarter hour: results are keyed by them.
    schedule=CronDataIntervalTimetable("*/15 * * * *", timezone="UTC"),
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args=default_args(),
    tags=["aiops", "metrics", "cloudwatch"],
    doc_md=__doc__,
    params={
        "backfill_days": Param(None, type=["null", "number"], minimum=0, maximum=63,
                               description="Pull this many days before the interval end in this run."),
        "start": Param(None, type=["null", "string"], description="Explicit range start (ISO 8601)."),
        "end": Param(None, type=["null", "string"], description="Explicit range end (ISO 8601)."),
    },
)
def metrics_extract():
    @task
    def plan(data_interval_start=None, data_interval_end=None, params=None, dag_run=None) -> list[dict]:
        from datetime import timedelta

        from aiops.metrics.pipeline import plan as plan_chunks

        conf = {k: v for k, v in (params or {}).items() if v not in (None, "")}
        if data_interval_end is None:  # a manual run without a logical date: the 15 minutes before it
            data_interval_end = dag_run.run_after
            data_interval_start = data_interval_end - timedelta(minutes=15)
        return plan_chunks(data_interval_start, data_interval_end, conf)

    @task
    def discover() -> str:
        from aiops.metrics.pipeline import discover as discover_series

        return discover_series()["key"]

    @task(max_active_tis_per_dagrun=2)
    def extract(chunk: dict, series_key: str) -> dict:
        from aiops.metrics.pipeline import extract_chunk

        return extract_chunk(chunk, series_key)

    @task(outlets=[METRICS])
    def publish(results: list[dict], outlet_events=None, run_id=None) -> dict:
        from aiops.metrics.pipeline import publish as publish_run

        summary = publish_run(list(results), run_id=run_id)
        outlet_events[METRICS].extra = {k: v for k, v in summary.items() if k != "partitions"} | {
            "partitions": summary["partitions"][-30:]}
        return summary

    chunks = plan()
    series_key = discover()
    chunks >> series_key
    publish(extract.partial(series_key=series_key).expand(chunk=chunks))


metrics_extract()
