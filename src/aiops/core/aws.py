"""Every AWS client the platform uses comes from here, through the Amazon provider's hooks.

Pointing the platform at another account (real AWS, or a fresh emulator) is a change of the
Airflow connection named by ``settings.aws_conn_id`` and nothing else: the endpoint, region and
credentials all come from that connection.
"""

from __future__ import annotations

import threading
from typing import Any

from aiops.core.settings import get_settings

_lock = threading.Lock()
_clients: dict[tuple[str, str, str | None], Any] = {}


def client(service: str, *, region: str | None = None, conn_id: str | None = None) -> Any:
    """A boto3 client for ``service`` built by ``AwsBaseHook(client_type=service)``.

    Clients are cached per (connection, service, region) within a process: building one costs
    ~50 ms and tasks build many.
    """
    from airflow.providers.amazon.aws.hooks.base_aws import AwsBaseHook

    conn_id = conn_id or get_settings().aws_conn_id
    key = (conn_id, service, region)
    with _lock:
        if key not in _clients:
            hook = AwsBaseHook(aws_conn_id=conn_id, client_type=service, region_name=region)
            _clients[key] = hook.get_conn()
        return _clients[key]


def clear_client_cache() -> None:
    """Forget cached clients (tests switch connections between emulators)."""
    with _lock:
        _clients.clear()


def account_id(*, conn_id: str | None = None) -> str:
    return client("sts", conn_id=conn_id).get_caller_identity()["Account"]


def region_of(*, conn_id: str | None = None) -> str:
    return client("sts", conn_id=conn_id).meta.region_name
