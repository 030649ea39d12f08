"""Compliance sweeps and remediation requests keyed by account (existing rows migrated).

* ``aiops_compliance_sweeps`` / ``aiops_compliance_results``: ``sweep_id`` is ``<account>-<logical
  time>`` (was the logical time alone, so two accounts swept at the same time shared one sweep and
  the second overwrote the first). Existing sweeps get their recorded ``account_id`` as prefix, in
  both tables.
* ``aiops_remediation_requests.account_id``: filled from the request's incident where it has one
  (incidents carry their account since 0002); requests without an incident stay NULL (unknown).

No schema change: only rows. Downgrade strips the prefix again.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_OLD = "s.account_id != '' AND s.sweep_id NOT LIKE s.account_id || '-%'"


def upgrade() -> None:
    op.execute(f"""
        UPDATE aiops_compliance_results SET sweep_id = (
            SELECT s.account_id || '-' || s.sweep_id FROM aiops_compliance_sweeps s
            WHERE s.sweep_id = aiops_compliance_results.sweep_id)
        WHERE sweep_id IN (SELECT s.sweep_id FROM aiops_compliance_sweeps s WHERE {_OLD})""")
    op.execute(f"""
        UPDATE aiops_compliance_sweeps SET sweep_id = account_id || '-' || sweep_id
        WHERE sweep_id IN (SELECT s.sweep_id FROM aiops_compliance_sweeps s WHERE {_OLD})""")
    op.execute("""
        UPDATE aiops_remediation_requests SET account_id = (
            SELECT i.account_id FROM aiops_incidents i
            WHERE i.incident_id = aiops_remediation_requests.incident_id AND i.account_id != '')
        WHERE account_id IS NULL AND incident_id IS NOT NULL""")


def downgrade() -> None:
    new = "s.account_id != '' AND s.sweep_id LIKE s.account_id || '-%'"
    op.execute(f"""
        UPDATE aiops_compliance_results SET sweep_id = (
            SELECT substr(s.sweep_id, length(s.account_id) + 2) FROM aiops_compliance_sweeps s
            WHERE s.sweep_id = aiops_compliance_results.sweep_id)
        WHERE sweep_id IN (SELECT s.sweep_id FROM aiops_compliance_sweeps s WHERE {new})""")
    op.execute(f"""
        UPDATE aiops_compliance_sweeps SET sweep_id = substr(sweep_id, length(account_id) + 2)
        WHERE sweep_id IN (SELECT s.sweep_id FROM aiops_compliance_sweeps s WHERE {new})""")
