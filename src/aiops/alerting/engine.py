"""The alerting engine: severity rules, dedup, suppression and grouping of alerts into incident
candidates; routing and the decision to notify. Pure logic over a :class:`Ledger` of alerts already
seen (in memory for replays and tests, the state store for the DAG: ``aiops.alerting.ledger``).

Per alert, in event-time order::

    seen event id?          -> redelivery   (its stored decision stands; an accepted one is re-handed over)
    state == resolved       -> resolved     (kept for flapping detection; opens nothing)
    data older than the
      freshness horizon     -> stale        (sources computed from stored data — anomaly, SLO burn —
                                             scored during a first start, catch-up or backfill: recorded,
                                             opens nothing, pages nobody, triggers no action)
    same fingerprint firing
      within dedup window   -> duplicate
    >= N state changes of
      the fingerprint in M  -> suppressed (flapping)
    maintenance window      -> suppressed (maintenance)
    known-noisy rule        -> suppressed (noisy)
    below min severity      -> informational
    otherwise               -> accepted: joins the open group of its scope (same category + service +
                               env, else same root resource) within the group window, or starts one.

``group_key`` = ``<scope>@<first alert time>``: stable, so a re-delivery or a retry maps to the
same incident (``aiops.incidents.store.open_or_update`` is idempotent on it).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from aiops.alerting.normalise import category
from aiops.alerting.rules import AlertingRules, at_least
from aiops.core.alerts import SEVERITY_ORDER, Alert, IncidentCandidate
from aiops.core.settings import get_settings


@dataclass
class LedgerRow:
    event_id: str
    fingerprint: str
    source: str
    time: datetime
    state: str
    severity: str
    scope: str
    decision: str
    reason: str = ""
    group_key: str | None = None
    service: str | None = None
    env: str | None = None
    team: str | None = None
    resource: str | None = None
    alert: dict[str, Any] = field(default_factory=dict)
    run_id: str | None = None  # the run that first decided it


class Ledger(Protocol):
    def window(self, start: datetime, end: datetime, fingerprints: list[str] | None = None) -> list[LedgerRow]: ...
    def by_event_ids(self, event_ids: list[str]) -> dict[str, LedgerRow]: ...
    def save(self, rows: list[LedgerRow], run_id: str | None = None) -> None: ...
    def notified(self, group_keys: list[str]) -> dict[str, str]: ...
    def record_notification(self, *, group_key: str, severity: str, status: str, **detail: Any) -> None: ...
    def record_dead_letters(self, letters: list[Any], run_id: str | None = None) -> int: ...


class MemoryLedger:
    """Ledger in memory (replays, unit tests)."""

    def __init__(self) -> None:
        self.rows: dict[str, LedgerRow] = {}
        self.notifications: dict[str, str] = {}
        self.sent: list[dict[str, Any]] = []
        self.dead: dict[str, Any] = {}

    def window(self, start: datetime, end: datetime, fingerprints: list[str] | None = None) -> list[LedgerRow]:
        fps = set(fingerprints) if fingerprints is not None else None
        return [r for r in self.rows.values() if start <= r.time <= end and (fps is None or r.fingerprint in fps)]

    def by_event_ids(self, event_ids: list[str]) -> dict[str, LedgerRow]:
        return {e: self.rows[e] for e in event_ids if e in self.rows}

    def save(self, rows: list[LedgerRow], run_id: str | None = None) -> None:
        for r in rows:
            if r.event_id not in self.rows:
                r.run_id = r.run_id or run_id
                self.rows[r.event_id] = r

    def notified(self, group_keys: list[str]) -> dict[str, str]:
        return {g: self.notifications[g] for g in group_keys if g in self.notifications}

    def record_notification(self, *, group_key: str, severity: str, status: str, **detail: Any) -> None:
        self.sent.append({"group_key": group_key, "severity": severity, "status": status, **detail})
        prev = self.notifications.get(group_key)
        if status == "sent" and (prev is None or SEVERITY_ORDER[severity] > SEVERITY_ORDER[prev]):
            self.notifications[group_key] = severity

    def record_dead_letters(self, letters: list[Any], run_id: str | None = None) -> int:
        new = [d for d in letters if d.key not in self.dead]
        self.dead.update((d.key, d) for d in letters)
        return len(new)


@dataclass
class Decided:
    alert: Alert
    decision: str
    reason: str
    scope: str
    group_key: str | None = None
    first_run_id: str | None = None  # re-deliveries: the run that decided the event first


def root_resource(alert: Alert) -> str | None:
    return alert.enrichment.get("root_resource") or alert.resource


def scope_of(alert: Alert) -> str:
    """What an alert groups by: category + service/env, else root resource, else its fingerprint."""
    cat = category(alert)
    if alert.service:
        return f"{cat}|svc:{alert.service}/{alert.env or '-'}"
    root = root_resource(alert)
    if root:
        return f"{cat}|res:{root}"
    return f"{cat}|fp:{alert.fingerprint}"


def _stamp(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def data_time(alert: Alert) -> datetime:
    """When the data behind ``alert`` was observed: the event's ``observed_at`` label, else its time."""
    observed = alert.labels.get("observed_at")
    if isinstance(observed, str) and observed:
        try:
            parsed = datetime.fromisoformat(observed.replace("Z", "+00:00"))
            return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
        except ValueError:
            pass
    return alert.time


