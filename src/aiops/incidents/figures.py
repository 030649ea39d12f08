"""Start-up and game-day figures, computed from the state store (what README's tables quote).

:func:`startup_figures` counts what the platform did in the first ``minutes`` after a start:
alerts by intake decision (``accepted``, ``stale``...), notifications sent, incidents opened,
remediation requests by origin and status, and changes the routine-operations workflows made
(``aiops_ops_changes``: every change that reached AWS — done, failed, or a patch batch sent — by
workflow; refused ones called nothing) next to the changes their first starts planned and held
back (the ``ops.armed`` audit entries). :func:`incident_figures` gives, per incident opened
in a time range (a game day), the times the README quotes: detect (first event -> incident
opened), event -> SSM execution start (the fixing execution's own start time, recorded by the
remediate run), and MTTR (first event -> resolved). :func:`markdown` renders both as tables.

Used by ``scripts/first_start_figures.py`` against a running ``make run``; figures are never typed
by hand.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta
from typing import Any

from aiops.core.state import (
    StateStore,
    alert_ledger,
    alert_notifications,
    audit_log,
    incidents,
    ops_changes,
    remediation_requests,
)
from aiops.core.times import lenient_utc

#: ``aiops_ops_changes`` statuses of a change that reached AWS (``refused``: nothing was called).
OPS_CHANGE_MADE = ("done", "failed", "sent")


def _secs(a: datetime | None, b: datetime | None) -> float | None:
    return round((b - a).total_seconds(), 1) if a and b else None


def first_activity(store: Any = None) -> datetime | None:
    """The earliest thing the platform recorded (a stand-in for 'started' when none is given)."""
    from sqlalchemy import func, select

    store = store or StateStore()
    store._ready()
    with store.engine.connect() as conn:
        stamps = [conn.execute(select(func.min(alert_ledger.c.received_at))).scalar(),
                  conn.execute(select(func.min(audit_log.c.at))).scalar()]
    found = [lenient_utc(s) for s in stamps if s is not None]
    return min(x for x in found if x is not None) if found else None


def startup_figures(since: datetime, minutes: float = 30, *, store: Any = None) -> dict[str, Any]:
    from sqlalchemy import select

    store = store or StateStore()
    store._ready()
    until = since + timedelta(minutes=minutes)
    with store.engine.connect() as conn:
        decisions = Counter(r.decision for r in conn.execute(
            select(alert_ledger.c.decision).where(alert_ledger.c.received_at >= since,
                                                  alert_ledger.c.received_at < until)))
        notes = Counter(r.status for r in conn.execute(
            select(alert_notifications.c.status).where(alert_notifications.c.sent_at >= since,
                                                       alert_notifications.c.sent_at < until)))
        opened = conn.execute(select(incidents.c.incident_id, incidents.c.first_seen).where(
            incidents.c.detected_at >= since, incidents.c.detected_at < until)).all()
        requests = conn.execute(select(remediation_requests.c.plan, remediation_requests.c.status).where(
            remediation_requests.c.created_at >= since, remediation_requests.c.created_at < until)).all()
        changed = Counter(r.workflow for r in conn.execute(select(ops_changes.c.workflow).where(
            ops_changes.c.status.in_(OPS_CHANGE_MADE), ops_changes.c.at >= since, ops_changes.c.at < until)))
        armed = conn.execute(select(audit_log.c.detail).where(
            audit_log.c.action == "ops.armed", audit_log.c.at >= since, audit_log.c.at < until)).all()
    from_history = sum(1 for i in opened if (fs := lenient_utc(i.first_seen)) is not None and fs < since)
    by_origin = Counter((r.plan or {}).get("origin") or "unknown" for r in requests)
    return {"since": since, "minutes": minutes, "alerts": dict(decisions), "notifications_sent": notes.get("sent", 0),
            "notifications_failed": notes.get("failed", 0), "incidents": len(opened),
            "incidents_from_history": from_history, "remediations": len(requests),
            "remediations_by_origin": dict(by_origin),
            "remediations_by_status": dict(Counter(r.status for r in requests)),
            "ops_changes": sum(changed.values()), "ops_changes_by_workflow": dict(changed),
            "ops_first_start_held_back": sum(int((a.detail or {}).get("held_back") or 0) for a in armed)}


def incident_figures(since: datetime, until: datetime | None = None, *, store: Any = None) -> list[dict[str, Any]]:
    from sqlalchemy import select

    store = store or StateStore()
    store._ready()
    query = select(incidents).where(incidents.c.detected_at >= since).order_by(incidents.c.detected_at)
    if until is not None:
        query = query.where(incidents.c.detected_at < until)
    with store.engine.connect() as conn:
        rows = [dict(r._mapping) for r in conn.execute(query)]
        reqs = [dict(r._mapping) for r in conn.execute(select(remediation_requests).where(
            remediation_requests.c.incident_id.in_([r["incident_id"] for r in rows])))] if rows else []
    out = []
    for inc in rows:
        first = lenient_utc(inc["first_seen"])
        executions = [lenient_utc(((q.get("outcome") or {}).get("execution") or {}).get("started_at"))
                      for q in reqs if q["incident_id"] == inc["incident_id"]]
        ssm = min((e for e in executions if e is not None), default=None)
        runbooks = sorted({q["runbook"] for q in reqs if q["incident_id"] == inc["incident_id"]})
        out.append({"incident_id": inc["incident_id"], "title": inc["title"], "state": inc["state"],
                    "runbooks": runbooks, "detect_seconds": _secs(first, lenient_utc(inc["detected_at"])),
                    "event_to_ssm_seconds": _secs(first, ssm),
                    "respond_seconds": _secs(lenient_utc(inc["detected_at"]), lenient_utc(inc["remediation_started_at"])),
                    "mttr_seconds": _secs(first, lenient_utc(inc["resolved_at"]))})
    return out


def _n(value: float | None) -> str:
    return "—" if value is None else f"{value:.0f} s"


def _ops_line(start: dict[str, Any]) -> str:
    """``ops changes: N`` — what the routine-operations workflows changed in AWS in the window."""
    by_workflow = start.get("ops_changes_by_workflow") or {}
    line = f"ops changes: {start.get('ops_changes', 0)}"
    if by_workflow:
        line += " (" + ", ".join(f"{k} {v}" for k, v in sorted(by_workflow.items())) + ")"
    held = start.get("ops_first_start_held_back") or 0
    return line + (f"; planned and held back by first starts: {held}" if held else "")


def markdown(start: dict[str, Any], game_days: list[dict[str, Any]]) -> str:
    alerts = start["alerts"]
    lines = [
        f"First {start['minutes']:.0f} minutes after the start ({start['since']:%Y-%m-%d %H:%M} UTC):",
        "",
        "| alerts received | of them stale (history) | notifications sent | incidents opened "
        "| of them from history | remediation requests (by origin) |",
        "|---:|---:|---:|---:|---:|---|",
        f"| {sum(alerts.values())} | {alerts.get('stale', 0)} | {start['notifications_sent']} | {start['incidents']} "
        f"| {start['incidents_from_history']} | {start['remediations']}"
        + (" (" + ", ".join(f"{k} {v}" for k, v in sorted(start["remediations_by_origin"].items())) + ")"
           if start["remediations"] else "") + " |",
        "",
        _ops_line(start),
        "",
    ]
    if game_days:
        lines += ["| incident | runbook | state | detect | event → SSM execution | MTTR |",
                  "|---|---|---|---:|---:|---:|"]
        lines += [f"| {g['incident_id']} {g['title'][:60]} | {', '.join(g['runbooks']) or '—'} | {g['state']} | "
                  f"{_n(g['detect_seconds'])} | {_n(g['event_to_ssm_seconds'])} | {_n(g['mttr_seconds'])} |"
                  for g in game_days]
    else:
        lines.append("(no incident after the start window: run a game day, e.g. `aiops sandbox incident cpu-pinned`)")
    return "\n".join(lines) + "\n"
