"""Incidents in the state store: one row per incident plus a timeline of everything that happened.

States::

    detected -> triaged -> remediating -> resolved
         \\          \\           \\-> escalated -> remediating | resolved
          \\-> escalated    \\-> resolved (recovered on its own)

* :func:`open_or_update` is what the alerting engine calls per incident candidate. It is idempotent
  on ``candidate.group_key``: a re-delivered or retried candidate updates alerts / last_seen /
  severity of the same incident and never creates a second one.
* :func:`transition` moves an incident along the state machine; illegal moves raise
  :class:`IllegalTransition`. With ``key=`` a retried transition is a no-op (the timeline keeps one
  entry), which is how Airflow task retries stay safe.
* Every change lands in the timeline with who/what caused it (``actor``), why (``reason``) and the
  Airflow run (``run_id`` + ``links``).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from aiops.core.alerts import SEVERITY_ORDER, IncidentCandidate
from aiops.core.errors import AiopsError
from aiops.core.state import StateStore, incident_timeline, incidents
from aiops.core.times import utc_or_none as _utc
from aiops.incidents.model import Incident

STATES = ("detected", "triaged", "remediating", "resolved", "escalated")
OPEN_STATES = ("detected", "triaged", "remediating", "escalated")
ALLOWED: dict[str, frozenset[str]] = {
    "detected": frozenset({"triaged", "escalated"}),
    "triaged": frozenset({"remediating", "escalated", "resolved"}),
    "remediating": frozenset({"resolved", "escalated"}),
    "escalated": frozenset({"remediating", "resolved"}),
    "resolved": frozenset(),
}
_STAMP = {"triaged": "triaged_at", "remediating": "remediation_started_at", "resolved": "resolved_at",
          "escalated": "escalated_at"}


class IncidentNotFound(AiopsError):
    def __init__(self, incident_id: str) -> None:
        super().__init__(f"no incident {incident_id!r}")
        self.incident_id = incident_id


class IllegalTransition(AiopsError):
    def __init__(self, incident_id: str, from_state: str, to_state: str) -> None:
        allowed = ", ".join(sorted(ALLOWED.get(from_state, ()))) or "none (terminal)"
        super().__init__(f"incident {incident_id}: {from_state} -> {to_state} is not allowed "
                         f"(from {from_state}: {allowed})")
        self.from_state, self.to_state = from_state, to_state


def incident_id_for(group_key: str, account_id: str = "") -> str:
    """Deterministic id: the same group of the same AWS account always maps to the same incident, even
    across racing runs (``account_id`` '' = unknown account: the id of the group alone)."""
    key = f"{account_id}|{group_key}" if account_id else group_key
    return "INC-" + hashlib.sha256(key.encode()).hexdigest()[:12].upper()


def account_of(candidate: IncidentCandidate) -> str:
    """The AWS account the candidate's alerts come from ('' when none says)."""
    return next((a.account for a in candidate.alerts if a.account), "")


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))




_TIME_COLUMNS = ("first_seen", "last_seen", "detected_at", "triaged_at", "remediation_started_at",
                 "resolved_at", "escalated_at", "created_at", "updated_at")


def _row(mapping: Any) -> dict[str, Any]:
    out = dict(mapping)
    for col in _TIME_COLUMNS:
        if col in out:
            out[col] = _utc(out[col])
    if "at" in out:
        out["at"] = _utc(out["at"])
    return out


def _store(store: StateStore | None) -> StateStore:
    store = store or StateStore()
    store._ready()
    return store


def _merge_alerts(existing: list[dict[str, Any]], new: Iterable[dict[str, Any]]) -> tuple[list[dict[str, Any]], int]:
    seen = {a.get("event_id") for a in existing}
    merged = list(existing)
    added = 0
    for alert in new:
        if alert.get("event_id") in seen:
            continue
        seen.add(alert.get("event_id"))
        merged.append(alert)
        added += 1
    merged.sort(key=lambda a: str(a.get("time")))
    return merged, added


def _timeline_entry(conn: Connection, incident_id: str, *, kind: str, actor: str, reason: str | None = None,
                    from_state: str | None = None, to_state: str | None = None, run_id: str | None = None,
                    links: dict[str, Any] | None = None, key: str | None = None,
                    detail: dict[str, Any] | None = None, at: datetime | None = None) -> None:
    conn.execute(insert(incident_timeline).values(
        incident_id=incident_id, at=at or datetime.now(UTC), kind=kind, from_state=from_state,
        to_state=to_state, actor=actor, reason=reason, run_id=run_id, links=_jsonable(links or {}),
        key=key, detail=_jsonable(detail or {})))


