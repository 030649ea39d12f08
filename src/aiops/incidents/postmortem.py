"""The post-mortem written when an incident resolves: Markdown and HTML in the artifact store
(``incidents/postmortems/dt=<day of first alert>/<id>.md|.html``), linked from the incident.

Content: summary, the key times (first event, detected, triaged, remediation started, resolved)
and the durations derived from them (time to detect, time to respond, time to recover, MTTR), a
plot of the primary metric with its forecast band and the incident window marked, the timeline
with who/what did each step and the Airflow runs, the actions taken (runbook, approvers, SSM
execution, verification), the evidence highlights, and follow-ups.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from aiops.incidents import store as incidents

DOMAIN, DATASET = "incidents", "postmortems"


def _dt(value: Any) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    return datetime.fromisoformat(str(value).replace("Z", "+00:00"))


def _dur(seconds: float | None) -> str:
    if seconds is None:
        return "n/a"
    h, rem = divmod(round(seconds), 3600)
    m, s = divmod(rem, 60)
    return f"{h}h {m:02d}m {s:02d}s" if h else f"{m}m {s:02d}s"


def durations(incident: dict[str, Any]) -> dict[str, float | None]:
    def gap(a: str, b: str) -> float | None:
        x, y = incident.get(a), incident.get(b)
        return (y - x).total_seconds() if x and y else None

    return {"time_to_detect": gap("first_seen", "detected_at"), "time_to_triage": gap("detected_at", "triaged_at"),
            "time_to_respond": gap("detected_at", "remediation_started_at"),
            "time_to_recover": gap("remediation_started_at", "resolved_at"), "mttr": gap("first_seen", "resolved_at")}


def plot_metric(evidence: dict[str, Any], incident: dict[str, Any]) -> bytes | None:
    from aiops.core.reporting import figure, figure_png

    metric = evidence.get("metric") or {}
    points = metric.get("points") or []
    if not points:
        return None
    fig = figure(9, 3.0)
    ax = fig.add_subplot(1, 1, 1)
    ts = [_dt(p["t"]) for p in points]
    ax.plot(ts, [p["value"] for p in points], color="#1f77b4", lw=1.4, label="value")
    banded = [(t, p) for t, p in zip(ts, points, strict=True) if "lower" in p]
    if banded:
        ax.fill_between([t for t, _ in banded], [p["lower"] for _, p in banded], [p["upper"] for _, p in banded],
                        color="#2ca02c", alpha=0.18, label=f"forecast band ({metric.get('band_source')})")
        ax.plot([t for t, _ in banded], [p["forecast"] for _, p in banded], color="#2ca02c", lw=0.8, ls="--")
    end = incident.get("resolved_at") or incident.get("last_seen")
    ax.axvspan(incident["first_seen"], end, color="#d62728", alpha=0.12, label="incident")
    if incident.get("remediation_started_at"):
        ax.axvline(incident["remediation_started_at"], color="#9467bd", lw=1, ls=":", label="remediation")
    series = metric.get("series_id", "")
    ax.set_title(series.split("|")[1] + " " + series.split("|")[2] if series.count("|") == 3 else series, fontsize=9)
    ax.legend(loc="upper left", fontsize=7)
    ax.tick_params(labelsize=7)
    return figure_png(fig)


def actions_taken(incident: dict[str, Any]) -> list[dict[str, Any]]:
    """Remediation requests of the incident (remediate records incident_id), with their approvers."""
    from sqlalchemy import select

    from aiops.core.state import StateStore, remediation_requests

    store = StateStore()
    store._ready()
    with store.engine.connect() as conn:
        rows = conn.execute(select(remediation_requests).where(
            remediation_requests.c.incident_id == incident["incident_id"]).order_by(remediation_requests.c.created_at))
        out = []
        for row in rows:
            r = dict(row._mapping)
            outcome = r.get("outcome") or {}
            out.append({"runbook": r["runbook"], "parameters": r["parameters"], "status": r["status"],
                        "run_id": r["run_id"], "requested_by": r["requested_by"], "execution_id": r["execution_id"],
                        "approvals": r.get("approvals") or [],
                        "approval": (r.get("plan") or {}).get("approval"),
                        "verification": outcome.get("verification") or {}})
    return out


MARKDOWN = """# Post-mortem {{ i.incident_id }}: {{ i.title }}

**Service** {{ i.service or "n/a" }} ({{ i.env or "n/a" }}), team {{ i.team or "n/a" }} · **severity** {{ i.severity }} · **state** {{ i.state }}

## Summary
{{ summary }}

