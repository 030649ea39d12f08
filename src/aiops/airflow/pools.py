"""Fair remediation capacity: one Airflow pool per request origin.

``remediate`` runs come from three places — incidents (``incident_response``), scheduled sweeps
(``compliance_sweep``, ``cost_rightsizing``) and people (manual triggers). Each origin has its own
pool (``aiops_remediation_incident`` / ``_scheduled`` / ``_manual``, slots from
``settings.remediation_pools``), so a backlog of scheduled or manual requests cannot take the
slots a live incident needs.

The pool is picked per run, from the run's origin, by Airflow's cluster policy
``task_instance_mutation_hook`` (``config/airflow_local_settings.py`` re-exports
:func:`task_instance_mutation_hook`). The origin is decided as the requester is
(:func:`aiops.remediation.approvals.resolve_requester`): a manual run is ``manual`` whatever its
conf says. A pool that does not exist is never routed to (the task keeps its DAG pool), so a
deployment that did not create the pools keeps working; :func:`ensure_pools` creates them
(``aiops remediation pools`` / the dev runner).
"""

from __future__ import annotations

import logging
from typing import Any

from aiops.core.settings import get_settings
from aiops.remediation.approvals import resolve_requester

log = logging.getLogger(__name__)

REMEDIATE_DAG = "remediate"
POOL_PREFIX = "aiops_remediation_"
#: Tasks of ``remediate`` that do AWS work (the approvals wait without a slot).
POOLED_TASKS = frozenset({"plan", "gate", "execute", "verify", "record"})


def pool_name(origin: str) -> str:
    return f"{POOL_PREFIX}{origin}"


def origin_of(dag_run: Any) -> str:
    conf = getattr(dag_run, "conf", None) or {}
    try:
        return resolve_requester(run_type=getattr(dag_run, "run_type", None),
                                 triggering_user=getattr(dag_run, "triggering_user_name", None),
                                 conf=conf if isinstance(conf, dict) else {}).origin
    except Exception:
        return "manual"


def _pool_exists(name: str) -> bool:
    # A session of its own (not the scoped one): the hook runs inside the scheduler's session while
    # it creates task instances, and closing that session here would abort the scheduler's work.
    try:
        from airflow.models.pool import Pool
        from airflow.utils.session import create_session

        with create_session(scoped=False) as session:
            return Pool.get_pool(name, session=session) is not None
    except Exception:  # no DB access here: do not route
        return False


def task_instance_mutation_hook(task_instance: Any, dag_run: Any = None) -> None:
    """Cluster policy: route ``remediate``'s working tasks to the pool of the run's origin."""
    if getattr(task_instance, "dag_id", None) != REMEDIATE_DAG or task_instance.task_id not in POOLED_TASKS:
        return
    run = dag_run if dag_run is not None else getattr(task_instance, "dag_run", None)
    if run is None:
        return
    name = pool_name(origin_of(run))
    if _pool_exists(name):
        task_instance.pool = name


def ensure_pools(slots: dict[str, int] | None = None) -> dict[str, int]:
    """Create / resize the three remediation pools (deferred tasks do not hold a slot)."""
    from airflow.models.pool import Pool

    wanted = dict(slots or get_settings().remediation_pools)
    for origin in ("incident", "scheduled", "manual"):
        Pool.create_or_update_pool(pool_name(origin), int(wanted.get(origin, 1)),
                                   f"remediate runs requested by {origin} origin (MatCarv AIOps)", False)
    log.info("remediation pools: %s", wanted)
    return wanted
