"""What the ``alert_intake`` DAG does, testable without Airflow.

Queue semantics (at least once): the ``AssetWatcher`` receives up to 10 messages per call and
several calls per firing, and does NOT delete them (``delete_message_on_reception=False``); they
stay invisible for the watcher's visibility timeout. The run deletes them (:func:`ack_messages`, its
last task) only after it recorded them (ledger, incidents) and announced what needs announcing. A run
that fails leaves them on the queue: they come back, and after the queue's ``maxReceiveCount`` SQS
moves them to the dead-letter queue (redrive policy). Announcements are derived from state
(:func:`pending_announcements`): a redelivered event whose incident was never announced — the run
that opened it died before announcing — is announced by the run that sees it again.

:func:`process` takes raw SQS message bodies (EventBridge events) and runs the whole chain:
normalise (bad ones to the dead-letter table) -> enrich -> engine (severity rules, dedup,
suppression, grouping) -> hand-over (``aiops.incidents.store.open_or_update`` per candidate) ->
notify (one SNS message per new/escalated candidate per routed topic). Every step is idempotent on
event ids / group keys, so a retried task or a re-delivered message opens no second incident and
sends no second notification.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

from aiops.alerting import notify as n
from aiops.alerting.engine import Engine, Ledger, counts
from aiops.alerting.enrich import enrich as run_enrichment
from aiops.alerting.ledger import SqlLedger
from aiops.alerting.normalise import normalise_batch
from aiops.alerting.rules import FILES, AlertingRules, load_rules
from aiops.core import queue
from aiops.core.alerts import SEVERITY_ORDER, Alert, IncidentCandidate
from aiops.core.artifacts import ArtifactStore
from aiops.core.config import config_error_event
from aiops.core.errors import ConfigError
from aiops.core.settings import get_settings
from aiops.core.state import StateStore, audit_log
from aiops.incidents.store import open_or_update

log = logging.getLogger(__name__)

HandOver = Callable[[IncidentCandidate], tuple[str, bool]]
ACTOR = "alert_intake"


LAST_GOOD_KEY = "config/last_good/alerting.json"


def rules_in_force(directory: Any = None, store: Any = None) -> tuple[AlertingRules, list[dict[str, Any]]]:
    """The alerting rules this run applies, and alert events about broken files.

    A file that loads is in force and becomes the file's "last good" version (kept in the artifact
    store, so every worker sees it). A broken file never falls back to defaults: its last good
    version stays in force and an ``AIOps Config Error`` event says so (one per broken content); a
    broken file with no last good version fails the run (:class:`ConfigError`), after the event is
    logged — the messages stay queued and are retried, then dead-lettered, never mis-routed."""
    rules = load_rules(directory)
    store = store or ArtifactStore()
    saved: dict[str, Any] = store.get_json(LAST_GOOD_KEY) or {}
    current = dict(saved)
    for name in rules.files:
        current[name] = getattr(rules, name).model_dump(mode="json")
    if current != saved:
        store.put_json(LAST_GOOD_KEY, current)
    events: list[dict[str, Any]] = []
    broken: dict[Path, list[str]] = {}
    for err in rules.errors:
        broken.setdefault(Path(err.path), []).extend(str(err).splitlines())
    restored: dict[str, Any] = {}
    for path, problems in broken.items():
        name = path.stem
        model = FILES.get(name)
        if model is None or name not in saved:
            event = config_error_event(path, problems, component="alert_intake", action="run failed")
            log.error("alerting config event %s: %s", event["id"], json.dumps(event["detail"]))
            raise ConfigError(path, "", "broken and no last good version to keep in force (the run fails rather "
                                        "than fall back to defaults): " + "; ".join(problems))
        restored[name] = model.model_validate(saved[name])
        events.append(config_error_event(path, problems, component="alert_intake",
                                         action="last good version in force"))
        log.error("%s is broken; its last good version stays in force: %s", path, "; ".join(problems))
    if restored:
        loaded = {n: getattr(rules, n) for n in rules.files}
        rules = AlertingRules(**{**loaded, **restored}, errors=rules.errors, files=rules.files)
    return rules, events


def bodies_from_asset_events(events: list[Any]) -> list[dict[str, Any]]:
    """SQS messages from the AssetWatcher's asset events (``extra.payload.message_batch[].Body``),
    with the ``ReceiptHandle`` that :func:`ack_messages` deletes them by."""
    return queue.messages_from_asset_events(events)


def ack_messages(receipt_list: list[dict[str, str]], queue_url: str | None = None) -> dict[str, Any]:
    """Delete processed messages of the ops-events queue (:func:`aiops.core.queue.ack_messages`)."""
    return queue.ack_messages(receipt_list, queue_url or get_settings().ops_queue_url)


ANNOUNCED = "incident.announced"


def announced_incidents(incident_ids: list[str]) -> dict[str, set[str]]:
    """incident id -> run ids that announced it (audit log of the state store)."""
    from sqlalchemy import select

    if not incident_ids:
        return {}
    store = StateStore()
    store.migrate()
    with store.engine.connect() as conn:
        rows = conn.execute(select(audit_log.c.subject, audit_log.c.run_id).where(
            audit_log.c.action == ANNOUNCED, audit_log.c.subject.in_(incident_ids)))
        out: dict[str, set[str]] = {}
        for subject, run in rows:
            out.setdefault(subject, set()).add(run or "")
        return out


def mark_announced(incident_ids: list[str], run_id: str | None) -> None:
    """Record (audit log, one transaction) that this run announced these incidents."""
    from datetime import UTC, datetime

    from sqlalchemy import insert

    if not incident_ids:
        return
    store = StateStore()
    store.migrate()
    now = datetime.now(UTC)
    with store.engine.begin() as conn:
        conn.execute(insert(audit_log), [{"at": now, "actor": ACTOR, "action": ANNOUNCED, "subject": i,
                                          "detail": {"asset": "aiops_incidents"}, "run_id": run_id}
                                         for i in incident_ids])


def pending_announcements(*, fresh: set[str], redelivered: set[str], run_id: str | None,
                          announced: Callable[[list[str]], dict[str, set[str]]] = announced_incidents) -> list[str]:
    """Incidents this run announces: those it changed (``fresh``), and those of re-delivered events
    that no run announced yet, or only this run (a retry of its own announce step)."""
    known = announced(sorted(redelivered - fresh))
    again = {i for i in redelivered - fresh if not known.get(i) or known[i] == {run_id or ""}}
    return sorted(fresh | again)


def default_hand_over(run_id: str | None) -> HandOver:
    def hand_over(candidate: IncidentCandidate) -> tuple[str, bool]:
        return open_or_update(candidate, actor=ACTOR, run_id=run_id)
    return hand_over


def process(bodies: list[Any], *, run_id: str | None = None, rules: AlertingRules | None = None,
            ledger: Ledger | None = None, hand_over: HandOver | None = None,
            publish: Callable[[str, str, str], str] | None = None, enrich: bool = True,
            enricher: Callable[[list[Alert]], None] | None = None,
            notify: bool | None = None, topic_arns: dict[str, str] | None = None,
            announced: Callable[[list[str]], dict[str, set[str]]] | None = None) -> dict[str, Any]:
    """Run the chain over one batch; returns a JSON-able summary (counts, incident ids, notifications).

    Injection points for tests and replays: ``ledger`` (default: the state store), ``hand_over``
    (default: ``aiops.incidents.store.open_or_update``), ``publish`` (default: SNS Publish),
    ``topic_arns`` (default: resolved with SNS ListTopics), ``enricher`` (default: tags, CloudTrail, SLO)."""
    settings = get_settings()
    started = time.monotonic()
    config_events: list[dict[str, Any]] = []
    if rules is None:
        rules, config_events = rules_in_force()
    for err in rules.errors:
        log.error("alerting config error: %s", err)
    bodies = [*bodies, *({"Body": json.dumps(e), "MessageId": e["id"]} for e in config_events)]
    if ledger is None:
        ledger = SqlLedger()
    timings: dict[str, float] = {}
    mark = time.monotonic()

    def lap(name: str) -> None:
        nonlocal mark
        now = time.monotonic()
        timings[name] = round(now - mark, 4)
        mark = now

    alerts, dead = normalise_batch(bodies)
    if dead:
        new_dead = ledger.record_dead_letters(dead, run_id=run_id)
        for letter in dead:
            log.warning("dead letter (%s / %s): %s", letter.source, letter.detail_type, letter.reason)
        log.info("%d dead letter(s), %d new", len(dead), new_dead)
    if enricher is not None and alerts:
        enricher(alerts)
    elif enrich and alerts:
        run_enrichment(alerts, changes=settings.alerting_enrich_changes,
                       lookback=timedelta(minutes=settings.alerting_change_lookback_minutes))
    lap("normalise_enrich")
    engine = Engine(rules, ledger)
    decided, rows = engine.decide(alerts)
    ledger.save(rows, run_id=run_id)
    lap("decide")
    for d in decided:
        log.info("%s %s %s [%s] %s -> %s (%s)%s", d.alert.time.strftime("%H:%M:%S"), d.alert.source,
                 d.alert.resource, d.alert.severity, d.alert.title[:80], d.decision, d.reason,
                 f" group {d.group_key}" if d.group_key else "")
    candidates = engine.candidates(decided)
    hand_over = hand_over or default_hand_over(run_id)
    ids: dict[str, str] = {}
    created: list[str] = []
    for c in candidates:
        incident_id, new = hand_over(c)
        ids[c.group_key] = incident_id
        if new:
            created.append(incident_id)
    lap("hand_over")
    # Announce (INCIDENTS asset event) what this run changed: groups with newly accepted alerts, or
    # re-deliveries first decided by this same run (a retried task whose first try failed midway);
    # and incidents of re-delivered events that were never announced (the first run died before).
    fresh = {d.group_key for d in decided if d.group_key and (
        d.decision == "accepted" or (d.decision == "redelivery" and run_id is not None and d.first_run_id == run_id))}
    redelivered = {ids[d.group_key] for d in decided if d.decision == "redelivery" and d.group_key in ids}
    announce = pending_announcements(fresh={ids[g] for g in fresh if g in ids}, redelivered=redelivered,
                                     run_id=run_id, announced=announced or announced_incidents)
    notifications: list[dict[str, Any]] = []
    do_notify = settings.alerting_notify if notify is None else notify
    if do_notify:
        notifications = _notify(engine, candidates, ids, rules, ledger, publish, run_id, topic_arns)
    lap("notify")
    summary = {
        "raw_events": len(bodies), "dead_letters": len(dead), "alerts": len(alerts),
        "decisions": counts(decided), "candidates": len(candidates),
        "incident_ids": sorted(set(ids.values())), "created": created,
        "announce": announce, "receipts": queue.receipts(bodies),
        "notifications": notifications, "config_errors": [str(e) for e in rules.errors],
        "seconds": round(time.monotonic() - started, 3), "timings": timings,
    }
    log.info("alert intake: %s", {k: v for k, v in summary.items() if k not in ("notifications", "receipts")})
    return summary


def _notify(engine: Engine, candidates: list[IncidentCandidate], ids: dict[str, str], rules: AlertingRules,
            ledger: Ledger, publish: Callable[[str, str, str], str] | None,
            run_id: str | None, topic_arns: dict[str, str] | None = None) -> list[dict[str, Any]]:
    due = engine.to_notify(candidates)
    if not due:
        return []
    already = ledger.notified([c.group_key for c in due])
    routes: dict[str, tuple[list[str], list[str]]] = {}
    for c in due:
        worst = max(c.alerts, key=lambda a: SEVERITY_ORDER[a.severity])
        rep = worst.model_copy(update={"team": c.team or worst.team, "severity": c.severity})
        routes[c.group_key] = rules.routing.topics_for(rep)
    names = sorted({t for topics, _ in routes.values() for t in topics})
    try:
        arns: dict[str, str | None] = ({name: topic_arns.get(name) for name in names} if topic_arns is not None
                                       else n.resolve_topics(names))
    except Exception as exc:  # SNS unreachable: record every notification as failed, keep the incidents
        log.error("cannot list SNS topics: %s", exc)
        arns = dict.fromkeys(names)
    publish = publish or n.sns_publisher()
    out = []
    for c in due:
        incident_id = ids.get(c.group_key)
        escalated = c.group_key in already
        subj, text = n.subject(c, incident_id, escalated), n.body(c, incident_id, escalated)
        topics, used = routes[c.group_key]
        for name in topics:
            arn = arns.get(name)
            entry: dict[str, Any] = {"group_key": c.group_key, "incident_id": incident_id, "topic": arn or name,
                                     "severity": c.severity, "subject": subj, "rules": used, "escalated": escalated}
            if arn is None:
                entry.update(status="failed", error=f"SNS topic {name!r} does not exist")
            else:
                try:
                    entry.update(status="sent", message_id=publish(arn, subj, text))
                except Exception as exc:
                    entry.update(status="failed", error=f"{type(exc).__name__}: {exc}"[:500])
            if entry["status"] == "failed":
                log.error("notification to %s failed: %s", name, entry["error"])
            else:
                log.info("notified %s: %s", arn, subj)
            ledger.record_notification(group_key=c.group_key, incident_id=incident_id, severity=c.severity,
                                       topic=entry["topic"], status=entry["status"], subject=subj,
                                       message_id=entry.get("message_id"), error=entry.get("error"),
                                       run_id=run_id)
            out.append(entry)
    return out
