"""
### incident_response — triage, remediate, verify and write up every incident

Runs whenever `alert_intake` opens or updates incidents (Asset `aiops_incidents`), one mapped task
per incident at each step. Trigger by hand for one incident with `{"incident_id": "INC-…"}`.

1. **triage** — gathers the evidence automatically and stores it in the artifact store
   (`incidents/evidence/dt=<day>/<id>.json`, linked from the incident): metric snapshot around the
   event with its forecast band, related alerts, ERROR lines from the service's CloudWatch Logs
   groups, CloudTrail changes to the resources in the day before, and the runbooks whose rule in
   `include/incidents/runbooks.yaml` matches. State **detected → triaged**.
2. **start_remediations** — **triaged → remediating** with the first matching runbook, or
   **→ escalated** when none matches (a human takes over with the evidence).
3. **remediate** — starts the `remediate` DAG (conf with `incident_id`) and waits for it,
   deferred: plan, approval in the UI unless the runbook is pre-approved, SSM execution, its checks.
4. **check_recovery** — remediate succeeded *and* the alerting metric is back inside its forecast
   band (polled until the runbook's `verify.within_minutes`) → **resolved**; rejected, failed or
   still out of band → **escalated**.
5. **postmortem** — for resolved incidents: Markdown + HTML (metric plot with band and incident
   window, timeline, times to detect / respond / recover, MTTR, actions with run links and
   approvers, follow-ups) at `incidents/postmortems/dt=<day>/<id>.md|.html`, linked.

Every step writes the incident timeline (who/what, why, which run); retries are no-ops.
See the incident with `aiops incidents show <id>`.
"""

from __future__ import annotations

from datetime import datetime

from airflow.providers.standard.operators.trigger_dagrun import TriggerDagRunOperator
from airflow.sdk import Param, dag, task

from aiops.airflow import default_args
from aiops.airflow.assets import INCIDENTS


@dag(
    dag_id="incident_response",
    schedule=[INCIDENTS],
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=8,
    default_args=default_args(retries=1),
    tags=["aiops", "incidents", "remediation"],
    doc_md=__doc__,
    params={
        "incident_id": Param(None, type=["null", "string"],
                             description="Handle this one incident (INC-…); empty: the incidents of the "
                                         "triggering aiops_incidents events."),
    },
)
def incident_response():
    @task
    def incident_ids(params=None, triggering_asset_events=None) -> list[str]:
        from aiops.incidents.pipeline import incident_ids as collect

        extras = [dict(event.extra or {}) for events in (triggering_asset_events or {}).values() for event in events]
        ids = collect(extras, (params or {}).get("incident_id"))
        print(f"{len(ids)} incident(s) to handle: {', '.join(ids) or 'none'}")
        return ids

    @task
    def triage(incident_id: str, run_id=None) -> dict:
        from aiops.incidents.pipeline import triage as run_triage

        return run_triage(incident_id, run_id=run_id)

    @task
    def start_remediations(decisions: list[dict], run_id=None) -> list[dict]:
        from aiops.incidents.pipeline import start_remediations as start

        return start(list(decisions), run_id=run_id)

    remediate = TriggerDagRunOperator.partial(
        task_id="remediate",
        trigger_dag_id="remediate",
        wait_for_completion=True,
        deferrable=True,
        poke_interval=5,
        allowed_states=["success"],
        failed_states=["failed"],
        # The remediate run id is fixed per incident and run: a retry finds it and does not trigger
        # twice (check_recovery waits for the remediation's outcome either way).
        skip_when_already_exists=True,
        retries=1,
    )

    @task.sensor(poke_interval=20, timeout=3 * 3600, mode="reschedule", trigger_rule="all_done")
    def check_recovery(decision: dict, run_id=None):
        from airflow.sdk import PokeReturnValue

        from aiops.incidents.pipeline import check_recovery as check

        result = check(decision, run_id=run_id)
        return PokeReturnValue(is_done=result is not None, xcom_value=result)

    @task(trigger_rule="all_done")
    def postmortem(result: dict | None, run_id=None) -> dict | None:
        from aiops.incidents.pipeline import write_postmortem

        return write_postmortem(result, run_id=run_id) if result else None

    decisions = triage.expand(incident_id=incident_ids())
    requests = start_remediations(decisions)
    triggered = remediate.expand_kwargs(requests)
    recovery = check_recovery.expand(decision=decisions)
    triggered >> recovery
    postmortem.expand(result=recovery)


incident_response()
