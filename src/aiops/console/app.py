"""The console: the plugin's pages (FastAPI), rendered server-side from stored data, behind Airflow's login.

Every route depends on :func:`console_user`: Airflow's own ``get_user`` (the UI's JWT cookie or a
bearer token; none -> 401, which a browser gets as a redirect to Airflow's login page) and then the
auth manager's decision for the Plugins view (viewers and up read). Whether the user may *act*
(answer an approval) is the auth manager's call too (``HITL_DETAIL`` PUT); the console itself never
changes anything: actions happen in Airflow's Required Actions, where the approval is verified.
"""

from __future__ import annotations

import html
import json
import time
from datetime import UTC, datetime
from typing import Any

from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from aiops.console import data, views
from aiops.core.settings import get_settings
from aiops.core.state import StateStore
from aiops.metrics.pipeline import data_until as metrics_data_until
from aiops.metrics.store import MetricsStore

STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px;color:#1f2937;max-width:1100px}
h1{font-size:22px;margin:0 0 4px} h2{font-size:16px;margin:24px 0 8px;color:#374151}
.muted{color:#6b7280;font-size:13px} table{border-collapse:collapse;width:100%;font-size:13px}
td,th{border-bottom:1px solid #e5e7eb;padding:6px 8px;text-align:left;vertical-align:top}
th{background:#f9fafb;font-weight:600} .ok{color:#047857} .warn{color:#b45309} .bad{color:#b91c1c}
code{background:#f3f4f6;padding:1px 4px;border-radius:3px}
"""


def status_snapshot() -> dict[str, Any]:
    """What the status page shows; each part degrades to an error message, never a 500."""
    s = get_settings()
    snap: dict[str, Any] = {"bucket": s.artifact_bucket, "generated": datetime.now(UTC).isoformat(timespec="seconds")}
    try:
        state = StateStore()
        snap["state_url"] = state.url.split("@")[-1]
        snap["schema_version"] = state.schema_version()
        wm = metrics_data_until(state)  # the connected account's metrics watermark
        snap["watermark"] = wm.isoformat() if wm else None
    except Exception as exc:
        snap["state_error"] = f"{type(exc).__name__}: {exc}"
    try:
        store = MetricsStore()
        snap["partitions"] = store.days()
        snap["quarantine"] = [k for k in store.artifacts.list_keys("metrics/quarantine/") if k.endswith(".json")][-10:]
    except Exception as exc:
        snap["store_error"] = f"{type(exc).__name__}: {exc}"
    if s.manifest_path.exists():
        m = json.loads(s.manifest_path.read_text())
        snap["sandbox"] = {"anchor": m["anchor"], "series": m["metrics"]["series_count"],
                           "anomalies": len(m["anomalies"]), "misconfigurations": len(m["misconfigurations"]),
                           "security_events": len(m["security_events"])}
    return snap


def render_status(snap: dict[str, Any]) -> str:
    e = html.escape
    rows = []
    if "state_error" in snap:
        rows.append(f"<tr><th>State store</th><td class=bad>{e(snap['state_error'])}</td></tr>")
    else:
        rows.append(f"<tr><th>State store</th><td><code>{e(snap['state_url'])}</code>, schema v{snap['schema_version']}"
                    "</td></tr>")
        wm = snap.get("watermark")
        rows.append(f"<tr><th>Metrics watermark</th><td class={'ok' if wm else 'warn'}>"
                    f"{e(wm or 'no extraction yet: metrics_extract has not completed a run')}</td></tr>")
    if "store_error" in snap:
        rows.append(f"<tr><th>Metrics store</th><td class=bad>{e(snap['store_error'])}</td></tr>")
    else:
        parts = snap.get("partitions", [])
        span = f"{parts[0]} .. {parts[-1]}" if parts else "empty"
        rows.append(f"<tr><th>Metrics store</th><td><code>s3://{e(snap['bucket'])}/metrics/cloudwatch/</code>: "
                    f"{len(parts)} day partition(s) ({e(span)})</td></tr>")
        q = snap.get("quarantine", [])
        rows.append(f"<tr><th>Quarantine reports</th><td class={'warn' if q else 'ok'}>"
                    + ("<br>".join(f"<code>{e(k)}</code>" for k in q) or "none") + "</td></tr>")
    if snap.get("sandbox"):
        sb = snap["sandbox"]
        rows.append(f"<tr><th>Simulated account</th><td>history to {e(sb['anchor'])}; {sb['series']} series, "
                    f"{sb['anomalies']} injected anomalies, {sb['misconfigurations']} misconfigurations, "
                    f"{sb['security_events']} security events (<code>aiops sandbox describe</code>)</td></tr>")
    return (f"<!doctype html><html><head><meta charset=utf-8><title>MatCarv AIOps</title><style>{STYLE}</style>"
            f"</head><body><h1>MatCarv AIOps</h1><div class=muted>status as of {e(snap['generated'])}</div>"
            f"<h2>Platform stores</h2><table>{''.join(rows)}</table></body></html>")


def _airflow_user_dependency() -> Any:
    from airflow.api_fastapi.core_api.security import get_user

    return get_user


async def console_user(request: Request, user: Any = Depends(_airflow_user_dependency())) -> dict[str, Any]:
    """The logged-in Airflow user, if the auth manager lets them see plugin views; else 403."""
    from airflow.api_fastapi.app import get_auth_manager
    from airflow.api_fastapi.auth.managers.models.resource_details import AccessView, DagAccessEntity

    manager = get_auth_manager()
    if not manager.is_authorized_view(access_view=AccessView.PLUGINS, user=user):
        raise HTTPException(status_code=403, detail="Your role may not view the AIOps console")
    can_act = manager.is_authorized_dag(method="PUT", access_entity=DagAccessEntity.HITL_DETAIL, user=user)
    return {"name": user.get_name(), "can_act": bool(can_act)}


def _login_redirect(request: Request) -> Response | None:
    if "text/html" not in request.headers.get("accept", ""):
        return None
    try:
        from airflow.api_fastapi.app import get_auth_manager

        url = get_auth_manager().get_url_login(next_url=str(request.url))
    except Exception:  # no auth manager (outside the API server): a plain 401
        return None
    return RedirectResponse(url, status_code=303)


def create_app() -> FastAPI:
    app = FastAPI(title="MatCarv AIOps console", docs_url=None, redoc_url=None, openapi_url=None)

    @app.middleware("http")
    async def _warm_after_first_request(request: Request, call_next: Any) -> Response:
        # Airflow loads plugins (and so builds this app) in every process, task runners included:
        # the background warm-up starts only where the console is actually served.
        response = await call_next(request)
        data.start_warmer(get_settings().console_warm_seconds)
        return response
    User = Depends(console_user)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code == 401:
            redirect = _login_redirect(request)
            if redirect is not None:
                return redirect
        return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers)

    def page(template: str, page_id: str, request: Request, user: dict[str, Any], build: Any,
             **extra: Any) -> HTMLResponse:
        started = time.perf_counter()
        ctx = data.Context()
        d = build(ctx)
        if d is None:
            raise HTTPException(status_code=404, detail="not found")
        as_of = d.get("as_of") if isinstance(d, dict) else None
        html = views.render(template, page=page_id, user=user, started=started, as_of=as_of or ctx.as_of(),
                            base=request.scope.get("root_path", "").rstrip("/"), d=d, **extra)
        return HTMLResponse(html, headers={"Cache-Control": "no-store"})

    @app.get("/", response_class=HTMLResponse)
    def overview(request: Request, user: dict[str, Any] = User) -> HTMLResponse:
        return page("overview.html", "/", request, user, data.overview)

    @app.get("/service/{service}", response_class=HTMLResponse)
    def service(request: Request, service: str, range: str = Query("24h", pattern="^(6h|24h|3d|7d|14d)$"),
                user: dict[str, Any] = User) -> HTMLResponse:
        return page("service.html", "/service", request, user, lambda c: data.service_view(c, service, range),
                    title=f"Service {service}")

    @app.get("/incidents", response_class=HTMLResponse)
    def incident_list(request: Request, user: dict[str, Any] = User) -> HTMLResponse:
        started = time.perf_counter()
        ctx = data.Context()
        html = views.render("incidents.html", page="/incidents", user=user, started=started, as_of=ctx.as_of(),
                            base=request.scope.get("root_path", "").rstrip("/"), rows=data.incident_list(ctx))
        return HTMLResponse(html, headers={"Cache-Control": "no-store"})

    @app.get("/incidents/{incident_id}", response_class=HTMLResponse)
    def incident(request: Request, incident_id: str, user: dict[str, Any] = User) -> HTMLResponse:
        return page("incident.html", "/incidents", request, user, lambda c: data.incident_detail(c, incident_id),
                    title=f"Incident {incident_id}")

    @app.get("/cost", response_class=HTMLResponse)
    def cost(request: Request, user: dict[str, Any] = User) -> HTMLResponse:
        return page("cost.html", "/cost", request, user, data.cost_view)

    @app.get("/compliance", response_class=HTMLResponse)
    def compliance(request: Request, user: dict[str, Any] = User) -> HTMLResponse:
        return page("compliance.html", "/compliance", request, user, data.compliance_view)

    @app.get("/slos", response_class=HTMLResponse)
    def slos(request: Request, range: str = Query("7d", pattern="^(6h|24h|3d|7d|14d)$"),
             user: dict[str, Any] = User) -> HTMLResponse:
        return page("slos.html", "/slos", request, user, lambda c: data.slo_view(c, range))

    @app.get("/audit", response_class=HTMLResponse)
    def audit(request: Request, user: dict[str, Any] = User) -> HTMLResponse:
        return page("audit.html", "/audit", request, user, data.audit_view)

    @app.get("/status", response_class=HTMLResponse)
    def status_page(user: dict[str, Any] = User) -> str:
        return render_status(status_snapshot())

    @app.get("/status.json")
    def status_json(user: dict[str, Any] = User) -> dict[str, Any]:
        return status_snapshot()

    return app


__all__ = ["console_user", "create_app", "render_status", "status_snapshot"]
