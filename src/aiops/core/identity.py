"""Which AWS account the platform is connected to: STS ``GetCallerIdentity`` through the Airflow AWS
connection (``aiops.core.aws``), asked once per connection client and remembered.

State that belongs to an account (watermarks, incidents, compliance history, decisions) is keyed by
this id, so pointing the connection at another account starts that account's history instead of
trusting the first account's.
"""

from __future__ import annotations

import threading
import weakref
from typing import Any

from aiops.account.permissions import permissions
from aiops.core import aws

PERMISSIONS = permissions("the connected account's id", reader=("sts:GetCallerIdentity",))

_lock = threading.Lock()
# Keyed by the cached STS client itself: a changed connection (aws.clear_client_cache(), a new task
# process) builds a new client and therefore asks again.
_accounts: weakref.WeakKeyDictionary[Any, str] = weakref.WeakKeyDictionary()


def current_account(*, conn_id: str | None = None) -> str:
    """The 12-digit account id of the AWS connection ``conn_id`` (default: ``settings.aws_conn_id``)."""
    sts = aws.client("sts", conn_id=conn_id)
    with _lock:
        cached = _accounts.get(sts)
    if cached is not None:
        return cached
    account = str(sts.get_caller_identity()["Account"])
    with _lock:
        _accounts[sts] = account
    return account
