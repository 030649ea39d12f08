"""Every AWS client the platform uses comes from here, through the Amazon provider's hooks.

Pointing the platform at another account (real AWS, or a fresh emulator) is a change of the
Airflow connection named by ``settings.aws_conn_id`` and nothing else: the endpoint, region and
credentials all come from that connection.


Retries are one policy for every client, set here (:data:`DEFAULT_RETRIES`): botocore's
``standard`` mode with more attempts than its default, whose throttle codes include Cost
Explorer's ``LimitExceededException``, EC2's ``RequestLimitExceeded``, CloudWatch's ``Throttling``
and SSM's ``ThrottlingException``; :data:`EXTRA_THROTTLE_CODES` adds the few AWS throttle codes
botocore does not know. The connection overrides any of it through its extra ``config_kwargs``
(``{"retries": {"mode": "adaptive", "max_attempts": 20}}`` merges over the default). Sync clients
(:func:`client`), operators (:func:`botocore_config` as ``botocore_config=``) and triggers (the same
dict, serialised with the trigger) all get it from :func:`botocore_config`.
"""

from __future__ import annotations

import logging
import random
import threading
from typing import Any

from aiops.account.permissions import permissions
from aiops.core.settings import get_settings

log = logging.getLogger(__name__)
PERMISSIONS = permissions(
    "the caller's account and region",
    reader=(
        "sts:GetCallerIdentity",
    ),
)

_lock = threading.Lock()
_clients: dict[tuple[str, str, str | None], Any] = {}

#: botocore standard mode: exponential backoff with jitter (base 2 s cap 20 s), a retry quota per client.
DEFAULT_RETRIES: dict[str, Any] = {"mode": "standard", "max_attempts": 10}
#: Throttle codes AWS services return that botocore's standard mode does not list.
EXTRA_THROTTLE_CODES = frozenset({
    "TooManyUpdates",  # SSM PutParameter / document updates
    "ThrottledException", "RequestThrottled", "AWS.SimpleQueueService.RequestThrottled",
    "OperationAbortedException",  # S3 / CloudWatch Logs: a conflicting operation in flight
    "ServiceUnavailable", "ServiceUnavailableException", "InternalFailure",
})


def botocore_config(conn_id: str | None = None, override: dict[str, Any] | None = None) -> dict[str, Any]:
    """The botocore ``Config`` kwargs every client of ``conn_id`` uses: the default retry policy, then
    the connection's extra ``config_kwargs``, then ``override`` (``retries`` dicts merge key by key).
    A plain dict so operators and triggers can carry it (``botocore_config=``)."""
    out: dict[str, Any] = {"retries": dict(DEFAULT_RETRIES)}
    for layer in (_connection_config_kwargs(conn_id or get_settings().aws_conn_id), override or {}):
        for key, value in layer.items():
            if key == "retries" and isinstance(value, dict):
                out["retries"] = {**out["retries"], **value}
            else:
                out[key] = value
    return out


def _connection_config_kwargs(conn_id: str) -> dict[str, Any]:
    try:
        from airflow.sdk import BaseHook

        extra = BaseHook.get_connection(conn_id).extra_dejson
    except Exception:  # no such connection: the hook reports that where it matters
        return {}
    value = extra.get("config_kwargs") or {}
    return dict(value) if isinstance(value, dict) else {}


def _extra_throttle_retry(max_attempts: int) -> Any:
    """A ``needs-retry`` handler retrying :data:`EXTRA_THROTTLE_CODES` with capped jittered backoff
    within the same attempt budget (botocore's handler says "no" to them)."""

    def handler(response: Any = None, attempts: int = 1, caught_exception: Any = None, **_: Any) -> float | None:
        if response is None or caught_exception is not None or attempts >= max_attempts:
            return None
        parsed = response[1] if isinstance(response, tuple) and len(response) > 1 else {}
        code = (parsed or {}).get("Error", {}).get("Code")
        if code not in EXTRA_THROTTLE_CODES:
            return None
        delay = min(20.0, random.random() * (2 ** attempts))
        log.info("AWS throttled (%s), retry %d/%d in %.2fs", code, attempts, max_attempts - 1, delay)
        return delay
    return handler


def install_retry_hooks(boto_client: Any, config: dict[str, Any]) -> Any:
    """Register the extra-throttle-code retry on a (sync or aiobotocore) client; returns it."""
    attempts = int((config.get("retries") or {}).get("max_attempts") or DEFAULT_RETRIES["max_attempts"])
    boto_client.meta.events.register("needs-retry", _extra_throttle_retry(attempts),
                                     unique_id="aiops-extra-throttle-retry")
    return boto_client


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
            config = botocore_config(conn_id)
            hook = AwsBaseHook(aws_conn_id=conn_id, client_type=service, region_name=region, config=config)
            _clients[key] = install_retry_hooks(hook.get_conn(), config)
        return _clients[key]


def clear_client_cache() -> None:
    """Forget cached clients (tests switch connections between emulators)."""
    with _lock:
        _clients.clear()


def account_id(*, conn_id: str | None = None) -> str:
    return client("sts", conn_id=conn_id).get_caller_identity()["Account"]


def region_of(*, conn_id: str | None = None) -> str:
    return client("sts", conn_id=conn_id).meta.region_name