class Engine:
    def __init__(self, rules: AlertingRules, ledger: Ledger, *, freshness_horizon: timedelta | None = None,
                 freshness_sources: list[str] | None = None) -> None:
        self.rules = rules
        self.ledger = ledger
        if freshness_horizon is None or freshness_sources is None:
            s = get_settings()
            freshness_horizon = freshness_horizon or timedelta(minutes=s.freshness_horizon_minutes)
            freshness_sources = s.freshness_sources if freshness_sources is None else freshness_sources
        self.freshness_horizon = freshness_horizon
        self.freshness_sources = frozenset(freshness_sources)

    def stale(self, alert: Alert) -> str | None:
        """Why ``alert`` is history (its data is older than the freshness horizon), or None."""
        if alert.source not in self.freshness_sources:
            return None
        observed = data_time(alert)
        age = (alert.received_at or datetime.now(UTC)) - observed
        if age <= self.freshness_horizon:
            return None
        return (f"history: data from {_stamp(observed)} is {age.total_seconds() / 60:.0f} min old "
                f"(freshness horizon {self.freshness_horizon.total_seconds() / 60:g} min): recorded, no incident")

    def decide(self, alerts: list[Alert]) -> tuple[list[Decided], list[LedgerRow]]:
        """Decisions for ``alerts`` and the ledger rows to save (new event ids only)."""
        if not alerts:
            return [], []
        g = self.rules.grouping
        flap = self.rules.suppression.flapping
        dedup_w = timedelta(minutes=g.dedup_window_minutes)
        group_w = timedelta(minutes=g.group_window_minutes)
        flap_w = timedelta(minutes=flap.minutes + flap.hold_minutes)
        reach = max(dedup_w, group_w, flap_w)
        ordered = sorted(alerts, key=lambda a: (a.time, a.event_id))
        prior = self.ledger.by_event_ids(list(dict.fromkeys(a.event_id for a in ordered)))
        first, last = ordered[0].time, ordered[-1].time
        window = self.ledger.window(first - reach, last + reach)
        # sources with long dedup windows (findings re-imported daily): only their own fingerprints go further back
        long_fps = [a.fingerprint for a in ordered if a.source in g.dedup_window_by_source]
        if long_fps:
            far = max(timedelta(minutes=g.dedup_window(a.source)) for a in ordered if a.source in g.dedup_window_by_source)
            if far > reach:
                seen = {r.event_id for r in window}
                window += [r for r in self.ledger.window(first - far, last + reach, sorted(set(long_fps)))
                           if r.event_id not in seen]
        by_fp: dict[str, list[LedgerRow]] = defaultdict(list)
        by_scope: dict[str, list[LedgerRow]] = defaultdict(list)
        for row in window:
            by_fp[row.fingerprint].append(row)
            if row.decision == "accepted":
                by_scope[row.scope].append(row)
        new_rows: dict[str, LedgerRow] = {}
        out: list[Decided] = []
        for alert in ordered:
            self.rules.severity.apply(alert)
            scope = scope_of(alert)
            known = prior.get(alert.event_id) or new_rows.get(alert.event_id)
            if known is not None:
                out.append(Decided(alert, "redelivery", f"event {alert.event_id} already seen ({known.decision})",
                                   known.scope, known.group_key if known.decision == "accepted" else None,
                                   first_run_id=known.run_id))
                continue
            decision, reason, group_key = self._decide_one(alert, scope, by_fp, by_scope, dedup_w, group_w, flap_w)
            row = LedgerRow(event_id=alert.event_id, fingerprint=alert.fingerprint, source=alert.source,
                            time=alert.time, state=alert.state, severity=alert.severity, scope=scope,
                            decision=decision, reason=reason, group_key=group_key, service=alert.service,
                            env=alert.env, team=alert.team, resource=alert.resource,
                            alert=alert.model_dump(mode="json"))
            new_rows[alert.event_id] = row
            by_fp[alert.fingerprint].append(row)
            if decision == "accepted":
                by_scope[scope].append(row)
            out.append(Decided(alert, decision, reason, scope, group_key))
        return out, list(new_rows.values())

    def _decide_one(self, alert: Alert, scope: str, by_fp: dict[str, list[LedgerRow]],
                    by_scope: dict[str, list[LedgerRow]], dedup_w: timedelta, group_w: timedelta,
                    flap_w: timedelta) -> tuple[str, str, str | None]:
        history = [r for r in by_fp.get(alert.fingerprint, []) if r.time <= alert.time]
        if alert.state == "resolved":
            return "resolved", "condition cleared", None
        why_stale = self.stale(alert)
        if why_stale:
            return "stale", why_stale, None
        latest = max(history, key=lambda r: r.time, default=None)
        window = timedelta(minutes=self.rules.grouping.dedup_window(alert.source)) if \
            alert.source in self.rules.grouping.dedup_window_by_source else dedup_w
        if latest is not None and latest.state == "firing" and alert.time - latest.time <= window:
            return "duplicate", f"same fingerprint firing since {_stamp(latest.time)} ({latest.event_id})", None
        flap = self.rules.suppression.flapping
        changes = 1 + sum(1 for r in history if alert.time - r.time <= timedelta(minutes=flap.minutes))
        if changes >= flap.changes:
            return "suppressed", (f"flapping: {changes} state changes in {flap.minutes:g} min "
                                  f"(threshold {flap.changes})"), None
        # held after real flapping only (a held alert does not extend the hold: a real incident later is seen)
        held = [r for r in history if r.decision == "suppressed" and r.reason.startswith("flapping: ")
                and not r.reason.startswith("flapping: held")
                and alert.time - r.time <= timedelta(minutes=flap.hold_minutes)]
        if held:
            return "suppressed", (f"flapping: held ({flap.hold_minutes:g} min) since it flapped at "
                                  f"{_stamp(max(r.time for r in held))}"), None
        hit = self.rules.suppression.suppressed_by(alert)
        if hit:
            return "suppressed", f"{hit[0]}: {hit[1]}", None
        if not at_least(alert.severity, self.rules.grouping.min_incident_severity):
            return "informational", f"severity {alert.severity} below {self.rules.grouping.min_incident_severity}", None
        mates = [r for r in by_scope.get(scope, []) if abs(alert.time - r.time) <= group_w and r.group_key]
        if mates:
            nearest = min(mates, key=lambda r: abs(alert.time - r.time))
            return "accepted", f"grouped with {nearest.event_id}", nearest.group_key
        return "accepted", "new group", f"{scope}@{_stamp(alert.time)}"

    @staticmethod
    def candidates(decided: list[Decided]) -> list[IncidentCandidate]:
        """One candidate per group touched by this batch (accepted alerts, and re-deliveries of accepted ones)."""
        groups: dict[str, list[Alert]] = defaultdict(list)
        for d in decided:
            if d.group_key and d.decision in ("accepted", "redelivery"):
                groups[d.group_key].append(d.alert)
        out = []
        for key, alerts in groups.items():
            alerts = sorted(alerts, key=lambda a: (a.time, a.event_id))
            worst = max(alerts, key=lambda a: (SEVERITY_ORDER[a.severity], -a.time.timestamp()))
            service = next((a.service for a in alerts if a.service), None)
            env = next((a.env for a in alerts if a.env), None)
            team = next((a.team for a in alerts if a.team), None)
            where = f"{service}/{env or '-'}" if service else (root_resource(worst) or "unknown resource")
            title = worst.title if len(alerts) == 1 else f"{where}: {worst.title} (+{len(alerts) - 1} related)"
            out.append(IncidentCandidate(
                group_key=key, title=title[:480], service=service, env=env, team=team, severity=worst.severity,
                root_resource=root_resource(worst), first_seen=alerts[0].time, last_seen=alerts[-1].time,
                alerts=alerts))
        return sorted(out, key=lambda c: c.first_seen)

    def to_notify(self, candidates: list[IncidentCandidate]) -> list[IncidentCandidate]:
        """Candidates that are new, or whose severity rose above what was already notified (escalation)."""
        sent = self.ledger.notified([c.group_key for c in candidates])
        floor = SEVERITY_ORDER[self.rules.routing.notify_min_severity]
        return [c for c in candidates if SEVERITY_ORDER[c.severity] >= floor and (
            c.group_key not in sent or SEVERITY_ORDER[c.severity] > SEVERITY_ORDER[sent[c.group_key]])]


def counts(decided: list[Decided]) -> dict[str, int]:
    out: dict[str, int] = defaultdict(int)
    for d in decided:
        out[d.decision] += 1
        if d.decision == "suppressed":
            out["suppressed_" + d.reason.split(":", 1)[0]] += 1
    return dict(out)
