"""The engine's ledger in the state store (migration 4): alerts seen, dead letters, notifications."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError

from aiops.alerting.engine import LedgerRow
from aiops.alerting.normalise import DeadLetter
from aiops.core.alerts import SEVERITY_ORDER
from aiops.core.state import StateStore, alert_dead_letters, alert_ledger, alert_notifications
from aiops.core.times import utc as _utc


def _row(m: Any) -> LedgerRow:
    return LedgerRow(event_id=m["event_id"], fingerprint=m["fingerprint"], source=m["source"], time=_utc(m["time"]),
                     state=m["state"], severity=m["severity"], scope=m["scope"], decision=m["decision"],
                     reason=m["reason"] or "", group_key=m["group_key"], service=m["service"], env=m["env"],
                     team=m["team"], resource=m["resource"], alert=m["alert"] or {}, run_id=m["run_id"])


class SqlLedger:
    def __init__(self, store: StateStore | None = None) -> None:
        self.store = store or StateStore()
        self.store._ready()

    def window(self, start: datetime, end: datetime, fingerprints: list[str] | None = None) -> list[LedgerRow]:
        cols = [c for c in alert_ledger.c if c.name != "alert"]  # the full alert is not needed to decide
        query = select(*cols).where(alert_ledger.c.time >= start, alert_ledger.c.time <= end)
        if fingerprints is not None:
            query = query.where(alert_ledger.c.fingerprint.in_(fingerprints))
        with self.store.engine.connect() as conn:
            return [_row({**r._mapping, "alert": {}}) for r in conn.execute(query)]

    def by_event_ids(self, event_ids: list[str]) -> dict[str, LedgerRow]:
        out: dict[str, LedgerRow] = {}
        with self.store.engine.connect() as conn:
            for i in range(0, len(event_ids), 500):
                for r in conn.execute(select(alert_ledger).where(alert_ledger.c.event_id.in_(event_ids[i:i + 500]))):
                    out[r.event_id] = _row(r._mapping)
        return out

    def save(self, rows: list[LedgerRow], run_id: str | None = None) -> None:
        if not rows:
            return
        now = datetime.now(UTC)
        values = [dict(event_id=r.event_id, fingerprint=r.fingerprint, source=r.source, time=r.time,
                       received_at=now, state=r.state, severity=r.severity, service=r.service, env=r.env,
                       team=r.team, resource=(r.resource or "")[:500] or None, scope=r.scope[:500],
                       group_key=r.group_key, decision=r.decision, reason=r.reason,
                       alert=json.loads(json.dumps(r.alert, default=str)), run_id=run_id) for r in rows]
        try:
            with self.store.engine.begin() as conn:  # one transaction for the batch (the usual case) ...
                conn.execute(insert(alert_ledger), values)
            return
        except IntegrityError:
            pass
        for v in values:  # ... row by row when a concurrent run saved some of the same event ids first
            try:
                with self.store.engine.begin() as conn:
                    conn.execute(insert(alert_ledger).values(**v))
            except IntegrityError:
                continue

    def notified(self, group_keys: list[str]) -> dict[str, str]:
        out: dict[str, str] = {}
        with self.store.engine.connect() as conn:
            rows = conn.execute(select(alert_notifications.c.group_key, alert_notifications.c.severity).where(
                alert_notifications.c.group_key.in_(group_keys), alert_notifications.c.status == "sent"))
            for key, sev in rows:
                if key not in out or SEVERITY_ORDER[sev] > SEVERITY_ORDER[out[key]]:
                    out[key] = sev
        return out

    def record_notification(self, *, group_key: str, severity: str, status: str, incident_id: str | None = None,
                            topic: str = "", subject: str = "", message_id: str | None = None,
                            error: str | None = None, run_id: str | None = None, **_: Any) -> None:
        with self.store.engine.begin() as conn:
            conn.execute(insert(alert_notifications).values(
                group_key=group_key, incident_id=incident_id, severity=severity, topic=topic, status=status,
                message_id=message_id, subject=subject[:200], error=error, sent_at=datetime.now(UTC),
                run_id=run_id))

    def notifications(self, group_key: str | None = None) -> list[dict[str, Any]]:
        query = select(alert_notifications).order_by(alert_notifications.c.id)
        if group_key:
            query = query.where(alert_notifications.c.group_key == group_key)
        with self.store.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(query)]

    def record_dead_letters(self, letters: list[DeadLetter], run_id: str | None = None) -> int:
        """Insert each once (keyed by reason + body); returns how many were new."""
        new = 0
        for d in letters:
            try:
                with self.store.engine.begin() as conn:
                    conn.execute(insert(alert_dead_letters).values(
                        key=d.key, received_at=d.received_at, reason=d.reason[:2000], source=d.source,
                        detail_type=d.detail_type, message_id=d.message_id, body=d.body[:100_000], run_id=run_id))
                new += 1
            except IntegrityError:
                continue
        return new

    def dead_letters(self) -> list[dict[str, Any]]:
        with self.store.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(
                select(alert_dead_letters).order_by(alert_dead_letters.c.received_at))]

    def alerts(self) -> list[dict[str, Any]]:
        with self.store.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(select(alert_ledger).order_by(alert_ledger.c.time))]
