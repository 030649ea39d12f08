"""MatCarv AIOps: collectors, detectors, actions, stores and CLI behind the Airflow DAGs."""

__version__ = "0.1.0"