## Key times (UTC)
| moment | time |
|---|---|
| first event | {{ t(i.first_seen) }} |
| detected (incident opened) | {{ t(i.detected_at) }} |
| triaged | {{ t(i.triaged_at) }} |
| remediation started | {{ t(i.remediation_started_at) }} |
| resolved | {{ t(i.resolved_at) }} |

| measure | value |
|---|---|
| time to detect | {{ dur(d.time_to_detect) }} |
| time to respond (detected -> remediation started) | {{ dur(d.time_to_respond) }} |
| time to recover (remediation -> resolved) | {{ dur(d.time_to_recover) }} |
| **MTTR** (first event -> resolved) | **{{ dur(d.mttr) }}** |

## Actions taken
{% for a in actions -%}
- `{{ a.runbook }}` {{ a.parameters }} — {{ a.status }}; policy {{ a.approval or "?" }}; approvers: {{ approvers(a) }}; SSM execution `{{ a.execution_id or "none" }}`; remediate run `{{ a.run_id }}`{% if a.verification %}; verification: {{ a.verification.get("checked", "") }} ok={{ a.verification.get("ok") }}{% endif %}
{% else -%}
- none recorded
{% endfor %}
{%- if verification %}- metric back in band: {{ verification.reason }}
{% endif %}
## Timeline
| time (UTC) | what | who | run |
|---|---|---|---|
{% for e in timeline -%}
| {{ t(e.at) }} | {{ what(e) }} | {{ e.actor }} | {{ e.run_id or "" }} |
{% endfor %}
## Evidence
- metric: `{{ ev.metric.series_id if ev.metric and ev.metric.series_id else "n/a" }}`, {{ ev.metric.outside_band if ev.metric and ev.metric.outside_band is defined else 0 }} point(s) outside the band ({{ ev.metric.band_source if ev.metric and ev.metric.band_source else "n/a" }})
- logs: {{ ev.logs.errors if ev.logs and ev.logs.errors is defined else "n/a" }} error line(s){% if ev.logs and ev.logs.top_messages %}; top: {% for m in ev.logs.top_messages[:3] %}"{{ m.message }}" x{{ m.count }}{% if not loop.last %}, {% endif %}{% endfor %}{% endif %}
- recent changes (CloudTrail): {{ ev.changes.total if ev.changes and ev.changes.total is defined else "n/a" }}
- related alerts: {{ (ev.related_alerts.alerts | length) if ev.related_alerts else 0 }}
- evidence file: `{{ i.links.get("evidence", "n/a") }}`

