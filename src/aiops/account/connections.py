"""The two connections: ``aws_default`` (role ``aiops-reader``: read, decide, report, notify) and
``aws_executor`` (role ``aiops-executor``: approved changes). Every client that may change the account
is created here, by :func:`executor_client`, so a compromise of the reading side cannot change it.

A missing executor connection is an error naming the fix, never a silent fall-back to the reader's
connection or to the worker's ambient AWS credentials (what ``AwsBaseHook`` would do).
"""

from __future__ import annotations

import threading
from typing import Any

from aiops.core import aws
from aiops.core.errors import AiopsError
from aiops.core.settings import get_settings

_checked: set[str] = set()
_lock = threading.Lock()


class ConnectionMissing(AiopsError):
    """The Airflow connection an AWS call needs is not defined."""


def connection_fix(conn_id: str, role: str) -> str:
    return (f"create Airflow connection {conn_id!r} (conn_type aws) for role {role}: e.g. "
            f"AIRFLOW_CONN_{conn_id.upper()}='{{\"conn_type\":\"aws\",\"extra\":{{\"role_arn\":"
            f"\"arn:aws:iam::<account>:role/{role}\",\"region_name\":\"<region>\"}}}}' (docs/connect-account.md)")


def require_connection(conn_id: str, role: str) -> None:
    """Raise :class:`ConnectionMissing` unless ``conn_id`` is defined (checked once per process)."""
    with _lock:
        if conn_id in _checked:
            return
    from airflow.exceptions import AirflowNotFoundException
    from airflow.providers.amazon.aws.hooks.base_aws import AwsBaseHook

    try:
        AwsBaseHook.get_connection(conn_id)
    except AirflowNotFoundException as exc:
        raise ConnectionMissing(f"connection {conn_id!r} is not defined: {connection_fix(conn_id, role)}") from exc
    with _lock:
        _checked.add(conn_id)


def executor_conn_id() -> str:
    """The executor's connection id (``AIOPS_AWS_EXECUTOR_CONN_ID``, default ``aws_executor``), verified."""
    conn_id = get_settings().aws_executor_conn_id
    require_connection(conn_id, "aiops-executor")
    return conn_id


def executor_client(service: str, *, region: str | None = None) -> Any:
    """The one place an account-changing client is created (connection ``aws_executor``)."""
    return aws.client(service, region=region, conn_id=executor_conn_id())
