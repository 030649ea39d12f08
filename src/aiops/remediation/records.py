"""The change engine's records of direct changes (``aiops_ops_changes``, state store migration 8).

One row per change key (status ``done``, ``failed``, ``refused``, or ``sent`` for a patch batch
whose command is out). ``is_done`` is what makes a re-run of an interval change nothing twice;
the audit trail (``aiops_audit_log``) keeps the human-readable history next to the runbooks'.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import insert, select, update

from aiops.core.state import StateStore, ops_changes

if TYPE_CHECKING:
    from aiops.remediation.actions import Change


def _store() -> Any:
    store = StateStore()
    store._ready()
    return store


def is_done(key: str) -> bool:
    store = _store()
    with store.engine.connect() as conn:
        status = conn.execute(select(ops_changes.c.status).where(ops_changes.c.change_key == key)).scalar()
    return status == "done"


def record(change: Change, *, workflow: str, status: str, detail: dict[str, Any] | None,
           run_id: str | None) -> None:
    """Upsert the row of ``change.key`` (a failed change retried and done becomes done)."""
    store = _store()
    values = {"workflow": workflow, "action": change.action, "resource_id": change.resource_id,
              "policy": change.policy, "status": status, "run_id": run_id, "at": datetime.now(UTC),
              "detail": json.loads(json.dumps(detail or {}, default=str))}
    with store.engine.begin() as conn:
        exists = conn.execute(select(ops_changes.c.change_key).where(ops_changes.c.change_key == change.key)).scalar()
        if exists:
            conn.execute(update(ops_changes).where(ops_changes.c.change_key == change.key).values(**values))
        else:
            conn.execute(insert(ops_changes).values(change_key=change.key, **values))


def changes(workflow: str | None = None) -> list[dict[str, Any]]:
    store = _store()
    query = select(ops_changes).order_by(ops_changes.c.at)
    if workflow:
        query = query.where(ops_changes.c.workflow == workflow)
    with store.engine.connect() as conn:
        return [dict(row._mapping) for row in conn.execute(query)]


def get(key: str) -> dict[str, Any] | None:
    store = _store()
    with store.engine.connect() as conn:
        row = conn.execute(select(ops_changes).where(ops_changes.c.change_key == key)).first()
    return dict(row._mapping) if row else None
