"""One DAG shape for the windowed collectors (logs_collect, traces_collect): plan -> collect (one mapped
task per day chunk) -> publish, every 15 minutes, with the backfill params of metrics_extract.

The DAG file names the pipeline module (``aiops.logs.pipeline``); its ``plan``, ``collect_chunk`` and
``publish`` are imported inside the tasks, so parsing the DAG file stays light.
"""

from __future__ import annotations

import importlib
from datetime import datetime
from typing import Any

from airflow.sdk import CronDataIntervalTimetable, Param, dag, task

from aiops.airflow import default_args


def collection_dag(dag_id: str, *, pipeline: str, tags: list[str], doc_md: str | None) -> Any:
    @dag(
        dag_id=dag_id,
        schedule=CronDataIntervalTimetable("*/15 * * * *", timezone="UTC"),
        start_date=datetime(2026, 1, 1),
        catchup=False,
        max_active_runs=1,
        default_args=default_args(),
        tags=["aiops", *tags],
        doc_md=doc_md,
        params={
            "backfill_days": Param(None, type=["null", "number"], minimum=0, maximum=63,
                                   description="Collect this many days before the interval end in this run."),
            "start": Param(None, type=["null", "string"], description="Explicit range start (ISO 8601)."),
            "end": Param(None, type=["null", "string"], description="Explicit range end (ISO 8601)."),
        },
    )
    def collection() -> None:
        @task
        def plan(data_interval_start=None, data_interval_end=None, params=None, dag_run=None) -> list[dict]:
            from datetime import timedelta

            conf = {k: v for k, v in (params or {}).items() if v not in (None, "")}
            if data_interval_end is None:
                data_interval_end = dag_run.run_after
                data_interval_start = data_interval_end - timedelta(minutes=15)
            return importlib.import_module(pipeline).plan(data_interval_start, data_interval_end, conf)

        @task(max_active_tis_per_dagrun=2)
        def collect(chunk: dict) -> dict:
            return importlib.import_module(pipeline).collect_chunk(chunk)

        @task
        def publish(results: list[dict], run_id=None) -> dict:
            return importlib.import_module(pipeline).publish(list(results), run_id=run_id)

        publish(collect.expand(chunk=plan()))  # type: ignore[arg-type]  # an XComArg, resolved at run time

    return collection()
