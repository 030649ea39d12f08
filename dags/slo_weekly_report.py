"""
### slo_weekly_report — the weekly SLO report for engineering managers

Mondays 08:00 UTC, for the week that just ended (the data interval): from the SLO history that
`slo_tracking` records, one HTML report — per service a table (objective, SLI, error budget
remaining, budget spent this week, pages and tickets started this week) and per SLO a plot of the
SLI against its objective and of the budget burn-down.

Stored at `s3://<artifact bucket>/slo/reports/dt=<Monday>/report.html` (self-contained; plus
`report.txt` and `email.eml`, the message sent) and emailed with SES (HTML + text, plots inline)
from `AIOPS_EMAIL_SENDER` to `AIOPS_SLO_REPORT_RECIPIENTS`. The sender must be a verified SES
identity. Re-running a week rewrites its report (and sends it again).
"""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import CronDataIntervalTimetable, dag, task

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
)
def slo_weekly_report():
    @task
    def build(data_interval_start=None, data_interval_end=None, dag_run=None) -> dict:
        from datetime import timedelta

        from aiops.slo.pipeline import build_report

        data_interval_end = data_interval_end or dag_run.run_after  # manual runs may have no interval
        start = data_interval_start
        if start is None or start >= data_interval_end:  # a manual run: the week before it
            start = data_interval_end - timedelta(days=7)
        return build_report(start, data_interval_end)

    @task
    def send(report: dict) -> dict:
        from aiops.slo.pipeline import send_report

        return send_report(report)

    send(build())


slo_weekly_report()
