"""The state store: Alembic-managed schema (fresh, up to date, pre-Alembic databases), watermarks per
account, audit trail."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from aiops.core import state

LEGACY = Path(__file__).resolve().parents[1] / "fixtures" / "state"


@pytest.fixture
def store(tmp_path):
    return state.StateStore(f"sqlite:///{tmp_path / 'state.db'}")


def _schema_drift(store: state.StateStore) -> list:
    """What Alembic's autogenerate would still change: the model and the migrated database agree when empty."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    with store.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={
            "version_table": state.VERSION_TABLE, "compare_type": True,
            "include_name": lambda name, type_, _: not (type_ == "table" and name == state.LEGACY_VERSION_TABLE)})
        return compare_metadata(context, state.metadata)


def test_migrate_applies_every_revision_once_on_each_database(state_url):
    store = state.StateStore(state_url)
    applied = store.migrate()
    assert applied[0] == "0001"
    assert applied[-1] == state.head_revision()
    assert store.migrate() == []
    assert store.schema_revision() == state.head_revision()
    assert _schema_drift(store) == []  # the revisions build exactly the tables the code declares


@pytest.mark.parametrize("dump", [pytest.param("legacy_v1_v8.sql", id="all_8_legacy_migrations"),
                                  pytest.param("legacy_v1_v3.sql", id="legacy_v1_to_v3_only")])
def test_a_pre_alembic_database_upgrades_and_keeps_its_data(tmp_path, dump):
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as con:  # made by the hand-ordered migrations (aiops_schema_version)
        con.executescript((LEGACY / dump).read_text())
    store = state.StateStore(f"sqlite:///{path}")
    assert store.migrate() == ["0001", "0002", "0003"]
    assert _schema_drift(store) == []
    # its rows survive; the watermark is not bound to any account ('' until re-established)
    assert store.get_watermark("metrics_extract") == datetime(2026, 11, 20, 12, tzinfo=UTC)
    assert store.audit_entries("runbook:restart-ec2")[0]["actor"] == "alice.sre"
    if "v8" in dump:
        from aiops.incidents import store as incidents

        assert incidents.get("INC-LEGACY00001", store=store)["alerts"] == [{"event_id": "e1"}]


def test_sqlite_runs_in_wal_mode(store):
    store.migrate()
    with store.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == state.BUSY_TIMEOUT_SECONDS * 1000


def test_watermark_round_trips_in_utc(store):
    moment = datetime(2026, 11, 20, 12, tzinfo=UTC)
    store.set_watermark("x", moment, run_id="r1")
    assert store.get_watermark("x") == moment


def test_watermark_never_moves_backwards(store):
    late = datetime(2026, 11, 20, 12, tzinfo=UTC)
    store.set_watermark("x", late)
    store.set_watermark("x", late - timedelta(days=3))  # a backfill of the past
    assert store.get_watermark("x") == late


def test_watermarks_are_per_account(store):
    moment = datetime(2026, 11, 20, 12, tzinfo=UTC)
    store.set_watermark("metrics_extract", moment, account_id="111111111111")
    assert store.get_watermark("metrics_extract", account_id="111111111111") == moment
    assert store.get_watermark("metrics_extract", account_id="222222222222") is None
    store.clear_watermark("metrics_extract", account_id="111111111111")
    assert store.get_watermark("metrics_extract", account_id="111111111111") is None


def test_missing_watermark_is_none(store):
    assert store.get_watermark("never-set") is None


def test_audit_entries_keep_who_did_what(store):
    store.audit(actor="alice.sre", action="approve", subject="runbook:restart-ec2", detail={"targets": ["i-1"]},
                run_id="manual__1")
    entries = store.audit_entries("runbook:restart-ec2")
    assert [(e["actor"], e["action"], e["detail"]) for e in entries] == [
        ("alice.sre", "approve", {"targets": ["i-1"]})]


def test_default_url_is_a_sqlite_file_under_home(monkeypatch, tmp_path):
    from aiops.core.settings import get_settings

    monkeypatch.setenv("AIOPS_HOME", str(tmp_path))
    monkeypatch.delenv("AIRFLOW_CONN_AIOPS_STATE", raising=False)
    get_settings.cache_clear()
    try:
        assert state.state_db_url() == f"sqlite:///{tmp_path}/state.db"
    finally:
        get_settings.cache_clear()


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        pytest.param("postgresql://u:p@db:5432/aiops_state", "postgresql+psycopg2://u:p@db:5432/aiops_state",
                     id="postgres"),
        pytest.param("sqlite:///tmp/x.db", "sqlite:////tmp/x.db", id="sqlite"),
    ],
)
def test_url_comes_from_the_airflow_connection(monkeypatch, uri, expected):
    monkeypatch.setenv("AIRFLOW_CONN_AIOPS_STATE", uri)
    assert state.state_db_url() == expected


def test_revision_0003_keys_existing_sweeps_and_requests_by_account(state_url):
    """Rows recorded before 0003: sweeps get their account as id prefix (results follow), remediation
    requests get the account of their incident."""
    from alembic import command
    from sqlalchemy import insert, select

    store = state.StateStore(state_url)
    with store.transaction() as conn:
        command.upgrade(state._alembic_config(conn), "0002")
    now = datetime(2026, 11, 20, 12, tzinfo=UTC)
    with store.transaction() as conn:
        for sweep, account in (("2026-11-19T000000Z", "111111111111"), ("2026-11-20T000000Z", "111111111111")):
            conn.execute(insert(state.compliance_sweeps).values(
                sweep_id=sweep, as_of=now, account_id=account, regions=["us-east-1"], counts={}, errors={},
                recorded_at=now))
            conn.execute(insert(state.compliance_results).values(
                sweep_id=sweep, check_id="c1", resource_key="arn:x", resource_id="x", resource_type="t",
                region="us-east-1", status="FAILED", effective="FAILED", severity="HIGH", result={}))
        conn.execute(insert(state.incidents).values(
            incident_id="INC-1", account_id="111111111111", group_key="g", title="t", severity="high",
            state="open", first_seen=now, last_seen=now, detected_at=now, alerts=[], routed_to=[], links={},
            created_at=now, updated_at=now))
        for rid, incident in (("r1", "INC-1"), ("r2", None)):
            conn.execute(insert(state.remediation_requests).values(
                request_id=rid, run_id=rid, runbook="rb", parameters={}, targets=[], plan={}, requested_by="u",
                incident_id=incident, status="requested", approvals=[], created_at=now, updated_at=now))
    assert store.migrate()[0] == "0003"
    with store.engine.connect() as conn:
        sweeps = sorted(conn.execute(select(state.compliance_sweeps.c.sweep_id)).scalars())
        results = sorted(conn.execute(select(state.compliance_results.c.sweep_id)).scalars())
        accounts = dict(conn.execute(select(state.remediation_requests.c.request_id,
                                            state.remediation_requests.c.account_id)).all())
    assert sweeps == results == ["111111111111-2026-11-19T000000Z", "111111111111-2026-11-20T000000Z"]
    assert accounts == {"r1": "111111111111", "r2": None}
    assert store.migrate() == []  # once

