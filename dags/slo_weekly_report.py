"""
### slo_weekly_report — the weekly SLO report for engineering managers

Mondays 08:00 UTC, for the week that just ended (the data interval): from the SLO history that
`slo_tracking` records, one HTML report — per service a table (objective, SLI, error budget
remaining, budget spent this week, pages and tickets started this week) and per SLO a plot of the
SLI against its objective and of the budget burn-down.

Stored at `s3://<artifact bucket>/slo/reports/dt=<Monday>/report.html` (self-contained; plus
`report.txt` and `email.eml`, the message sent) and emailed with SES (HTML + text, plots inline)
from `AIOPS_EMAIL_SENDER` to `AIOPS_SLO_REPORT_RECIPIENTS`. The sender must be a verified SES
identity. Each run keeps its own copy (`.../dt=<Monday>/runs/<run id>/`), the day's top-level
files are the latest run's, and `sent.json` records what was emailed: a week is emailed once (a
rerun re-renders; trigger with conf `{"resend": true}` to send again).

**Waits for its data**: skipped (reason in the log) unless SLOs are defined and `slo_tracking`'s
history covers the whole week (within an hour at either end) — on a fresh install, backfill
`slo_tracking` over the week first. Never a report from partial data.
"""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import CronDataIntervalTimetable, Param, dag, task

from aiops.airflow import default_args


@dag(
    dag_id="slo_weekly_report",
    schedule=CronDataIntervalTimetable("0 8 * * 1", timezone="UTC"),
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args=default_args(),
    tags=["aiops", "slo", "report"],
    doc_md=__doc__,
    params={"resend": Param(False, type="boolean", description="Email the week again even if it was sent.")},
)
def slo_weekly_report():
    @task
    def build(data_interval_start=None, data_interval_end=None, dag_run=None, run_id=None) -> dict:
        from datetime import timedelta

        from aiops.airflow import account_ready
        from aiops.slo.pipeline import build_report

        account_ready("slo_weekly_report")  # SES sender: fail here with the fix, not in send
        data_interval_end = data_interval_end or dag_run.run_after  # manual runs may have no interval
        start = data_interval_start
        if start is None or start >= data_interval_end:  # a manual run: the week before it
            start = data_interval_end - timedelta(days=7)
        from aiops.airflow import data_ready

        return data_ready(build_report, start, data_interval_end, run_id=run_id, require_complete=True)

    @task
    def send(report: dict, params=None, dag_run=None) -> dict:
        from aiops.airflow import resend_requested
        from aiops.slo.pipeline import send_report

        return send_report(report, resend=resend_requested(params, dag_run))

    send(build())


slo_weekly_report()
