"""The plugin's pages (FastAPI), rendered server-side; all data access is lazy and read-only."""

from __future__ import annotations

import html
import json
from datetime import UTC, datetime
from typing import Any

from fastapi import Depends, FastAPI
from fastapi.responses import HTMLResponse

from aiops.core.settings import get_settings

STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px;color:#1f2937;max-width:1100px}
h1{font-size:22px;margin:0 0 4px} h2{font-size:16px;margin:24px 0 8px;color:#374151}
.muted{color:#6b7280;font-size:13px} table{border-collapse:collapse;width:100%;font-size:13px}
td,th{border-bottom:1px solid #e5e7eb;padding:6px 8px;text-align:left;vertical-align:top}
th{background:#f9fafb;font-weight:600} .ok{color:#047857} .warn{color:#b45309} .bad{color:#b91c1c}
code{background:#f3f4f6;padding:1px 4px;border-radius:3px}
"""


def _auth_dependency() -> list[Any]:
    try:
        from airflow.api_fastapi.core_api.security import get_user
    except ImportError:  # outside an Airflow API server (unit tests of the rendering)
        return []
    return [Depends(get_user)]


def status_snapshot() -> dict[str, Any]:
    """What the status page shows; each part degrades to an error message, never a 500."""
    from aiops.core.state import StateStore
    from aiops.metrics.pipeline import data_until as metrics_data_until
    from aiops.metrics.store import MetricsStore

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


def create_app() -> FastAPI:
    app = FastAPI(title="MatCarv AIOps", dependencies=_auth_dependency())

    @app.get("/", response_class=HTMLResponse)
    def status_page() -> str:
        return render_status(status_snapshot())

    @app.get("/status.json")
    def status_json() -> dict[str, Any]:
        return status_snapshot()

    return app
