"""Airflow glue shared by the DAG files: default arguments and conventions."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from aiops.core.readiness import DataNotReady
from aiops.core.settings import get_settings


def default_args(owner: str = "aiops-platform", **overrides: Any) -> dict[str, Any]:
    args: dict[str, Any] = {
        "owner": owner,
        "retries": 2,
        "retry_delay": timedelta(minutes=1),
        "retry_exponential_backoff": True,
        "aws_conn_id": get_settings().aws_conn_id,
    }
    args.update(overrides)
    return args


def data_ready(check: Any, *args: Any, **kwargs: Any) -> Any:
    """Run a readiness check (``aiops.core.readiness``); when the data is not there yet, skip the task
    (``AirflowSkipException`` with the reason, the first line of its log) instead of reporting on it."""
    from airflow.exceptions import AirflowSkipException

    try:
        return check(*args, **kwargs)
    except DataNotReady as exc:
        raise AirflowSkipException(str(exc)) from exc


def resend_requested(params: dict[str, Any] | None, dag_run: Any = None) -> bool | None:
    """A report DAG run's ``resend`` (Param or trigger conf); None: the setting decides."""
    conf = getattr(dag_run, "conf", None) or {}
    value = (params or {}).get("resend", conf.get("resend"))
    return None if value is None else bool(value)


def account_ready(dag_id: str, *, email: bool = True, cached: bool = False) -> list[str]:
    """A DAG's first-task account gate (issue 16, ``aiops.account.check.DAG_NEEDS``): when the account
    lacks a piece the DAG needs, fail the task at once (``AirflowFailException``: no retry can help)
    with the preflight's message and fix, instead of deep in a send call. ``email=False``: the run
    sends no email. ``cached``: trust a pass younger than ``account_preflight_ttl_minutes`` (the
    event-driven DAGs, so a burst of runs does not re-check the account each time)."""
    from airflow.exceptions import AirflowFailException

    from aiops.account.check import AccountNotReady, require_for_dag  # lazy: DAG parse path

    ttl = get_settings().account_preflight_ttl_minutes if cached else 0
    try:
        items = require_for_dag(dag_id, email=email, max_age=timedelta(minutes=ttl) if ttl else None)
    except AccountNotReady as exc:
        raise AirflowFailException(str(exc)) from exc
    lines = [item.line() for item in items]
    for line in lines:
        print(line)
    return lines
