"""
### runbook_sync — publish include/runbooks/ to SSM Automation

Daily, and on demand after changing a runbook: each document in the catalog is created in SSM
(`MatCarv-<id>`), given a new default version when its content changed, or left untouched. The
task log and the return value report what changed. Runbooks the catalog rejects (malformed
document or metadata) are named with file and field; the others are still published, and the run
is marked failed so the broken file gets fixed.
"""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import dag, task

from aiops.airflow import default_args


@dag(
    dag_id="runbook_sync",
    schedule="@daily",
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args=default_args(),
    tags=["aiops", "runbooks", "ssm"],
    doc_md=__doc__,
)
def runbook_sync():
    @task
    def publish() -> dict:
        from aiops.airflow import account_ready
        from aiops.remediation.sync import sync_catalog

        account_ready("runbook_sync")  # the runbooks' automation roles
        report = sync_catalog()
        if report["catalog_errors"] or report["counts"]["error"]:
            problems = report["catalog_errors"] + [r["detail"] for r in report["results"] if r["action"] == "error"]
            raise RuntimeError("published the valid runbooks; these need fixing:\n" + "\n".join(problems))
        return report

    publish()


runbook_sync()
