-- Mounted into /docker-entrypoint-initdb.d/: runs once, when the postgres volume is first created.
-- The AIOps state store lives in its own database next to Airflow's metadata DB ("airflow"),
-- reached through the Airflow connection aiops_state (AIRFLOW_CONN_AIOPS_STATE).
CREATE DATABASE aiops_state OWNER airflow;
