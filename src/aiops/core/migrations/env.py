"""Alembic environment of the state store.

Run only through :meth:`aiops.core.state.StateStore.migrate`, which hands over a connection that
already holds the migration lock (SQLite: ``BEGIN IMMEDIATE``; Postgres: an advisory transaction
lock) inside its transaction, so the revisions below run once even when many processes start at once.
"""

from __future__ import annotations

from alembic import context

from aiops.core.state import LEGACY_VERSION_TABLE, VERSION_TABLE, metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run state-store migrations through `aiops state migrate` (StateStore.migrate)")



def include_name(name: str | None, type_: str, parent_names: object) -> bool:
    # The pre-Alembic version table stays as a record of what was applied; it is not part of the model.
    return not (type_ == "table" and name == LEGACY_VERSION_TABLE)


context.configure(connection=connection, target_metadata=metadata, version_table=VERSION_TABLE,
                  render_as_batch=True, compare_type=True, include_name=include_name)
with context.begin_transaction():
    context.run_migrations()
