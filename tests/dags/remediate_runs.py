"""Fixtures for DAG tests that need real ``remediate`` runs in the metadata DB (scheduler logic, the
HITL API): the DAG serialized as the DAG processor would, the remediation pools, runs per origin."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SLOTS = {"incident": 4, "scheduled": 2, "manual": 2}


def serialized_remediate():
    """The real remediate DAG, serialized into the metadata DB (as the DAG processor would), unpaused,
    the pools created; no remediate runs before or after (a generator for a fixture)."""
    from airflow.dag_processing.bundles.manager import DagBundlesManager
    from airflow.dag_processing.dagbag import BundleDagBag, sync_bag_to_db
    from airflow.models.dag import DagModel
    from airflow.models.pool import Pool
    from airflow.models.serialized_dag import SerializedDagModel
    from airflow.utils.session import create_session
    from sqlalchemy import delete, update

    from aiops.airflow.pools import ensure_pools

    DagBundlesManager().sync_bundles_to_db()
    bundle = next(iter(DagBundlesManager().get_all_dag_bundles()))
    bag = BundleDagBag(dag_folder=str(REPO / "dags" / "remediate.py"), bundle_path=REPO / "dags",
                       bundle_name=bundle.name)
    assert "remediate" in bag.dags, bag.import_errors
    sync_bag_to_db(bag, bundle.name, None)
    ensure_pools(SLOTS)
    with create_session() as session:
        session.execute(update(DagModel).where(DagModel.dag_id == "remediate").values(is_paused=False))
        _delete_runs(session)
    yield SerializedDagModel.get_dag("remediate")
    with create_session() as session:
        _delete_runs(session)
        for origin in SLOTS:
            session.execute(delete(Pool).where(Pool.pool == f"aiops_remediation_{origin}"))


def remediate_run(dag, session, n: int, *, origin: str, at: datetime):
    """A remediate run as its origin creates it (TriggerDagRunOperator from a platform DAG, or a person)."""
    from airflow.utils.state import DagRunState
    from airflow.utils.types import DagRunTriggeredByType, DagRunType

    component = {"incident": "incident_response", "scheduled": ("compliance_sweep", "cost_rightsizing")[n % 2]}
    manual = origin == "manual"
    return dag.create_dagrun(
        run_id=f"{origin}-{n:02d}", logical_date=None, data_interval=None, run_after=at,
        conf={"runbook": "reboot-ec2-instance", "parameters": {"InstanceId": f"i-{n:017x}"},
              "requested_by": "" if manual else component[origin]},
        run_type=DagRunType.MANUAL if manual else DagRunType.OPERATOR_TRIGGERED,
        state=DagRunState.RUNNING,
        triggered_by=DagRunTriggeredByType.UI if manual else DagRunTriggeredByType.OPERATOR,
        triggering_user_name="bob.ops" if manual else None,
        start_date=at, session=session)




def _delete_runs(session) -> None:
    from airflow.models.dagrun import DagRun
    from airflow.models.hitl import HITLDetail
    from airflow.models.taskinstance import TaskInstance
    from sqlalchemy import delete, select

    tis = select(TaskInstance.id).where(TaskInstance.dag_id == "remediate")
    session.execute(delete(HITLDetail).where(HITLDetail.ti_id.in_(tis)))
    session.execute(delete(TaskInstance).where(TaskInstance.dag_id == "remediate"))
    session.execute(delete(DagRun).where(DagRun.dag_id == "remediate"))
