"""State keyed by account: watermarks and incidents per AWS account; decisions carry it.

* ``aiops_watermarks``: primary key (name, account_id). Rows from before carry account ``''``, which no
  connection resolves to, so the first run per account re-checks its history (the safe direction).
* ``aiops_incidents``: ``account_id``; ``group_key`` is unique per account (was: globally).
* ``aiops_cost_decisions``, ``aiops_remediation_requests``: ``account_id`` (NULL on older rows).

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

# SQLite reflects the old, inline constraints without names: batch mode names them by this convention
# so they can be dropped; Postgres named them itself (<table>_pkey, <table>_<column>_key).
_CONVENTION = {"uq": "uq_%(table_name)s_%(column_0_name)s", "pk": "pk_%(table_name)s"}


def _names() -> tuple[str, str]:
    if op.get_bind().dialect.name == "postgresql":
        return "aiops_watermarks_pkey", "aiops_incidents_group_key_key"
    return "pk_aiops_watermarks", "uq_aiops_incidents_group_key"


def upgrade() -> None:
    watermark_pk, group_key_uq = _names()
    with op.batch_alter_table("aiops_watermarks", naming_convention=_CONVENTION, recreate="auto") as batch:
        batch.add_column(sa.Column("account_id", sa.String(20), nullable=False, server_default=""))
        batch.drop_constraint(watermark_pk, type_="primary")
        batch.create_primary_key("pk_aiops_watermarks", ["name", "account_id"])
    with op.batch_alter_table("aiops_incidents", naming_convention=_CONVENTION, recreate="auto") as batch:
        batch.add_column(sa.Column("account_id", sa.String(20), nullable=False, server_default=""))
        batch.drop_constraint(group_key_uq, type_="unique")
        batch.create_unique_constraint("uq_aiops_incidents_account_group", ["account_id", "group_key"])
    for table in ("aiops_cost_decisions", "aiops_remediation_requests"):
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("account_id", sa.String(20), nullable=True))


def downgrade() -> None:
    for table in ("aiops_cost_decisions", "aiops_remediation_requests"):
        with op.batch_alter_table(table) as batch:
            batch.drop_column("account_id")
    with op.batch_alter_table("aiops_incidents") as batch:
        batch.drop_constraint("uq_aiops_incidents_account_group", type_="unique")
        batch.drop_column("account_id")
        batch.create_unique_constraint("uq_aiops_incidents_group_key", ["group_key"])
    with op.batch_alter_table("aiops_watermarks") as batch:
        batch.drop_constraint("pk_aiops_watermarks", type_="primary")
        batch.drop_column("account_id")
        batch.create_primary_key("pk_aiops_watermarks", ["name"])
