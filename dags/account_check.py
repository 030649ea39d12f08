"""
### account_check — is the account ready? (preflight of every capability)

Runs once when unpaused (the first thing on a new connection) and on demand. Checks, per
capability, what the platform needs in the account behind `aws_default` / `aws_executor`: the two
connections, the generated permissions (`iam:SimulatePrincipalPolicy`), the artifact bucket, the
`aiops-ops-events` rule and queue, the team topics, the trail and its file notifications, the SES
sender (and SES sandbox), Security Hub / AWS Config, Cost Explorer / Compute Optimizer and the
runbooks' automation roles. The task log lists each item with its exact fix; the run fails when
something is missing. Same checks as `aiops account check` (docs/connect-account.md).
"""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import dag, task

from aiops.airflow import default_args


@dag(
    dag_id="account_check",
    schedule="@once",
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args=default_args(),  # a missing piece raises AirflowFailException: no retry
    tags=["aiops", "account"],
    doc_md=__doc__,
)
def account_check():
    @task
    def check() -> list[dict]:
        from dataclasses import asdict

        from airflow.exceptions import AirflowFailException

        from aiops.account.check import missing, render, run_checks

        items = run_checks()
        print(render(items))
        if missing(items):
            raise AirflowFailException(f"{len(missing(items))} missing: " + "; ".join(
                f"{i.capability}/{i.name}: {i.fix}" for i in missing(items)))
        return [asdict(i) for i in items]

    check()


account_check()
