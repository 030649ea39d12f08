"""Approvals people can act on: what is waiting, for how long, and rejecting several at once.

The list comes from the state store's mirror of the remediation requests (fast, no Airflow
login): a request ``awaiting_approval`` whose asked round has no recorded answer. Each entry names
the runbook, its target(s), the incident, the requester, its age and its deadline (the round's
``asked_at`` plus the approval timeout: unanswered by then, Airflow answers Reject and nothing
changes).

* **Expired approvals disappear**: past its deadline a request is no longer listed as waiting
  (Airflow's timeout sweep answers Reject; while the scheduler is down the mirror may lag, the list
  does not). ``--all`` shows them, marked ``expired``.
* **Superseded approvals**: a newer request for the same runbook and targets marks the older one
  ``superseded`` (:func:`aiops.remediation.pipeline.supersede_older`); it can never execute, and it
  is not listed as waiting. A prompt still open in Airflow's Required Actions is closed by
  :func:`reject` (``aiops approvals reject --superseded``).
* **Bulk reject** answers each selected prompt ``Reject`` through Airflow's HITL REST API
  (``PATCH .../taskInstances/approve_N/-1/hitlDetails``) as the logged-in user: Airflow checks that
  the user may answer (403 otherwise, reported per request) and resumes the run, whose approval
  task records the answer in the state store and whose ``record`` task closes the request.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from aiops.core.state import StateStore, remediation_requests
from aiops.core.times import lenient_utc

REMEDIATE_DAG = "remediate"
REJECT = "Reject"


def parse_age(text: str) -> timedelta:
    """``90m``, ``12h``, ``2d``, ``1h30m`` -> timedelta."""
    parts = re.findall(r"(\d+(?:\.\d+)?)\s*([smhd])", text.strip().lower())
    if not parts or "".join(f"{n}{u}" for n, u in parts) != re.sub(r"\s+", "", text.strip().lower()):
        raise ValueError(f"not an age: {text!r} (use e.g. 90m, 12h, 2d)")
    unit = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}
    return sum((timedelta(**{unit[u]: float(n)}) for n, u in parts), timedelta())



def _asked_round(approvals: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The round shown to approvers and not answered yet (None: nothing open)."""
    open_ = [a for a in approvals if a.get("status") == "asked" and not a.get("decision")]
    return max(open_, key=lambda a: a.get("round", 0)) if open_ else None


def _entry(row: dict[str, Any], now: datetime) -> dict[str, Any] | None:
    plan = row.get("plan") or {}
    asked = _asked_round(list(row.get("approvals") or []))
    if asked is None:
        return None
    asked_at = lenient_utc(asked.get("asked_at")) or lenient_utc(row["created_at"])
    timeout = plan.get("approval_timeout_minutes")
    deadline = asked_at + timedelta(minutes=float(timeout)) if asked_at and timeout else None
    if row["status"] == "superseded":
        state = "superseded"
    elif deadline is not None and deadline <= now:
        state = "expired"
    else:
        state = "waiting"
    created = lenient_utc(row["created_at"]) or now
    targets = [str(t.get("id")) + (f" ({t['detail']['name']})" if (t.get("detail") or {}).get("name") else "")
               for t in plan.get("targets") or row.get("targets") or []]
    return {
        "request_id": row["request_id"], "run_id": row["run_id"], "task_id": f"approve_{asked.get('round', 1)}",
        "round": asked.get("round", 1), "rounds": plan.get("approval_rounds"), "runbook": row["runbook"],
        "title": plan.get("title") or row["runbook"], "risk": plan.get("risk"), "targets": targets,
        "incident_id": row.get("incident_id"), "requested_by": row.get("requested_by"),
        "origin": plan.get("origin"), "assigned": asked.get("assigned") or [], "created_at": created,
        "age": now - created, "deadline": deadline, "state": state,
        "superseded_by": (row.get("outcome") or {}).get("superseded_by") if state == "superseded" else None,
    }


def pending(*, now: datetime | None = None, include_closed: bool = False, store: Any = None) -> list[dict[str, Any]]:
    """Requests whose approval prompt is open, oldest first. By default only those still ``waiting``;
    ``include_closed`` adds the ``expired`` and ``superseded`` ones (prompts a person may want to close)."""
    from sqlalchemy import select

    now = now or datetime.now(UTC)
    store = store or StateStore()
    store._ready()
    with store.engine.connect() as conn:
        rows = conn.execute(select(remediation_requests)
                            .where(remediation_requests.c.status.in_(("awaiting_approval", "superseded")))
                            .order_by(remediation_requests.c.created_at)).all()
    out = [e for e in (_entry(dict(r._mapping), now) for r in rows) if e is not None]
    return out if include_closed else [e for e in out if e["state"] == "waiting"]


