"""Test helpers for exercising the Airflow DAGs (e.g. answering human-in-the-loop tasks under ``dag.test()``)."""
