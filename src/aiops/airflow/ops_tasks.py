"""The plan -> execute pair of the routine-operations DAGs (``ops_snapshots``, ``ops_log_retention``,
``ops_scheduling``; ``ops_patching`` has its own batched flow). Call inside the DAG function."""

from __future__ import annotations

from typing import Any

from airflow.sdk import task


def plan_then_execute(workflow: str) -> Any:
    @task
    def plan(params=None, data_interval_start=None, data_interval_end=None, dag_run=None, run_id=None) -> dict:
        from aiops.ops.pipeline import make_plan  # lazy: DAG parse path

        end = data_interval_end or dag_run.run_after  # a manual run may have no data interval
        return make_plan(workflow, end, start=data_interval_start or end, conf=params, run_id=run_id)

    @task
    def execute(the_plan: dict, run_id=None) -> dict:
        from airflow.exceptions import AirflowFailException

        from aiops.ops.pipeline import OpsPlanRefused, approved_plan, run_changes  # lazy: DAG parse path

        try:  # the plan as stored and hashed at plan time, never the (editable) XCom
            stored = approved_plan(workflow, run_id)
        except OpsPlanRefused as exc:
            raise AirflowFailException(f"refused: {exc}") from exc
        if stored["refused"]:
            raise AirflowFailException(f"refused: {stored['refused']}")
        return run_changes(stored, run_id=run_id)

    return execute(plan())  # type: ignore[arg-type]  # the XComArg is the plan at run time