## Follow-ups
{% for f in followups -%}
- [ ] {{ f }}
{% endfor %}"""

HTML = """<!doctype html><html><head><meta charset="utf-8"><title>Post-mortem {{ i.incident_id }}</title>
<style>body{font-family:sans-serif;max-width:960px;margin:auto}table{border-collapse:collapse}
td,th{border:1px solid #ccc;padding:3px 8px;font-size:13px}</style></head><body>
<h1>Post-mortem {{ i.incident_id }}: {{ i.title }}</h1>
<p><b>Service</b> {{ i.service or "n/a" }} ({{ i.env or "n/a" }}) · <b>severity</b> {{ i.severity }} · <b>state</b> {{ i.state }}</p>
<h2>Summary</h2><p>{{ summary }}</p>
{% if plot %}<h2>Metric and forecast band</h2><img alt="metric with forecast band and incident window" src="{{ plot }}">{% endif %}
<h2>Key times (UTC)</h2><table>
<tr><th>first event</th><td>{{ t(i.first_seen) }}</td></tr><tr><th>detected</th><td>{{ t(i.detected_at) }}</td></tr>
<tr><th>triaged</th><td>{{ t(i.triaged_at) }}</td></tr><tr><th>remediation started</th><td>{{ t(i.remediation_started_at) }}</td></tr>
<tr><th>resolved</th><td>{{ t(i.resolved_at) }}</td></tr>
<tr><th>time to detect</th><td>{{ dur(d.time_to_detect) }}</td></tr><tr><th>time to respond</th><td>{{ dur(d.time_to_respond) }}</td></tr>
<tr><th>time to recover</th><td>{{ dur(d.time_to_recover) }}</td></tr><tr><th>MTTR</th><td><b>{{ dur(d.mttr) }}</b></td></tr></table>
<h2>Actions taken</h2><ul>{% for a in actions %}<li><code>{{ a.runbook }}</code> {{ a.parameters }}: {{ a.status }};
policy {{ a.approval or "?" }}; approvers: {{ approvers(a) }}; SSM execution <code>{{ a.execution_id or "none" }}</code>;
remediate run <code>{{ a.run_id }}</code></li>{% else %}<li>none recorded</li>{% endfor %}
{% if verification %}<li>metric back in band: {{ verification.reason }}</li>{% endif %}</ul>
<h2>Timeline</h2><table><tr><th>time (UTC)</th><th>what</th><th>who</th><th>run</th></tr>
{% for e in timeline %}<tr><td>{{ t(e.at) }}</td><td>{{ what(e) }}</td><td>{{ e.actor }}</td><td>{{ e.run_id or "" }}</td></tr>{% endfor %}</table>
<h2>Follow-ups</h2><ul>{% for f in followups %}<li>{{ f }}</li>{% endfor %}</ul></body></html>"""


def _what(entry: dict[str, Any]) -> str:
    if entry["kind"] == "transition":
        return f"{entry['from_state']} -> {entry['to_state']}: {entry.get('reason') or ''}"
    return f"{entry['kind']}: {entry.get('reason') or ''}"


def _approvers(action: dict[str, Any]) -> str:
    if action.get("approval") == "pre-approved":
        return "pre-approved runbook"
    names = [f"{a.get('user')} ({a.get('decision')})" for a in action.get("approvals") or []]
    return ", ".join(names) or "none"


def followups(incident: dict[str, Any], evidence: dict[str, Any], actions: list[dict[str, Any]]) -> list[str]:
    out = []
    logs = evidence.get("logs") or {}
    if logs.get("top_messages"):
        out.append(f"Find the root cause of \"{logs['top_messages'][0]['message']}\" "
                   f"({logs['top_messages'][0]['count']} occurrences) in {', '.join(logs.get('log_groups') or [])}")
    if (evidence.get("changes") or {}).get("total"):
        out.append("Review the recent CloudTrail changes to the affected resources listed in the evidence")
    for a in actions:
        out.append(f"Decide whether `{a['runbook']}` should run automatically next time "
                   f"(policy today: {a.get('approval')}) or a permanent fix makes it unnecessary")
    out.append(f"Check the alert thresholds of {incident.get('service') or 'the service'} caught this early enough "
               f"(time to detect {_dur(durations(incident)['time_to_detect'])})")
    return out


def render(incident: dict[str, Any], evidence: dict[str, Any], verification: dict[str, Any] | None,
           plot_src: str | None) -> tuple[str, str]:
    """(markdown, html) of the post-mortem; ``plot_src`` is the plot's image URL (data: URI)."""
    import jinja2

    from aiops.core.reporting import html_env

    actions = actions_taken(incident)
    d = durations(incident)
    ev = evidence or {}
    summary = (f"{incident['title']}. {len(incident.get('alerts') or [])} alert(s) from "
               f"{incident['first_seen']:%Y-%m-%d %H:%M} UTC; "
               + (f"remediated with {', '.join(a['runbook'] for a in actions)}; " if actions else "")
               + f"resolved after {_dur(d['mttr'])}.")
    ctx = {"i": incident, "d": d, "actions": actions, "timeline": incidents.timeline(incident["incident_id"]),
           "ev": ev, "verification": verification, "summary": summary, "followups": followups(incident, ev, actions),
           "t": lambda x: f"{x:%Y-%m-%d %H:%M:%S}" if x else "—", "dur": _dur, "what": _what, "approvers": _approvers}
    md_env = jinja2.Environment(autoescape=False, undefined=jinja2.ChainableUndefined, trim_blocks=False)  # Markdown, not HTML
    markdown = md_env.from_string(MARKDOWN).render(**ctx)
    html = html_env().from_string(HTML).render(plot=plot_src, **ctx)
    return markdown, html


def write(incident_id: str, *, evidence: dict[str, Any] | None, verification: dict[str, Any] | None) -> dict[str, Any]:
    """Render and store the post-mortem; returns the keys and the measured times."""
    from aiops.core.artifacts import ArtifactStore
    from aiops.core.reporting import data_uri

    incident = incidents.get(incident_id)
    png = plot_metric(evidence or {}, incident)
    markdown, html = render(incident, evidence or {}, verification, data_uri(png) if png else None)
    store = ArtifactStore()
    md_key = store.key(DOMAIN, DATASET, incident["first_seen"], f"{incident_id}.md")
    html_key = store.key(DOMAIN, DATASET, incident["first_seen"], f"{incident_id}.html")
    store.put_bytes(md_key, markdown.encode(), "text/markdown; charset=utf-8")
    store.put_bytes(html_key, html.encode(), "text/html; charset=utf-8")
    return {"markdown": md_key, "html": html_key, "plot": png is not None, "durations": durations(incident)}
