"""Airflow cluster policies for MatCarv AIOps (put this directory on PYTHONPATH, or copy the file
to $AIRFLOW_HOME/config/). Routes remediate's tasks to the pool of the request's origin."""

from aiops.airflow.pools import task_instance_mutation_hook

__all__ = ["task_instance_mutation_hook"]
