"""
### alert_intake — operational events to incidents, with as little noise as possible

**Event-driven**: an `AssetWatcher` on the SQS queue `aiops-ops-events` (fed by the EventBridge rule
of the same name: CloudWatch alarm state changes, EC2 / RDS / Auto Scaling state changes, Security
Hub and GuardDuty findings, AWS Health events and our own anomaly / SLO / security alerts) starts a
run a few seconds after messages arrive. Nothing polls on a schedule.

* **process_events** — in one task, because latency matters (event -> remediation start < 60 s):
  0. *account gate*: the queue, rule and SNS topics exist (`aiops account check --capability
     alerting`; a pass is trusted for `AIOPS_ACCOUNT_PREFLIGHT_TTL_MINUTES`); a missing piece fails
     the run with the fix before anything is recorded (docs/connect-account.md, "The DAG gates");
  1. *normalise* every event to one alert model; malformed or unknown events go to the dead-letter
     table `aiops_alert_dead_letters` with the reason (they never fail the run);
  2. *enrich*: service / team / owner / env from resource tags, recent CloudTrail changes to the
     resource, SLO impact;
  3. *decide* with the rules in `include/alerting/` — severity (`severity.yaml`), dedup by
     fingerprint and re-delivery by event id, suppression (maintenance windows, known-noisy rules,
     flapping; `suppression.yaml`), grouping per service or root resource (`grouping.yaml`);
  4. *hand over* each incident candidate to the incident store (`open_or_update`, idempotent);
  5. *notify*: one SNS message per new or escalated incident to the topics of `routing.yaml`.
* **announce_incidents** — an `aiops_incidents` Asset event (`incident_ids`, `created`) that starts
  `incident_response`; skipped when the batch opened or changed no incident. Derived from state: an
  incident of a re-delivered event that no run announced (the first run died) is announced now.
* **ack_messages** — deletes the batch's SQS messages, only now that the run recorded and announced
  them. A failed run deletes nothing: the messages come back (re-deliveries are recognised) and after
  the queue's `maxReceiveCount` SQS moves them to the dead-letter queue `aiops-ops-events-dlq`.

**Manual run / replay**: trigger with conf `{"events": [<EventBridge event>, ...]}` (objects or JSON
strings; e.g. from `tests/fixtures/events/`). A replayed event id is recognised as a re-delivery.
Every decision is in the task log (one line per alert) and in the state store table `aiops_alerts`.
Queue: setting `AIOPS_ALERTING_QUEUE_URL` (default: the sandbox queue).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import Param, dag, task

from aiops.airflow import default_args
from aiops.airflow.assets import INCIDENTS, ops_events_asset

OPS_EVENTS = ops_events_asset()


@dag(
    dag_id="alert_intake",
    schedule=[OPS_EVENTS],
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,  # runs see each other's decisions (dedup, grouping) in order
    default_args=default_args(retries=3, retry_delay=timedelta(seconds=5), retry_exponential_backoff=False),
    tags=["aiops", "alerting", "incidents"],
    doc_md=__doc__,
    params={
        "events": Param([], type="array",
                        description="Manual run / replay: EventBridge events (objects or JSON strings) to process "
                                    "as if they came from the queue."),
    },
)
def alert_intake():
    @task
    def process_events(params=None, triggering_asset_events=None, run_id=None) -> dict:
        from aiops.airflow import account_ready
        from aiops.alerting.pipeline import bodies_from_asset_events, process

        # queue, rule, SNS topics; a pass is trusted for account_preflight_ttl_minutes (runs come seconds apart)
        account_ready("alert_intake", cached=True)
        bodies = [e for events in (triggering_asset_events or {}).values()
                  for e in bodies_from_asset_events(list(events))]
        bodies += list((params or {}).get("events") or [])
        return process(bodies, run_id=run_id)

    @task(outlets=[INCIDENTS])
    def announce_incidents(summary: dict, outlet_events=None, run_id=None) -> list[str]:
        from airflow.exceptions import AirflowSkipException

        from aiops.alerting.pipeline import mark_announced

        if not summary["announce"]:
            raise AirflowSkipException("no incident opened or changed by this batch")
        mark_announced(summary["announce"], run_id)
        outlet_events[INCIDENTS].extra = {"incident_ids": summary["announce"],
                                          "created": [i for i in summary["created"] if i in summary["announce"]]}
        return summary["announce"]

    @task(trigger_rule="none_failed")
    def ack_messages(summary: dict) -> dict:
        from aiops.alerting.pipeline import ack_messages as ack

        return ack(summary.get("receipts") or [])

    summary = process_events()
    announce_incidents(summary) >> ack_messages(summary)


alert_intake()
