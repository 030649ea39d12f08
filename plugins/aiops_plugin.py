"""MatCarv AIOps plugin: an "AIOps" page in the Airflow UI (status of the platform's stores).

Served by the Airflow API server under ``/aiops/``; every route requires a logged-in Airflow user
(plugin FastAPI apps are public unless they add a check, so this one does).
"""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

from aiops.console.app import create_app


class AiopsPlugin(AirflowPlugin):
    name = "matcarv_aiops"
    fastapi_apps = [{"app": create_app(), "url_prefix": "/aiops", "name": "MatCarv AIOps"}]
    external_views = [{
        "name": "AIOps status",
        "href": "/aiops/",
        "destination": "nav",
        "category": "browse",
        "url_route": "aiops_status",
    }]
