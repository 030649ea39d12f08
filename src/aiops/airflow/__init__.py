"""Airflow glue shared by the DAG files: default arguments and conventions."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

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