def open_or_update(candidate: IncidentCandidate, *, actor: str, run_id: str | None,
                   store: StateStore | None = None) -> tuple[str, bool]:
    """Open the incident of ``candidate.group_key`` (in the account of its alerts) or fold the
    candidate into it.

    Returns ``(incident_id, created)``. On an existing incident: new alerts (by ``event_id``) are
    appended, ``last_seen`` only moves forward, severity only goes up; the state is untouched, so a
    re-delivery never loses a transition. An "updated" timeline entry is written only when
    something actually changed (a pure re-delivery leaves no trace but the same id).
    """
    store = _store(store)
    account_id = account_of(candidate)
    incident_id = incident_id_for(candidate.group_key, account_id)
    alerts = [a.model_dump(mode="json") for a in candidate.alerts]
    now = datetime.now(UTC)
    first_seen = _utc(candidate.first_seen) or now
    last_seen = _utc(candidate.last_seen) or now
    try:
        with store.engine.begin() as conn:
            exists = conn.execute(select(incidents.c.incident_id).where(
                incidents.c.incident_id == incident_id)).scalar()
            if exists is None:
                merged, _ = _merge_alerts([], alerts)
                conn.execute(insert(incidents).values(
                    incident_id=incident_id, account_id=account_id, group_key=candidate.group_key,
                    title=candidate.title,
                    service=candidate.service, env=candidate.env, team=candidate.team,
                    severity=candidate.severity, root_resource=candidate.root_resource, state="detected",
                    first_seen=first_seen, last_seen=last_seen, detected_at=now, alerts=merged,
                    routed_to=list(candidate.routed_to), links={},
                    time_to_detect_seconds=max(0.0, (now - first_seen).total_seconds()),
                    created_at=now, updated_at=now))
                _timeline_entry(conn, incident_id, kind="opened", actor=actor, to_state="detected",
                                reason=f"{len(merged)} alert(s): {candidate.title}", run_id=run_id,
                                links=_run_links(run_id), at=now,
                                detail={"severity": candidate.severity, "group_key": candidate.group_key,
                                        "event_ids": [a.get("event_id") for a in merged]})
                return incident_id, True
    except IntegrityError:
        pass  # another run opened it between our select and insert: fold into theirs below
    recurrence = _recurrence_of(store, incident_id, alerts)
    if recurrence is not None:
        seen = _event_ids(store, incident_id)
        fresh = [a for a in candidate.alerts if a.event_id not in seen]
        return open_or_update(candidate.model_copy(update={
            "group_key": recurrence, "alerts": fresh, "first_seen": min(a.time for a in fresh),
            "last_seen": max(max(a.time for a in fresh), candidate.last_seen)}),
            actor=actor, run_id=run_id, store=store)
    _update_from_candidate(store, incident_id, candidate, alerts, actor=actor, run_id=run_id)
    return incident_id, False


