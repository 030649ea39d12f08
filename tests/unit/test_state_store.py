"""The state store: self-managed schema, watermarks, audit trail."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from aiops.core import state


@pytest.fixture
def store(tmp_path):
    return state.StateStore(f"sqlite:///{tmp_path / 'state.db'}")


def test_migrate_applies_every_migration_once(store):
    assert store.migrate() == [v for v, _, _ in state.MIGRATIONS]
    assert store.migrate() == []
    assert store.schema_version() == max(v for v, _, _ in state.MIGRATIONS)  # reserved numbers land out of order


def test_watermark_round_trips_in_utc(store):
    moment = datetime(2026, 11, 20, 12, tzinfo=UTC)
    store.set_watermark("x", moment, run_id="r1")
    assert store.get_watermark("x") == moment


def test_watermark_never_moves_backwards(store):
    late = datetime(2026, 11, 20, 12, tzinfo=UTC)
    store.set_watermark("x", late)
    store.set_watermark("x", late - timedelta(days=3))  # a backfill of the past
    assert store.get_watermark("x") == late


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
