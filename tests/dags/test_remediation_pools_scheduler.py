"""Acceptance (issue 19): a backlog of 20 pending remediations does not delay a live incident's.

``dag.test()`` ignores pools, so this drives the scheduler's own admission step
(``SchedulerJobRunner._executable_task_instances_to_queued``: pool slots, priorities, concurrency)
over real ``remediate`` runs in the metadata DB. Their task instances are created by Airflow
(``DagRun.verify_integrity``), with the cluster policy of ``config/airflow_local_settings.py``
registered the way Airflow loads it, so each working task lands in the pool of its run's origin.

The backlog: 20 runs waiting at ``execute`` — 10 from scheduled sweeps (``compliance_sweep``,
``cost_rightsizing``) and 10 triggered by people — older than the incident's run and with a higher
priority weight, so the scheduler would pick them first if they shared a pool. Then an incident's
run reaches ``execute``: it is queued in the very next scheduling loop while the backlog waits for
its own pools' slots. The same DB without the policy (every task in one pool) shows the incident
waiting behind the backlog — the test fails if routing breaks.
"""

from __future__ import annotations

import importlib.util
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from remediate_runs import SLOTS, remediate_run, serialized_remediate

pytestmark = [pytest.mark.airflow]

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def remediate_dag(airflow_db):
    yield from serialized_remediate()


@pytest.fixture
def policy():
    """Register config/airflow_local_settings.py as Airflow does at start-up (and remove it after)."""
    from airflow import policies, settings

    spec = importlib.util.spec_from_file_location("airflow_local_settings", REPO / "config" / "airflow_local_settings.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    pm = settings.get_policy_plugin_manager()
    before = set(pm.get_plugins())
    policies.make_plugin_from_local_settings(pm, module, set(module.__all__))
    added = set(pm.get_plugins()) - before
    was = getattr(settings.task_instance_mutation_hook, "is_noop", True)
    settings.task_instance_mutation_hook.is_noop = False
    yield
    for plugin in added:
        pm.unregister(plugin)
    settings.task_instance_mutation_hook.is_noop = was


def _at_execute(run, session, *, weight: int = 1):
    """The run has planned and been approved: ``execute`` is scheduled (what the scheduler sees)."""
    from airflow.utils.state import TaskInstanceState

    tis = {ti.task_id: ti for ti in run.get_task_instances(session=session)}
    for task_id in ("plan", "approve_1", "approve_2", "gate"):
        tis[task_id].state = TaskInstanceState.SUCCESS
    tis["execute"].state = TaskInstanceState.SCHEDULED
    tis["execute"].priority_weight = weight
    session.flush()
    return tis["execute"]


def _scheduler_loop(session):
    """One pass of the scheduler's admission step; what it queues."""
    from airflow.jobs.job import Job
    from airflow.jobs.scheduler_job_runner import SchedulerJobRunner

    runner = SchedulerJobRunner(job=Job(), num_runs=1)
    return runner._executable_task_instances_to_queued(max_tis=32, session=session)


def _backlog_and_incident(dag, session):
    now = datetime.now(UTC)
    backlog = [_at_execute(remediate_run(dag, session, n, origin=("scheduled", "manual")[n % 2],
                                at=now - timedelta(hours=20 - n)), session, weight=10) for n in range(20)]
    incident = _at_execute(remediate_run(dag, session, 0, origin="incident", at=now), session, weight=1)
    return backlog, incident


def test_backlog_of_20_remediations_does_not_delay_a_live_incident(policy, remediate_dag):
    from airflow.utils.session import create_session
    from airflow.utils.state import TaskInstanceState

    with create_session() as session:
        backlog, incident = _backlog_and_incident(remediate_dag, session)
        pools = {ti.pool for ti in backlog}
        assert pools == {"aiops_remediation_scheduled", "aiops_remediation_manual"}, pools
        assert incident.pool == "aiops_remediation_incident"
        assert {ti.task_id: ti.pool for ti in incident.dag_run.get_task_instances(session=session)
                if ti.task_id.startswith("approve")} == {"approve_1": "default_pool", "approve_2": "default_pool"}

        queued = _scheduler_loop(session)
        picked = {(ti.run_id, ti.task_id) for ti in queued}
        assert (incident.run_id, "execute") in picked  # the live incident executes in this very loop
        by_pool = {p: sum(1 for ti in queued if ti.pool == p) for p in pools}
        assert by_pool == {"aiops_remediation_scheduled": SLOTS["scheduled"],
                           "aiops_remediation_manual": SLOTS["manual"]}  # the backlog only within its slots
        assert len(queued) == 1 + SLOTS["scheduled"] + SLOTS["manual"]

        # the backlog keeps its slots (running) and the next loop still queues nothing more of it
        for ti in queued:
            ti.state = TaskInstanceState.RUNNING
        session.flush()
        assert _scheduler_loop(session) == []
        waiting = [ti for ti in backlog if ti.state == TaskInstanceState.SCHEDULED]
        assert len(waiting) == 20 - SLOTS["scheduled"] - SLOTS["manual"]


def test_without_the_pools_the_incident_waits_behind_the_backlog(remediate_dag):
    """The control: no routing policy, every task in one pool of the same total size."""
    from airflow.models.pool import Pool
    from airflow.utils.session import create_session

    Pool.create_or_update_pool("default_pool", SLOTS["scheduled"] + SLOTS["manual"], "default", False)
    try:
        with create_session() as session:
            backlog, incident = _backlog_and_incident(remediate_dag, session)
            assert {ti.pool for ti in [*backlog, incident]} == {"default_pool"}
            picked = {ti.run_id for ti in _scheduler_loop(session)}
            assert incident.run_id not in picked
            assert len(picked) == SLOTS["scheduled"] + SLOTS["manual"]
    finally:
        Pool.create_or_update_pool("default_pool", 128, "Default pool", False)