def select_for_reject(entries: Iterable[dict[str, Any]], *, ids: Iterable[str] = (), older_than: timedelta | None = None,
                      superseded: bool = False, expired: bool = False) -> list[dict[str, Any]]:
    """The entries a bulk reject applies to: any of the given request ids (or unique prefixes), older
    than ``older_than``, superseded, expired. Nothing selected without a criterion."""
    wanted = [i.strip() for i in ids if i.strip()]
    chosen = []
    for e in entries:
        if (any(e["request_id"].startswith(i) or e["run_id"] == i for i in wanted)
                or (older_than is not None and e["age"] >= older_than)
                or (superseded and e["state"] == "superseded") or (expired and e["state"] == "expired")):
            chosen.append(e)
    return chosen


def format_table(entries: list[dict[str, Any]], *, now: datetime | None = None) -> str:
    now = now or datetime.now(UTC)
    if not entries:
        return "no approval waiting"

    def dur(d: timedelta) -> str:
        minutes = int(d.total_seconds() // 60)
        return f"{minutes // 1440}d{minutes % 1440 // 60:02d}h" if minutes >= 1440 else \
            f"{minutes // 60}h{minutes % 60:02d}m"

    lines = [f"{'request':12} {'state':10} {'age':>6}  {'deadline':16}  {'round':5}  what"]
    for e in entries:
        deadline = f"{e['deadline']:%Y-%m-%d %H:%M}" if e["deadline"] else "-"
        on = f" on {', '.join(e['targets'][:2])}" + (f" +{len(e['targets']) - 2}" if len(e["targets"]) > 2 else "") \
            if e["targets"] else ""
        incident = f" for {e['incident_id']}" if e.get("incident_id") else ""
        extra = f" (by {e['superseded_by'][:12]})" if e.get("superseded_by") else ""
        lines.append(f"{e['request_id'][:12]:12} {e['state']:10} {dur(e['age']):>6}  {deadline:16}  "
                     f"{e['round']}/{e['rounds'] or '?':<3}  [{e['risk']}] {e['title']}{on}{incident}; "
                     f"requested by {e['requested_by']}{extra}")
    return "\n".join(lines)


class AirflowApi:
    """A minimal Airflow REST client: a token from ``/auth/token`` (SimpleAuthManager) or a given one.

    ``http`` is an ``httpx.Client``-like object (tests pass FastAPI's TestClient on Airflow's app)."""

    def __init__(self, base_url: str, *, token: str | None = None, username: str | None = None,
                 password: str | None = None, http: Any = None, timeout: float = 30.0) -> None:
        import httpx

        self.base = base_url.rstrip("/")
        self.http = http or httpx.Client(timeout=timeout)
        self.username = username
        if token is None:
            if not (username and password):
                raise ValueError("an Airflow API token, or a username and password, is needed")
            resp = self.http.post(f"{self.base}/auth/token", json={"username": username, "password": password})
            if resp.status_code >= 400:
                raise PermissionError(f"Airflow login as {username} failed ({resp.status_code}): {resp.text[:200]}")
            token = resp.json()["access_token"]
        self.headers = {"Authorization": f"Bearer {token}"}

    def answer(self, dag_id: str, run_id: str, task_id: str, options: list[str], map_index: int = -1) -> tuple[int, str]:
        from urllib.parse import quote

        url = (f"{self.base}/api/v2/dags/{quote(dag_id, safe='')}/dagRuns/{quote(run_id, safe='')}/taskInstances/"
               f"{quote(task_id, safe='')}/{map_index}/hitlDetails")
        resp = self.http.patch(url, json={"chosen_options": options, "params_input": {}}, headers=self.headers)
        return resp.status_code, resp.text


_OUTCOME = {200: "rejected", 403: "not yours to answer (Airflow: 403)", 404: "no such prompt (404)",
            409: "already answered (409)"}


def reject(entries: list[dict[str, Any]], api: AirflowApi) -> list[dict[str, Any]]:
    """Answer each entry's open prompt ``Reject`` through Airflow's HITL API; one result per entry."""
    results = []
    for e in entries:
        code, text = api.answer(REMEDIATE_DAG, e["run_id"], e["task_id"], [REJECT])
        results.append({"request_id": e["request_id"], "run_id": e["run_id"], "task_id": e["task_id"],
                        "status_code": code, "ok": code == 200,
                        "result": _OUTCOME.get(code, f"failed ({code}): {text[:200]}")})
    return results
