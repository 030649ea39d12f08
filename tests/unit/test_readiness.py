"""Analyses wait for their data (issue 19): the coverage checks say what is missing; a DAG task turns
that into a skip with the reason; and the CLI's quick connection lookup agrees with Airflow's rules."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest

from aiops.core.readiness import Coverage, DataNotReady, require_slo_history
from aiops.metrics import readiness
from aiops.metrics.readiness import require_metrics

NOW = datetime(2026, 12, 2, 6, 30, tzinfo=UTC)


def test_no_extraction_yet_is_not_ready():
    with pytest.raises(DataNotReady, match="metrics_extract has not completed a run yet"):
        require_metrics("cost_rightsizing", days=14, coverage=Coverage(since=None, until=None))


def test_partial_history_is_not_ready_and_says_how_much_there_is():
    partial = Coverage(since=NOW - timedelta(days=3), until=NOW)
    with pytest.raises(DataNotReady, match=r"needs 14 day\(s\) of metrics, the store holds 3.0 day"):
        require_metrics("cost_rightsizing", days=14, coverage=partial)
    full = Coverage(since=NOW - timedelta(days=14, minutes=5), until=NOW)
    assert require_metrics("cost_rightsizing", days=14, coverage=full) is full


def test_data_not_complete_up_to_the_needed_time_is_not_ready():
    cov = Coverage(since=NOW - timedelta(days=14), until=NOW - timedelta(hours=3))
    with pytest.raises(DataNotReady, match="complete only up to"):
        require_metrics("anomaly_refit", days=0.5, until=NOW, coverage=cov)


def test_weekly_slo_report_needs_the_whole_week():
    start, end = NOW - timedelta(days=7), NOW
    with pytest.raises(DataNotReady, match="no SLO history"):
        require_slo_history("slo_weekly_report", start, end, pd.DataFrame(columns=["evaluated_at"]))
    two_days = pd.DataFrame({"evaluated_at": pd.date_range(end - timedelta(days=2), end, freq="5min", tz="UTC")})
    with pytest.raises(DataNotReady, match=r"covers .* \(2.0 of 7.0 days\); backfill slo_tracking"):
        require_slo_history("slo_weekly_report", start, end, two_days)
    week = pd.DataFrame({"evaluated_at": pd.date_range(start + timedelta(minutes=5), end - timedelta(minutes=20),
                                                       freq="5min", tz="UTC")})
    require_slo_history("slo_weekly_report", start, end, week)


def test_a_dag_task_skips_with_the_reason():
    from airflow.exceptions import AirflowSkipException

    from aiops.airflow import data_ready

    with pytest.raises(AirflowSkipException, match="cost_rightsizing: skipped, data not ready: it needs 14"):
        data_ready(require_metrics, "cost_rightsizing", days=14,
                   coverage=Coverage(since=NOW - timedelta(days=1), until=NOW))
    assert data_ready(lambda: 42) == 42


def test_metrics_coverage_reads_the_watermark_and_the_oldest_point(monkeypatch):
    class Store:
        def days(self):
            return ["2026-11-20", "2026-11-21"]

        def read_day(self, day):
            if str(day) == "2026-11-20":
                return pd.DataFrame({"timestamp": pd.Series([], dtype="datetime64[ns, UTC]")})  # quarantined
            return pd.DataFrame({"timestamp": pd.to_datetime(["2026-11-21T00:05Z", "2026-11-21T00:10Z"], utc=True)})

    monkeypatch.setattr("aiops.metrics.store.MetricsStore", Store)
    # the connected account's trusted watermark (tests/emulator/test_metrics_pipeline.py covers it)
    monkeypatch.setattr("aiops.metrics.pipeline.data_until", lambda *a, **k: datetime(2026, 11, 22, 0, 0))
    cov = readiness.metrics_coverage()
    assert cov.since == datetime(2026, 11, 21, 0, 5, tzinfo=UTC)
    assert cov.until == datetime(2026, 11, 22, tzinfo=UTC)
    assert cov.days == pytest.approx(1 - 5 / 1440)


# --- aiops.core.connections: the state store's connection without importing Airflow -------------
def test_quick_connection_env_json_and_postgres_uri(monkeypatch, tmp_path):
    from aiops.core.connections import quick_connection

    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path))
    monkeypatch.setenv("AIRFLOW_CONN_AIOPS_STATE", json.dumps({"conn_type": "sqlite", "host": "/data/state.db"}))
    decided, conn = quick_connection("aiops_state")
    assert decided
    assert (conn.conn_type, conn.host) == ("sqlite", "/data/state.db")
    monkeypatch.setenv("AIRFLOW_CONN_AIOPS_STATE", "postgresql://u:p%40ss@db:5432/aiops_state")
    decided, conn = quick_connection("aiops_state")
    assert decided
    assert conn.get_uri() == "postgres://u:p%40ss@db:5432/aiops_state"
    monkeypatch.setenv("AIRFLOW_CONN_AIOPS_STATE", "mysql://u:p@db/x")  # not a plain case: ask Airflow
    assert quick_connection("aiops_state") == (False, None)


def test_quick_connection_defers_to_airflow_when_it_cannot_be_sure(monkeypatch, tmp_path):
    import sqlite3

    from aiops.core.connections import quick_connection

    monkeypatch.delenv("AIRFLOW_CONN_AIOPS_STATE", raising=False)
    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path))
    monkeypatch.delenv("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", raising=False)
    monkeypatch.delenv("AIRFLOW__SECRETS__BACKEND", raising=False)
    assert quick_connection("aiops_state") == (True, None)  # no metadata DB: not defined anywhere
    db = sqlite3.connect(tmp_path / "airflow.db")
    db.execute("CREATE TABLE connection (conn_id, conn_type, host, schema, login, password, port, extra, "
               "is_encrypted, is_extra_encrypted)")
    db.execute("INSERT INTO connection VALUES ('aiops_state', 'postgres', 'db', 'st', 'u', 'p', 5432, '', 0, 0)")
    db.execute("INSERT INTO connection VALUES ('secret', 'postgres', 'db', 'st', 'u', 'gAAAA', 5432, '', 1, 0)")
    db.commit()
    db.close()
    decided, conn = quick_connection("aiops_state")
    assert decided
    assert conn.get_uri() == "postgres://u:p@db:5432/st"
    assert quick_connection("secret") == (False, None)  # Fernet-encrypted: Airflow decrypts
    assert quick_connection("missing") == (True, None)
    monkeypatch.setenv("AIRFLOW__SECRETS__BACKEND", "airflow.providers.amazon.aws.secrets.SecretsManagerBackend")
    assert quick_connection("aiops_state") == (False, None)  # a secrets backend comes first
