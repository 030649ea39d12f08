"""metrics_extract end to end with dag.test() on the simulated account."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

pytestmark = [pytest.mark.airflow, pytest.mark.emulator, pytest.mark.slow]
ANCHOR = datetime(2026, 11, 20, 12, tzinfo=UTC)


@pytest.fixture
def short_history(monkeypatch):
    # Two days instead of fourteen keeps the run under a minute; the planning tests cover 14.
    from aiops.core.settings import get_settings

    monkeypatch.setenv("AIOPS_METRICS_HISTORY_DAYS", "2")
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def test_first_run_pulls_history_and_lands_the_seeded_series(airflow_db, seeded, isolated_stores, short_history):
    from airflow.dag_processing.dagbag import DagBag

    from aiops.metrics.store import MetricsStore

    dag = DagBag(dag_folder="dags/metrics_extract.py").get_dag("metrics_extract")
    run = dag.test(logical_date=ANCHOR)  # a manual run infers the interval ending at ANCHOR
    states = {ti.task_id: ti.state for ti in run.get_task_instances()}
    assert run.state == "success", states

    store = MetricsStore()
    assert store.days() == ["2026-11-18", "2026-11-19", "2026-11-20"]
    frame = store.read(ANCHOR - timedelta(days=2), ANCHOR)
    assert len(frame) == len(seeded.series) * 2 * 288
    by_id = {s.series_id: s for s in seeded.series}
    for sid, rows in frame.groupby("series_id"):
        t = (rows["timestamp"].astype("int64") // 10**9).to_numpy()
        assert np.allclose(rows["value"].to_numpy(), by_id[sid].values(t), atol=1e-5), sid

    # ... and the Asset downstream DAGs are scheduled on was updated with what changed.
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        event = session.scalars(
            select(AssetEvent).join(AssetModel, AssetEvent.asset_id == AssetModel.id)
            .where(AssetModel.name == "aiops_metrics_cloudwatch").order_by(AssetEvent.id.desc())).first()
        assert event is not None
        assert event.extra["rows"] == len(frame)
        assert event.extra["end"].startswith("2026-11-20T12:00")
