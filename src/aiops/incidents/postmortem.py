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

from aiops.core.artifacts import ArtifactStore
from aiops.core.reporting import data_uri, figure, figure_png, render_template
from aiops.core.state import StateStore, remediation_requests
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


# One model (:func:`model`), two renderings: every section, line and number of the Markdown is in the
# HTML and vice versa (the HTML adds only the plot). Nothing is computed in the templates.



def _what(entry: dict[str, Any]) -> str:
    if entry["kind"] == "transition":
        return f"{entry['from_state']} -> {entry['to_state']}: {entry.get('reason') or ''}"
    return f"{entry['kind']}: {entry.get('reason') or ''}"


def _approvers(action: dict[str, Any]) -> str:
    if action.get("approval") == "pre-approved" and not action.get("approvals"):  # ran unattended
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


def _t(value: datetime | None) -> str:
    return f"{value:%Y-%m-%d %H:%M:%S}" if value else "—"


def _outside(metric: dict[str, Any] | None) -> str:
    if not metric or metric.get("error"):
        return f"n/a ({metric['error']})" if metric and metric.get("error") else "n/a"
    return (f"{metric.get('outside_band', 0)} point(s) outside the band ({metric.get('band_source') or 'n/a'}, "
            f"{metric.get('start', '?')} to {metric.get('end', '?')})")


def evidence_lines(incident: dict[str, Any], evidence: dict[str, Any]) -> list[tuple[str, str]]:
    """The Evidence section. The triage-time count is the one the timeline's 'triaged' entry quotes;
    the post-mortem's re-read through the recovery is shown next to it, labelled, not in its place."""
    ev = evidence or {}
    metric = ev.get("metric") or {}
    at_triage = ev.get("metric_at_triage") or metric
    lines = [("metric", f"{metric.get('series_id') or at_triage.get('series_id') or 'n/a'}"),
             ("at triage", _outside(at_triage))]
    if ev.get("metric_at_triage") is not None:
        lines.append(("through the recovery", _outside(metric)))
    logs = ev.get("logs") or {}
    top = "; top: " + ", ".join(f'"{m["message"]}" x{m["count"]}' for m in logs.get("top_messages", [])[:3]) \
        if logs.get("top_messages") else ""
    lines.append(("logs", f"{logs['errors']} error line(s){top}" if "errors" in logs
                  else f"n/a{' (' + logs['error'] + ')' if logs.get('error') else ''}"))
    for item in (ev.get("derived") or {}).get("series") or []:
        lines.append((f"{item['label']} (from {item['series_id'].split('/', 1)[1].split('|', 1)[0].lower()})",
                      item["text"] + (" — outside the band" if item.get("outside") else "")))
    changes = ev.get("changes") or {}
    lines.append(("recent changes (CloudTrail)", str(changes["total"]) if "total" in changes else "n/a"))
    lines.append(("related alerts", str(len((ev.get("related_alerts") or {}).get("alerts") or []))))
    lines.append(("evidence file", str((incident.get("links") or {}).get("evidence", "n/a"))))
    return lines


def _action_line(a: dict[str, Any]) -> str:
    line = (f"{a['runbook']} {a['parameters']} — {a['status']}; policy {a.get('approval') or '?'}; approvers: "
            f"{_approvers(a)}; SSM execution {a.get('execution_id') or 'none'}; remediate run {a.get('run_id')}")
    if a.get("verification"):
        line += f"; verification: {a['verification'].get('checked', '')} ok={a['verification'].get('ok')}"
    return line


def model(incident: dict[str, Any], evidence: dict[str, Any] | None, verification: dict[str, Any] | None,
          actions: list[dict[str, Any]], timeline: list[dict[str, Any]]) -> dict[str, Any]:
    """Everything the post-mortem says, as plain values: both renderings show exactly this."""
    d = durations(incident)
    ev = evidence or {}
    summary = (f"{incident['title']}. {len(incident.get('alerts') or [])} alert(s) from "
               f"{incident['first_seen']:%Y-%m-%d %H:%M} UTC; "
               + (f"remediated with {', '.join(a['runbook'] for a in actions)}; " if actions else "")
               + f"resolved after {_dur(d['mttr'])}.")
    action_lines = [_action_line(a) for a in actions] or ["none recorded"]
    if verification:
        action_lines.append(f"metric back in band: {verification.get('reason', '')}")
    return {
        "title": f"Post-mortem {incident['incident_id']}: {incident['title']}",
        "header": [("Service", f"{incident.get('service') or 'n/a'} ({incident.get('env') or 'n/a'}), "
                               f"team {incident.get('team') or 'n/a'}"),
                   ("severity", incident["severity"]), ("state", incident["state"])],
        "summary": summary,
        "key_times": [("first event", _t(incident.get("first_seen"))),
                      ("detected (incident opened)", _t(incident.get("detected_at"))),
                      ("triaged", _t(incident.get("triaged_at"))),
                      ("remediation started", _t(incident.get("remediation_started_at"))),
                      ("resolved", _t(incident.get("resolved_at")))],
        "measures": [("time to detect", _dur(d["time_to_detect"])),
                     ("time to respond (detected -> remediation started)", _dur(d["time_to_respond"])),
                     ("time to recover (remediation -> resolved)", _dur(d["time_to_recover"])),
                     ("MTTR (first event -> resolved)", _dur(d["mttr"]))],
        "actions": action_lines,
        "timeline": [[_t(e["at"]), _what(e), e["actor"], e.get("run_id") or ""] for e in timeline],
        "evidence": evidence_lines(incident, ev),
        "followups": followups(incident, ev, actions),
    }


def render(incident: dict[str, Any], evidence: dict[str, Any], verification: dict[str, Any] | None,
           plot_src: str | None, *, actions: list[dict[str, Any]] | None = None,
           timeline: list[dict[str, Any]] | None = None) -> tuple[str, str]:
    """(markdown, html) of the post-mortem from one :func:`model`; ``plot_src`` is the plot's image
    URL (data: URI). ``actions``/``timeline`` default to the state store's."""
    actions = actions_taken(incident) if actions is None else actions
    timeline = incidents.timeline(incident["incident_id"]) if timeline is None else timeline
    m = model(incident, evidence, verification, actions, timeline)
    markdown = render_template("incidents/postmortem.md", m=m)  # Markdown: not escaped
    html = render_template("incidents/postmortem.html", m=m, plot=plot_src)
    return markdown, html


def write(incident_id: str, *, evidence: dict[str, Any] | None, verification: dict[str, Any] | None) -> dict[str, Any]:
    """Render and store the post-mortem; returns the keys and the measured times."""
    incident = incidents.get(incident_id)
    png = plot_metric(evidence or {}, incident)
    markdown, html = render(incident, evidence or {}, verification, data_uri(png) if png else None)
    store = ArtifactStore()
    md_key = store.key(DOMAIN, DATASET, incident["first_seen"], f"{incident_id}.md")
    html_key = store.key(DOMAIN, DATASET, incident["first_seen"], f"{incident_id}.html")
    store.put_bytes(md_key, markdown.encode(), "text/markdown; charset=utf-8")
    store.put_bytes(html_key, html.encode(), "text/html; charset=utf-8")
    return {"markdown": md_key, "html": html_key, "plot": png is not None, "durations": durations(incident)}