def _alert_time(alert: dict[str, Any]) -> datetime:
    parsed = datetime.fromisoformat(str(alert["time"]).replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _event_ids(store: StateStore, incident_id: str) -> set[str]:
    with store.engine.connect() as conn:
        alerts = conn.execute(select(incidents.c.alerts).where(incidents.c.incident_id == incident_id)).scalar()
    return {str(a.get("event_id")) for a in alerts or []}


def _recurrence_of(store: StateStore, incident_id: str, alerts: list[dict[str, Any]]) -> str | None:
    """A resolved incident stays closed: alerts it has not seen, firing after it resolved, open a
    new incident. Its group key derives from the first such alert, so re-deliveries (which carry
    the same alerts) land on the same recurrence."""
    with store.engine.connect() as conn:
        row = conn.execute(select(incidents.c.state, incidents.c.resolved_at, incidents.c.group_key)
                           .where(incidents.c.incident_id == incident_id)).first()
    resolved_at = _utc(row.resolved_at) if row is not None else None
    if row is None or row.state != "resolved" or resolved_at is None:
        return None
    seen = _event_ids(store, incident_id)
    fresh = sorted((a for a in alerts if str(a.get("event_id")) not in seen and a.get("state", "firing") == "firing"
                    and _alert_time(a) >= resolved_at),
                   key=lambda a: (str(a["time"]), str(a["event_id"])))
    if not fresh:
        return None
    return f"{row.group_key}|recurrence:{fresh[0]['event_id']}"


def _update_from_candidate(store: StateStore, incident_id: str, candidate: IncidentCandidate,
                           alerts: list[dict[str, Any]], *, actor: str, run_id: str | None) -> None:
    # One write transaction from the read to the update: SQLite holds the write lock (BEGIN IMMEDIATE),
    # Postgres the row lock (FOR UPDATE), so parallel intake runs fold their alerts in one after another.
    with store.transaction() as conn:
        row = conn.execute(select(incidents).where(incidents.c.incident_id == incident_id)
                           .with_for_update()).first()
        if row is None:
            raise IncidentNotFound(incident_id)
        current = _row(row._mapping)
        merged, added = _merge_alerts(list(current["alerts"] or []), alerts)
        changes: dict[str, Any] = {}
        if added:
            changes["alerts"] = merged
        last_seen = _utc(candidate.last_seen)
        if last_seen and last_seen > current["last_seen"]:
            changes["last_seen"] = last_seen
        if SEVERITY_ORDER[candidate.severity] > SEVERITY_ORDER.get(current["severity"], 0):
            changes["severity"] = candidate.severity
        routed = sorted(set(current["routed_to"] or []) | set(candidate.routed_to))
        if routed != sorted(current["routed_to"] or []):
            changes["routed_to"] = routed
        if not changes:
            return
        conn.execute(update(incidents).where(incidents.c.incident_id == incident_id).values(
            updated_at=datetime.now(UTC), **changes))
        detail: dict[str, Any] = {"new_alerts": added}
        if "severity" in changes:
            detail["severity"] = [current["severity"], changes["severity"]]
        _timeline_entry(conn, incident_id, kind="updated", actor=actor, run_id=run_id, links=_run_links(run_id),
                        reason=f"{added} new alert(s)" + (
                            f"; severity {current['severity']} -> {changes['severity']}" if "severity" in changes
                            else ""), detail=detail)


def _run_links(run_id: str | None, dag_id: str | None = None) -> dict[str, Any]:
    if not run_id:
        return {}
    return {"run_id": run_id, **({"dag_id": dag_id} if dag_id else {})}


def _incident(mapping: Any) -> Incident:
    """A row read back, validated: a column or a value the model does not know is an error here."""
    return Incident.model_validate(_row(mapping))


def get_incident(incident_id: str, *, store: StateStore | None = None) -> Incident:
    store = _store(store)
    with store.engine.connect() as conn:
        row = conn.execute(select(incidents).where(incidents.c.incident_id == incident_id)).first()
    if row is None:
        raise IncidentNotFound(incident_id)
    return _incident(row._mapping)


def get(incident_id: str, *, store: StateStore | None = None) -> dict[str, Any]:
    """:func:`get_incident` as a dict (``Incident.model_dump()``: the row's columns, aware datetimes)."""
    return get_incident(incident_id, store=store).model_dump()


def transition(incident_id: str, to_state: str, *, actor: str, reason: str, run_id: str | None = None,
               links: dict[str, Any] | None = None, key: str | None = None,
               store: StateStore | None = None) -> bool:
    """Move the incident to ``to_state``; returns False when ``key`` was already applied (a retry).

    Raises :class:`IllegalTransition` for a move the state machine does not allow (including a
    repeated move without a key) and :class:`IncidentNotFound` for an unknown id. On ``resolved`` the
    MTTR (first alert -> resolved) is recorded.
    """
    if to_state not in STATES:
        raise ValueError(f"unknown state {to_state!r}; states: {', '.join(STATES)}")
    store = _store(store)
    try:
        with store.engine.begin() as conn:
            if key is not None and conn.execute(select(incident_timeline.c.id).where(
                    incident_timeline.c.incident_id == incident_id, incident_timeline.c.key == key)).first():
                return False
            row = conn.execute(select(incidents).where(incidents.c.incident_id == incident_id)
                               .with_for_update()).first()
            if row is None:
                raise IncidentNotFound(incident_id)
            current = _row(row._mapping)
            from_state = current["state"]
            if to_state not in ALLOWED[from_state]:
                raise IllegalTransition(incident_id, from_state, to_state)
            now = datetime.now(UTC)
            values: dict[str, Any] = {"state": to_state, "updated_at": now, _STAMP[to_state]: now}
            if to_state == "resolved":
                values["mttr_seconds"] = max(0.0, (now - current["first_seen"]).total_seconds())
            # Guard on the state we read: a concurrent transition makes this update match nothing.
            result = conn.execute(update(incidents).where(
                incidents.c.incident_id == incident_id, incidents.c.state == from_state).values(**values))
            if result.rowcount != 1:
                raise IllegalTransition(incident_id, from_state + " (changed concurrently)", to_state)
            if links:
                conn.execute(update(incidents).where(incidents.c.incident_id == incident_id).values(
                    links=_jsonable({**(current["links"] or {}), **links})))
            _timeline_entry(conn, incident_id, kind="transition", actor=actor, reason=reason,
                            from_state=from_state, to_state=to_state, run_id=run_id,
                            links={**_run_links(run_id), **(links or {})}, key=key, at=now)
            return True
    except IntegrityError:
        if key is not None:  # a concurrent retry with the same key won the race
            return False
        raise


def add_links(incident_id: str, links: dict[str, Any], *, actor: str, reason: str | None = None,
              run_id: str | None = None, store: StateStore | None = None) -> None:
    """Attach artifact keys / run links to the incident (merged), noted in the timeline."""
    store = _store(store)
    with store.transaction() as conn:  # read-modify-write of the links column: locked (see above)
        row = conn.execute(select(incidents.c.links).where(incidents.c.incident_id == incident_id)
                           .with_for_update()).first()
        if row is None:
            raise IncidentNotFound(incident_id)
        merged = {**(row[0] or {}), **_jsonable(links)}
        conn.execute(update(incidents).where(incidents.c.incident_id == incident_id).values(
            links=merged, updated_at=datetime.now(UTC)))
        _timeline_entry(conn, incident_id, kind="note", actor=actor, reason=reason or "links: " + ", ".join(links),
                        run_id=run_id, links={**_run_links(run_id), **links})


def note(incident_id: str, *, actor: str, reason: str, run_id: str | None = None,
         links: dict[str, Any] | None = None, key: str | None = None, detail: dict[str, Any] | None = None,
         store: StateStore | None = None) -> bool:
    """A timeline entry without a state change (evidence gathered, remediation requested ...)."""
    store = _store(store)
    try:
        with store.engine.begin() as conn:
            if key is not None and conn.execute(select(incident_timeline.c.id).where(
                    incident_timeline.c.incident_id == incident_id, incident_timeline.c.key == key)).first():
                return False
            _timeline_entry(conn, incident_id, kind="note", actor=actor, reason=reason, run_id=run_id,
                            links={**_run_links(run_id), **(links or {})}, key=key, detail=detail)
            return True
    except IntegrityError:
        if key is not None:
            return False
        raise


def timeline(incident_id: str, *, store: StateStore | None = None) -> list[dict[str, Any]]:
    store = _store(store)
    with store.engine.connect() as conn:
        rows = conn.execute(select(incident_timeline).where(incident_timeline.c.incident_id == incident_id)
                            .order_by(incident_timeline.c.id))
        return [_row(r._mapping) for r in rows]


def list_open(*, store: StateStore | None = None, account_id: str | None = None) -> list[dict[str, Any]]:
    """Open incidents, oldest first; of one AWS account when ``account_id`` is given."""
    store = _store(store)
    query = select(incidents).where(incidents.c.state.in_(OPEN_STATES)).order_by(incidents.c.first_seen)
    if account_id is not None:
        query = query.where(incidents.c.account_id == account_id)
    with store.engine.connect() as conn:
        return [_incident(r._mapping).model_dump() for r in conn.execute(query)]


def list_all(*, store: StateStore | None = None, limit: int = 100,
             account_id: str | None = None) -> list[dict[str, Any]]:
    store = _store(store)
    query = select(incidents).order_by(incidents.c.detected_at.desc()).limit(limit)
    if account_id is not None:
        query = query.where(incidents.c.account_id == account_id)
    with store.engine.connect() as conn:
        return [_incident(r._mapping).model_dump() for r in conn.execute(query)]
