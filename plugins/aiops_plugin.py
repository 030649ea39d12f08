"""MatCarv AIOps plugin: the console (an "AIOps" menu in the Airflow UI) served by the API server.

The FastAPI app is mounted at ``/aiops``; every route requires a logged-in Airflow user whom the
auth manager allows to view plugins (plugin FastAPI apps are public unless they add a check, so
this one does: :func:`aiops.console.app.console_user`). The nav entries open the pages inside the
Airflow UI (``url_route``), grouped under one "AIOps" category.
"""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

from aiops.console.app import create_app

PAGES = [("Overview", "/aiops/", "aiops_overview"), ("Incidents", "/aiops/incidents", "aiops_incidents"),
         ("Cost", "/aiops/cost", "aiops_cost"), ("Compliance", "/aiops/compliance", "aiops_compliance"),
         ("SLOs", "/aiops/slos", "aiops_slos"), ("Audit", "/aiops/audit", "aiops_audit"),
         ("Stores", "/aiops/status", "aiops_status")]


class AiopsPlugin(AirflowPlugin):
    name = "matcarv_aiops"
    fastapi_apps = [{"app": create_app(), "url_prefix": "/aiops", "name": "MatCarv AIOps"}]
    external_views = [{"name": name, "href": href, "destination": "nav", "category": "AIOps", "url_route": route}
                      for name, href, route in PAGES]
