"""
### cost_daily_report — the FinOps daily cost report

Every day at 06:00 UTC, for the day before (the run's logical date is the report day): Cost Explorer
spend by service, account and cost-allocation tags (`team`, `service`, `env`) with day-over-day and
week-over-week change; month-to-date against a **month-end forecast** (Prophet on daily spend, with
its 80% interval); **spend anomalies** (a service's day outside its 99% forecast band by at least
`AIOPS_COST_ANOMALY_MIN_USD`) with the likely driver (the service tag and usage type that moved);
**realised savings** of applied right-sizing recommendations and the open ones.

Output in `s3://<artifact bucket>/cost/reports/dt=<day>/`: `report.html` (self-contained, charts:
spend trend with forecast band, top movers, cost by team), `cost.csv`, `summary.json`, `report.txt`
and `email.eml` — the message sent through SES to `AIOPS_COST_REPORT_RECIPIENTS` (charts inline).

**Backfill** a range of days: `airflow backfill create --dag-id cost_daily_report --from-date
2026-10-01 --to-date 2026-10-31` (one run per day). A manual run reports the day before it, or the
`day` you give in the trigger form. Each run keeps its own copy
(`cost/reports/dt=<day>/runs/<run id>/`); the day's top-level files are the latest run's. A day is
emailed once: re-running it re-renders and stores, and sends again only with `resend: true`.
"""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import CronDataIntervalTimetable, Param, dag, task

from aiops.airflow import default_args


@dag(
    dag_id="cost_daily_report",
    schedule=CronDataIntervalTimetable("0 6 * * *", timezone="UTC"),
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=2,
    default_args=default_args(),
    tags=["aiops", "cost", "report", "finops"],
    doc_md=__doc__,
    params={
        "day": Param(None, type=["null", "string"], format="date",
                     description="Report this day (YYYY-MM-DD) instead of the run's logical date."),
        "resend": Param(False, type="boolean", description="Email the day again even if it was already sent."),
    },
)
def cost_daily_report():
    @task
    def build(params=None, data_interval_start=None, dag_run=None, run_id=None) -> dict:
        from datetime import timedelta

        from aiops.airflow import account_ready
        from aiops.cost.report import build_report

        account_ready("cost_daily_report")  # SES sender, Cost Explorer: fail here with the fix, not in send
        # a manual run without a logical date has no data interval: the day before it was triggered
        start = data_interval_start or dag_run.run_after - timedelta(days=1)
        day = (params or {}).get("day") or start.date().isoformat()
        from aiops.airflow import data_ready

        return data_ready(build_report, day, run_id=run_id)  # no cost for the day yet: skipped, with the reason

    @task
    def send(report: dict, params=None, dag_run=None) -> dict:
        from aiops.airflow import resend_requested
        from aiops.cost.report import send_report

        return send_report(report, resend=resend_requested(params, dag_run))

    send(build())


cost_daily_report()
