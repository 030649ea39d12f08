"""baseline: the 15 tables of the hand-ordered migrations v1-v8 (7 domains).

A database made by those migrations (``aiops_schema_version``, any subset applied) upgrades through
this revision too: only the tables it lacks are created, the rest is kept as it is.

Revision ID: 0001
Revises:
Create Date: 2026-12-02 14:30:32.019816
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    existing = set(sa.inspect(op.get_bind()).get_table_names())
    if 'aiops_alert_dead_letters' not in existing:
        op.create_table('aiops_alert_dead_letters',
        sa.Column('key', sa.String(length=64), nullable=False),
        sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('reason', sa.Text(), nullable=False),
        sa.Column('source', sa.String(length=100), nullable=True),
        sa.Column('detail_type', sa.String(length=200), nullable=True),
        sa.Column('message_id', sa.String(length=200), nullable=True),
        sa.Column('body', sa.Text(), nullable=False),
        sa.Column('run_id', sa.String(length=250), nullable=True),
        sa.PrimaryKeyConstraint('key')
        )
    if 'aiops_alert_notifications' not in existing:
        op.create_table('aiops_alert_notifications',
        sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
        sa.Column('group_key', sa.String(length=250), nullable=False),
        sa.Column('incident_id', sa.String(length=40), nullable=True),
        sa.Column('severity', sa.String(length=10), nullable=False),
        sa.Column('topic', sa.String(length=300), nullable=False),
        sa.Column('status', sa.String(length=20), nullable=False),
        sa.Column('message_id', sa.String(length=200), nullable=True),
        sa.Column('subject', sa.String(length=200), nullable=False),
        sa.Column('error', sa.Text(), nullable=True),
        sa.Column('sent_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('run_id', sa.String(length=250), nullable=True),
        sa.PrimaryKeyConstraint('id')
        )
        with op.batch_alter_table('aiops_alert_notifications', schema=None) as batch_op:
            batch_op.create_index('ix_aiops_alert_notifications_group', ['group_key'], unique=False)

    if 'aiops_alerts' not in existing:
        op.create_table('aiops_alerts',
        sa.Column('event_id', sa.String(length=200), nullable=False),
        sa.Column('fingerprint', sa.String(length=64), nullable=False),
        sa.Column('source', sa.String(length=40), nullable=False),
        sa.Column('time', sa.DateTime(timezone=True), nullable=False),
        sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('state', sa.String(length=10), nullable=False),
        sa.Column('severity', sa.String(length=10), nullable=False),
        sa.Column('service', sa.String(length=100), nullable=True),
        sa.Column('env', sa.String(length=50), nullable=True),
        sa.Column('team', sa.String(length=100), nullable=True),
        sa.Column('resource', sa.String(length=500), nullable=True),
        sa.Column('scope', sa.String(length=500), nullable=False),
        sa.Column('group_key', sa.String(length=250), nullable=True),
        sa.Column('decision', sa.String(length=20), nullable=False),
        sa.Column('reason', sa.Text(), nullable=True),
        sa.Column('alert', sa.JSON(), nullable=False),
        sa.Column('run_id', sa.String(length=250), nullable=True),
        sa.PrimaryKeyConstraint('event_id')
        )
        with op.batch_alter_table('aiops_alerts', schema=None) as batch_op:
            batch_op.create_index('ix_aiops_alerts_fingerprint_time', ['fingerprint', 'time'], unique=False)
            batch_op.create_index('ix_aiops_alerts_time', ['time'], unique=False)

    if 'aiops_audit_log' not in existing:
        op.create_table('aiops_audit_log',
        sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
        sa.Column('at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('actor', sa.String(length=200), nullable=False),
        sa.Column('action', sa.String(length=100), nullable=False),
        sa.Column('subject', sa.String(length=500), nullable=False),
        sa.Column('detail', sa.JSON(), nullable=True),
        sa.Column('run_id', sa.String(length=250), nullable=True),
        sa.Column('note', sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint('id')
        )
    if 'aiops_compliance_results' not in existing:
        op.create_table('aiops_compliance_results',
        sa.Column('sweep_id', sa.String(length=100), nullable=False),
        sa.Column('check_id', sa.String(length=100), nullable=False),
        sa.Column('resource_key', sa.String(length=500), nullable=False),
        sa.Column('resource_id', sa.String(length=500), nullable=False),
        sa.Column('resource_type', sa.String(length=100), nullable=False),
        sa.Column('region', sa.String(length=30), nullable=False),
        sa.Column('status', sa.String(length=10), nullable=False),
        sa.Column('effective', sa.String(length=12), nullable=False),
        sa.Column('severity', sa.String(length=15), nullable=False),
        sa.Column('reason', sa.Text(), nullable=True),
        sa.Column('suppressed', sa.Text(), nullable=True),
        sa.Column('result', sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint('sweep_id', 'check_id', 'resource_key')
        )
        with op.batch_alter_table('aiops_compliance_results', schema=None) as batch_op:
            batch_op.create_index('ix_aiops_compliance_results_key', ['check_id', 'resource_key'], unique=False)

    if 'aiops_compliance_sweeps' not in existing:
        op.create_table('aiops_compliance_sweeps',
        sa.Column('sweep_id', sa.String(length=100), nullable=False),
        sa.Column('as_of', sa.DateTime(timezone=True), nullable=False),
        sa.Column('account_id', sa.String(length=20), nullable=False),
        sa.Column('regions', sa.JSON(), nullable=False),
        sa.Column('score', sa.Float(), nullable=True),
        sa.Column('counts', sa.JSON(), nullable=False),
        sa.Column('errors', sa.JSON(), nullable=False),
        sa.Column('diff', sa.JSON(), nullable=True),
        sa.Column('run_id', sa.String(length=250), nullable=True),
        sa.Column('recorded_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('sweep_id')
        )
        with op.batch_alter_table('aiops_compliance_sweeps', schema=None) as batch_op:
            batch_op.create_index('ix_aiops_compliance_sweeps_as_of', ['as_of'], unique=False)

    if 'aiops_cost_decisions' not in existing:
        op.create_table('aiops_cost_decisions',
        sa.Column('recommendation_id', sa.String(length=300), nullable=False),
        sa.Column('review_run_id', sa.String(length=250), nullable=False),
        sa.Column('decision', sa.String(length=10), nullable=False),
        sa.Column('decided_by', sa.String(length=200), nullable=False),
        sa.Column('decided_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('until', sa.DateTime(timezone=True), nullable=True),
        sa.Column('resource_id', sa.String(length=300), nullable=False),
        sa.Column('kind', sa.String(length=50), nullable=False),
        sa.Column('monthly_savings_usd', sa.Float(), nullable=False),
        sa.Column('runbook', sa.String(length=100), nullable=True),
        sa.Column('remediate_run_id', sa.String(length=250), nullable=True),
        sa.Column('recommendation', sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint('recommendation_id', 'review_run_id')
        )
        with op.batch_alter_table('aiops_cost_decisions', schema=None) as batch_op:
            batch_op.create_index('ix_aiops_cost_decisions_until', ['until'], unique=False)

    if 'aiops_incident_timeline' not in existing:
        op.create_table('aiops_incident_timeline',
        sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
        sa.Column('incident_id', sa.String(length=40), nullable=False),
        sa.Column('at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('kind', sa.String(length=20), nullable=False),
        sa.Column('from_state', sa.String(length=20), nullable=True),
        sa.Column('to_state', sa.String(length=20), nullable=True),
        sa.Column('actor', sa.String(length=200), nullable=False),
        sa.Column('reason', sa.Text(), nullable=True),
        sa.Column('run_id', sa.String(length=250), nullable=True),
        sa.Column('links', sa.JSON(), nullable=True),
        sa.Column('key', sa.String(length=250), nullable=True),
        sa.Column('detail', sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint('id')
        )
        with op.batch_alter_table('aiops_incident_timeline', schema=None) as batch_op:
            batch_op.create_index('ux_aiops_incident_timeline_key', ['incident_id', 'key'], unique=True)

    if 'aiops_incidents' not in existing:
        op.create_table('aiops_incidents',
        sa.Column('incident_id', sa.String(length=40), nullable=False),
        sa.Column('group_key', sa.String(length=250), nullable=False),
        sa.Column('title', sa.String(length=500), nullable=False),
        sa.Column('service', sa.String(length=100), nullable=True),
        sa.Column('env', sa.String(length=50), nullable=True),
        sa.Column('team', sa.String(length=100), nullable=True),
        sa.Column('severity', sa.String(length=10), nullable=False),
        sa.Column('root_resource', sa.String(length=500), nullable=True),
        sa.Column('state', sa.String(length=20), nullable=False),
        sa.Column('first_seen', sa.DateTime(timezone=True), nullable=False),
        sa.Column('last_seen', sa.DateTime(timezone=True), nullable=False),
        sa.Column('detected_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('triaged_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('remediation_started_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('resolved_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('escalated_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('alerts', sa.JSON(), nullable=False),
        sa.Column('routed_to', sa.JSON(), nullable=False),
        sa.Column('links', sa.JSON(), nullable=False),
        sa.Column('time_to_detect_seconds', sa.Float(), nullable=True),
        sa.Column('mttr_seconds', sa.Float(), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('incident_id'),
        sa.UniqueConstraint('group_key')
        )
        with op.batch_alter_table('aiops_incidents', schema=None) as batch_op:
            batch_op.create_index('ix_aiops_incidents_state', ['state'], unique=False)

    if 'aiops_ops_changes' not in existing:
        op.create_table('aiops_ops_changes',
        sa.Column('change_key', sa.String(length=400), nullable=False),
        sa.Column('workflow', sa.String(length=100), nullable=False),
        sa.Column('action', sa.String(length=60), nullable=False),
        sa.Column('resource_id', sa.String(length=300), nullable=False),
        sa.Column('policy', sa.String(length=100), nullable=True),
        sa.Column('status', sa.String(length=20), nullable=False),
        sa.Column('detail', sa.JSON(), nullable=True),
        sa.Column('run_id', sa.String(length=250), nullable=True),
        sa.Column('at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('change_key')
        )
        with op.batch_alter_table('aiops_ops_changes', schema=None) as batch_op:
            batch_op.create_index('ix_aiops_ops_changes_workflow_at', ['workflow', 'at'], unique=False)

    if 'aiops_remediation_requests' not in existing:
        op.create_table('aiops_remediation_requests',
        sa.Column('request_id', sa.String(length=64), nullable=False),
        sa.Column('run_id', sa.String(length=250), nullable=False),
        sa.Column('runbook', sa.String(length=100), nullable=False),
        sa.Column('parameters', sa.JSON(), nullable=False),
        sa.Column('targets', sa.JSON(), nullable=False),
        sa.Column('plan', sa.JSON(), nullable=False),
        sa.Column('requested_by', sa.String(length=200), nullable=False),
        sa.Column('reason', sa.Text(), nullable=True),
        sa.Column('incident_id', sa.String(length=100), nullable=True),
        sa.Column('status', sa.String(length=40), nullable=False),
        sa.Column('approvals', sa.JSON(), nullable=False),
        sa.Column('execution_id', sa.String(length=100), nullable=True),
        sa.Column('outcome', sa.JSON(), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('request_id')
        )
    if 'aiops_security_quarantine' not in existing:
        op.create_table('aiops_security_quarantine',
        sa.Column('log_key', sa.String(length=500), nullable=False),
        sa.Column('bucket', sa.String(length=100), nullable=False),
        sa.Column('reason', sa.Text(), nullable=False),
        sa.Column('artifact_key', sa.String(length=500), nullable=True),
        sa.Column('quarantined_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('run_id', sa.String(length=250), nullable=True),
        sa.PrimaryKeyConstraint('log_key')
        )
    if 'aiops_slo_history' not in existing:
        op.create_table('aiops_slo_history',
        sa.Column('slo_id', sa.String(length=100), nullable=False),
        sa.Column('evaluated_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('service', sa.String(length=100), nullable=False),
        sa.Column('env', sa.String(length=50), nullable=True),
        sa.Column('team', sa.String(length=100), nullable=True),
        sa.Column('objective', sa.Float(), nullable=False),
        sa.Column('window_days', sa.Integer(), nullable=False),
        sa.Column('sli', sa.Float(), nullable=True),
        sa.Column('budget_remaining', sa.Float(), nullable=True),
        sa.Column('coverage', sa.Float(), nullable=False),
        sa.Column('good', sa.Float(), nullable=False),
        sa.Column('total', sa.Float(), nullable=False),
        sa.Column('burn_rates', sa.JSON(), nullable=False),
        sa.Column('firing', sa.JSON(), nullable=False),
        sa.Column('severity', sa.String(length=10), nullable=False),
        sa.Column('alert', sa.String(length=10), nullable=True),
        sa.Column('fingerprint', sa.String(length=32), nullable=True),
        sa.PrimaryKeyConstraint('slo_id', 'evaluated_at')
        )
        with op.batch_alter_table('aiops_slo_history', schema=None) as batch_op:
            batch_op.create_index('ix_aiops_slo_history_service_time', ['service', 'evaluated_at'], unique=False)

    if 'aiops_watermarks' not in existing:
        op.create_table('aiops_watermarks',
        sa.Column('name', sa.String(length=200), nullable=False),
        sa.Column('value', sa.DateTime(timezone=True), nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('run_id', sa.String(length=250), nullable=True),
        sa.PrimaryKeyConstraint('name')
        )


def downgrade() -> None:
    op.drop_table('aiops_watermarks')
    with op.batch_alter_table('aiops_slo_history', schema=None) as batch_op:
        batch_op.drop_index('ix_aiops_slo_history_service_time')

    op.drop_table('aiops_slo_history')
    op.drop_table('aiops_security_quarantine')
    op.drop_table('aiops_remediation_requests')
    with op.batch_alter_table('aiops_ops_changes', schema=None) as batch_op:
        batch_op.drop_index('ix_aiops_ops_changes_workflow_at')

    op.drop_table('aiops_ops_changes')
    with op.batch_alter_table('aiops_incidents', schema=None) as batch_op:
        batch_op.drop_index('ix_aiops_incidents_state')

    op.drop_table('aiops_incidents')
    with op.batch_alter_table('aiops_incident_timeline', schema=None) as batch_op:
        batch_op.drop_index('ux_aiops_incident_timeline_key')

    op.drop_table('aiops_incident_timeline')
    with op.batch_alter_table('aiops_cost_decisions', schema=None) as batch_op:
        batch_op.drop_index('ix_aiops_cost_decisions_until')

    op.drop_table('aiops_cost_decisions')
    with op.batch_alter_table('aiops_compliance_sweeps', schema=None) as batch_op:
        batch_op.drop_index('ix_aiops_compliance_sweeps_as_of')

    op.drop_table('aiops_compliance_sweeps')
    with op.batch_alter_table('aiops_compliance_results', schema=None) as batch_op:
        batch_op.drop_index('ix_aiops_compliance_results_key')

    op.drop_table('aiops_compliance_results')
    op.drop_table('aiops_audit_log')
    with op.batch_alter_table('aiops_alerts', schema=None) as batch_op:
        batch_op.drop_index('ix_aiops_alerts_time')
        batch_op.drop_index('ix_aiops_alerts_fingerprint_time')

    op.drop_table('aiops_alerts')
    with op.batch_alter_table('aiops_alert_notifications', schema=None) as batch_op:
        batch_op.drop_index('ix_aiops_alert_notifications_group')

    op.drop_table('aiops_alert_notifications')
    op.drop_table('aiops_alert_dead_letters')
