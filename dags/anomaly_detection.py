"""
### anomaly_detection — score every CloudWatch series for anomalies

Runs whenever **metrics_extract** updates the `aiops_metrics_cloudwatch` Asset. Series are split
into stable batches (`AIOPS_ANOMALY_BATCHES`, one mapped task each); each batch re-scores its day
from the midnight checkpoint with the day's Prophet-based models (`include/models/*.yaml`), so a
re-run or a backfill reproduces the same result.

Writes every scored point to `anomaly/scores/dt=.../` and the anomalies to
`anomaly/anomalies/dt=.../` in the artifact store, and sends one alert per new anomaly episode to
EventBridge (`source: matcarv.aiops`, `detail-type: AIOps Anomaly Detected`); the ops-events rule
routes them to the SQS queue the incident intake watches. Updates the `aiops_anomalies` Asset.

How good it is: `benchmarks/nab/` (NAB standard score on AWS CloudWatch series, README).

**Backfill** a range: trigger with conf `{"start": "...", "end": "...", "emit_alerts": false}`.

**History is quiet** (docs/first-start.md): only onsets younger than `AIOPS_FRESHNESS_HORIZON_MINUTES`
(60) are sent; older ones — the first run after install, a catch-up, a backfill, a late extract —
are scored and stored but not alerted (`alerts_history` in the summary). Each alert event carries
`observed_at` and `data_age_seconds`, and the intake records stale ones without opening anything.

**Derived series in the same cycle**: `derived_in` waits (at most `AIOPS_ANOMALY_DERIVED_WAIT_SECONDS`,
180, past the window end) until a live `logs_collect` / `traces_collect` has brought in the same
window, so p99 latency, fault rate and log errors are scored with the CloudWatch series of that
cycle. A collector that never ran, is paused or is catching up is not waited for.
"""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import Param, PokeReturnValue, dag, task

from aiops.airflow import default_args
from aiops.airflow.assets import ANOMALIES, METRICS


@dag(
    dag_id="anomaly_detection",
    schedule=[METRICS],
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    is_paused_upon_creation=False,
    default_args=default_args(),
    tags=["aiops", "anomaly", "detection"],
    doc_md=__doc__,
    params={
        "start": Param(None, type=["null", "string"], description="Backfill: window start (ISO 8601)."),
        "end": Param(None, type=["null", "string"], description="Backfill: window end (ISO 8601)."),
        "emit_alerts": Param(True, type="boolean", description="Send alert events for new anomalies."),
    },
)
def anomaly_detection():
    @task
    def plan(triggering_asset_events=None, data_interval_end=None, params=None, dag_run=None) -> list[dict]:
        from aiops.anomaly.pipeline import plan as plan_batches

        ranges = [e.extra for events in (triggering_asset_events or {}).values() for e in events
                  if e.extra and "start" in e.extra and "end" in e.extra]
        conf = {k: v for k, v in (params or {}).items() if v not in (None, "")}
        return plan_batches(ranges, conf, data_interval_end or dag_run.run_after)

    # Derived series (p99 latency, fault rate, log errors) arrive from logs_collect/traces_collect,
    # which run on the same schedule: wait (poking, at most AIOPS_ANOMALY_DERIVED_WAIT_SECONDS past
    # the window end) for a live collector, so they are scored in this cycle, not the next.
    @task.sensor(poke_interval=10, timeout=900, mode="poke")
    def derived_in(batches: list[dict]) -> PokeReturnValue:
        import logging

        from aiops.anomaly.pipeline import wait_for_derived

        done, reason = wait_for_derived(batches)
        logging.getLogger("airflow.task").info("%s", reason)
        return PokeReturnValue(is_done=done, xcom_value=batches)

    @task(max_active_tis_per_dagrun=2)
    def score(batch: dict) -> dict:
        from aiops.anomaly.pipeline import score_batch

        return {**score_batch(batch), "end": batch["end"]}

    @task(outlets=[ANOMALIES])
    def publish(results: list[dict], outlet_events=None, run_id=None) -> dict:
        from aiops.anomaly.pipeline import publish as publish_alerts

        summary = publish_alerts(list(results), run_id=run_id)
        outlet_events[ANOMALIES].extra = summary
        return summary

    publish(score.expand(batch=derived_in(plan())))


anomaly_detection()
