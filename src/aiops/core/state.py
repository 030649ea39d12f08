"""The state store: operational records (watermarks, audit trail; later incidents, approvals,
findings history, recommendation decisions) in SQL through SQLAlchemy.

The database is the Airflow connection ``settings.state_conn_id`` (Postgres in compose); when
that connection does not exist, a SQLite file under ``settings.home``. The project creates and
migrates its own schema: :data:`MIGRATIONS` is an ordered list, applied once each, recorded in
``aiops_schema_version``.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Column,
    DateTime,
    Engine,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    create_engine,
    insert,
    select,
    update,
)
from sqlalchemy.engine import Connection

from aiops.core.settings import get_settings

metadata = MetaData()

schema_version = Table(
    "aiops_schema_version", metadata,
    Column("version", Integer, primary_key=True),
    Column("description", String(200), nullable=False),
    Column("applied_at", DateTime(timezone=True), nullable=False),
)
watermarks = Table(
    "aiops_watermarks", metadata,
    Column("name", String(200), primary_key=True),
    Column("value", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("run_id", String(250)),
)
audit_log = Table(
    "aiops_audit_log", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("actor", String(200), nullable=False),
    Column("action", String(100), nullable=False),
    Column("subject", String(500), nullable=False),
    Column("detail", JSON),
    Column("run_id", String(250)),
    Column("note", Text),
)

remediation_requests = Table(
    "aiops_remediation_requests", metadata,
    Column("request_id", String(64), primary_key=True),  # derived from the remediate run: idempotent
    Column("run_id", String(250), nullable=False),
    Column("runbook", String(100), nullable=False),
    Column("parameters", JSON, nullable=False),
    Column("targets", JSON, nullable=False),
    Column("plan", JSON, nullable=False),
    Column("requested_by", String(200), nullable=False),
    Column("reason", Text),
    Column("incident_id", String(100)),
    Column("status", String(40), nullable=False),
    Column("approvals", JSON, nullable=False),  # [{"user", "decision", "at"}]
    Column("execution_id", String(100)),
    Column("outcome", JSON),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

slo_history = Table(
    "aiops_slo_history", metadata,
    # One row per SLO and 5-minute evaluation point; written by slo_tracking as an upsert of the
    # evaluated range, so a retry or a backfill rewrites the same rows (see aiops.slo.pipeline).
    Column("slo_id", String(100), primary_key=True),
    Column("evaluated_at", DateTime(timezone=True), primary_key=True),
    Column("service", String(100), nullable=False),
    Column("env", String(50)),
    Column("team", String(100)),
    Column("objective", Float, nullable=False),
    Column("window_days", Integer, nullable=False),
    Column("sli", Float),  # over the rolling window (NULL: no events)
    Column("budget_remaining", Float),  # share of the window's error budget left; < 0 overspent
    Column("coverage", Float, nullable=False),  # share of the window with data (partial history)
    Column("good", Float, nullable=False),
    Column("total", Float, nullable=False),
    Column("burn_rates", JSON, nullable=False),  # {"5m": 0.4, "1h": 0.7, ...}; null where no events
    Column("firing", JSON, nullable=False),  # names of the burn-rate rules firing
    Column("severity", String(10), nullable=False),  # none | ticket | page
    Column("alert", String(10)),  # severity of an alert that starts at this point, else NULL
    Column("fingerprint", String(32)),
    Index("ix_aiops_slo_history_service_time", "service", "evaluated_at"),
)

incidents = Table(
    "aiops_incidents", metadata,
    # One row per incident; `group_key` (from the alerting engine) makes open_or_update idempotent
    # and the id is derived from it, so concurrent intake runs converge on one row.
    Column("incident_id", String(40), primary_key=True),
    Column("group_key", String(250), nullable=False, unique=True),
    Column("title", String(500), nullable=False),
    Column("service", String(100)),
    Column("env", String(50)),
    Column("team", String(100)),
    Column("severity", String(10), nullable=False),
    Column("root_resource", String(500)),
    Column("state", String(20), nullable=False),
    Column("first_seen", DateTime(timezone=True), nullable=False),
    Column("last_seen", DateTime(timezone=True), nullable=False),
    Column("detected_at", DateTime(timezone=True), nullable=False),  # when the incident was opened
    Column("triaged_at", DateTime(timezone=True)),
    Column("remediation_started_at", DateTime(timezone=True)),
    Column("resolved_at", DateTime(timezone=True)),
    Column("escalated_at", DateTime(timezone=True)),
    Column("alerts", JSON, nullable=False),  # Alert.model_dump(mode="json"), deduplicated by event_id
    Column("routed_to", JSON, nullable=False),
    Column("links", JSON, nullable=False),  # {"evidence": key, "postmortem_md": key, "remediate_run": ...}
    Column("time_to_detect_seconds", Float),
    Column("mttr_seconds", Float),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Index("ix_aiops_incidents_state", "state"),
)
incident_timeline = Table(
    "aiops_incident_timeline", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("incident_id", String(40), nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("kind", String(20), nullable=False),  # opened | updated | transition | note
    Column("from_state", String(20)),
    Column("to_state", String(20)),
    Column("actor", String(200), nullable=False),
    Column("reason", Text),
    Column("run_id", String(250)),
    Column("links", JSON),
    Column("key", String(250)),  # idempotency key: unique per incident, a retry is a no-op
    Column("detail", JSON),
    Index("ux_aiops_incident_timeline_key", "incident_id", "key", unique=True),
)

ops_changes = Table(
    "aiops_ops_changes", metadata,
    # Routine operations (issue 9): one row per change a workflow made or planned, keyed so that a
    # re-run of the same interval finds its change done and does not make it twice (aiops.ops.records).
    Column("change_key", String(400), primary_key=True),  # <workflow>/<interval>/<action>/<resource>
    Column("workflow", String(100), nullable=False),
    Column("action", String(60), nullable=False),
    Column("resource_id", String(300), nullable=False),
    Column("policy", String(100)),
    Column("status", String(20), nullable=False),  # done | failed
    Column("detail", JSON),
    Column("run_id", String(250)),
    Column("at", DateTime(timezone=True), nullable=False),
    Index("ix_aiops_ops_changes_workflow_at", "workflow", "at"),
)

alert_ledger = Table(
    "aiops_alerts", metadata,
    # Alerting (issue 5): one row per normalised alert (event id), with the engine's decision. The
    # intake reads a time window of it for dedup (fingerprint), flapping (state changes) and grouping
    # (scope -> group_key); a re-delivered event finds its row and is not decided twice.
    Column("event_id", String(200), primary_key=True),
    Column("fingerprint", String(64), nullable=False),
    Column("source", String(40), nullable=False),
    Column("time", DateTime(timezone=True), nullable=False),
    Column("received_at", DateTime(timezone=True), nullable=False),
    Column("state", String(10), nullable=False),  # firing | resolved
    Column("severity", String(10), nullable=False),
    Column("service", String(100)),
    Column("env", String(50)),
    Column("team", String(100)),
    Column("resource", String(500)),
    Column("scope", String(500), nullable=False),
    Column("group_key", String(250)),
    Column("decision", String(20), nullable=False),  # accepted | duplicate | suppressed | resolved | informational
    Column("reason", Text),
    Column("alert", JSON, nullable=False),
    Column("run_id", String(250)),
    Index("ix_aiops_alerts_time", "time"),
    Index("ix_aiops_alerts_fingerprint_time", "fingerprint", "time"),
)
alert_dead_letters = Table(
    "aiops_alert_dead_letters", metadata,
    Column("key", String(64), primary_key=True),  # hash of reason + body: a re-delivery is recorded once
    Column("received_at", DateTime(timezone=True), nullable=False),
    Column("reason", Text, nullable=False),
    Column("source", String(100)),
    Column("detail_type", String(200)),
    Column("message_id", String(200)),
    Column("body", Text, nullable=False),
    Column("run_id", String(250)),
)
alert_notifications = Table(
    "aiops_alert_notifications", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("group_key", String(250), nullable=False),
    Column("incident_id", String(40)),
    Column("severity", String(10), nullable=False),
    Column("topic", String(300), nullable=False),  # topic ARN (or name when it could not be resolved)
    Column("status", String(20), nullable=False),  # sent | failed
    Column("message_id", String(200)),
    Column("subject", String(200), nullable=False),
    Column("error", Text),
    Column("sent_at", DateTime(timezone=True), nullable=False),
    Column("run_id", String(250)),
    Index("ix_aiops_alert_notifications_group", "group_key"),
)

cost_decisions = Table(
    "aiops_cost_decisions", metadata,
    # Cost intelligence (issue 6): one row per FinOps decision on a right-sizing recommendation
    # (apply | defer | dismiss), keyed by the review run so a retry rewrites, never duplicates.
    # `until` hides the recommendation until then (dismiss: cost_dismiss_days). An applied one carries
    # its estimated monthly savings and the remediate run that applies it (realised savings).
    Column("recommendation_id", String(300), primary_key=True),
    Column("review_run_id", String(250), primary_key=True),
    Column("decision", String(10), nullable=False),
    Column("decided_by", String(200), nullable=False),
    Column("decided_at", DateTime(timezone=True), nullable=False),
    Column("until", DateTime(timezone=True)),
    Column("resource_id", String(300), nullable=False),
    Column("kind", String(50), nullable=False),
    Column("monthly_savings_usd", Float, nullable=False),
    Column("runbook", String(100)),
    Column("remediate_run_id", String(250)),
    Column("recommendation", JSON, nullable=False),
    Index("ix_aiops_cost_decisions_until", "until"),
)

compliance_sweeps = Table(
    "aiops_compliance_sweeps", metadata,
    # Compliance (issue 7): one row per sweep, keyed by the run's logical date (a retry or a
    # backfill of the same day rewrites it; aiops.compliance.history).
    Column("sweep_id", String(100), primary_key=True),
    Column("as_of", DateTime(timezone=True), nullable=False),
    Column("account_id", String(20), nullable=False),
    Column("regions", JSON, nullable=False),
    Column("score", Float),  # share of evaluated checks without a FAILED result (suppressed = passing)
    Column("counts", JSON, nullable=False),  # {"PASSED": n, "FAILED": n, "SUPPRESSED": n}
    Column("errors", JSON, nullable=False),  # check id -> why it was not evaluated
    Column("diff", JSON),  # counts of new | resolved | regressed | still_failing vs the previous sweep
    Column("run_id", String(250)),
    Column("recorded_at", DateTime(timezone=True), nullable=False),
    Index("ix_aiops_compliance_sweeps_as_of", "as_of"),
)
compliance_results = Table(
    "aiops_compliance_results", metadata,
    Column("sweep_id", String(100), primary_key=True),
    Column("check_id", String(100), primary_key=True),
    Column("resource_key", String(500), primary_key=True),  # ARN, or id where AWS defines no ARN
    Column("resource_id", String(500), nullable=False),
    Column("resource_type", String(100), nullable=False),
    Column("region", String(30), nullable=False),
    Column("status", String(10), nullable=False),  # PASSED | FAILED (what AWS says)
    Column("effective", String(12), nullable=False),  # PASSED | FAILED | SUPPRESSED
    Column("severity", String(15), nullable=False),
    Column("reason", Text),
    Column("suppressed", Text),
    Column("result", JSON, nullable=False),
    Index("ix_aiops_compliance_results_key", "check_id", "resource_key"),
)
security_quarantine = Table(
    "aiops_security_quarantine", metadata,
    # CloudTrail log files that could not be read: quarantined once per key with the reason.
    Column("log_key", String(500), primary_key=True),
    Column("bucket", String(100), nullable=False),
    Column("reason", Text, nullable=False),
    Column("artifact_key", String(500)),
    Column("quarantined_at", DateTime(timezone=True), nullable=False),
    Column("run_id", String(250)),
)


Migration = Callable[[Connection], None]


def _v1_initial(conn: Connection) -> None:
    for table in (watermarks, audit_log):
        table.create(conn, checkfirst=True)


def _v2_remediation(conn: Connection) -> None:
    remediation_requests.create(conn, checkfirst=True)


def _v3_slo_history(conn: Connection) -> None:
    slo_history.create(conn, checkfirst=True)


def _v8_routine_ops(conn: Connection) -> None:
    ops_changes.create(conn, checkfirst=True)


def _v4_alerting(conn: Connection) -> None:
    for table in (alert_ledger, alert_dead_letters, alert_notifications):
        table.create(conn, checkfirst=True)


def _v5_incidents(conn: Connection) -> None:
    for table in (incidents, incident_timeline):
        table.create(conn, checkfirst=True)


# Append new migrations; never edit or reorder applied ones.
def _v6_cost_decisions(conn: Connection) -> None:
    cost_decisions.create(conn, checkfirst=True)


def _v7_compliance(conn: Connection) -> None:
    for table in (compliance_sweeps, compliance_results, security_quarantine):
        table.create(conn, checkfirst=True)


MIGRATIONS: list[tuple[int, str, Migration]] = [
    (1, "watermarks and audit log", _v1_initial),
    (2, "remediation requests", _v2_remediation),
    (3, "SLO history", _v3_slo_history),
    # Reserved, one per domain (applied in any order on a fresh or older database):
    # 4 alerting (alerts, dead letters) | 5 incidents | 6 cost decisions | 7 compliance | 8 routine ops
    (5, "incidents", _v5_incidents),
    (8, "routine ops changes", _v8_routine_ops),
    (4, "alerting: alerts seen, dead letters, notifications", _v4_alerting),
    (6, "cost decisions: apply/defer/dismiss, realised savings", _v6_cost_decisions),
    (7, "compliance: sweeps, results with history, quarantined CloudTrail log files", _v7_compliance),
]


def state_db_url(conn_id: str | None = None) -> str:
    """SQLAlchemy URL of the state store: the Airflow connection, else the default SQLite file."""
    settings = get_settings()
    conn_id = conn_id or settings.state_conn_id
    from aiops.core.connections import quick_connection

    decided, quick = quick_connection(conn_id)  # the plain cases without importing Airflow (fast CLI)
    conn: Any = quick
    if not decided:
        try:
            from airflow.sdk import BaseHook

            conn = BaseHook.get_connection(conn_id)
        except Exception:  # connection not defined: the embedded default
            conn = None
    if conn is None:
        path = settings.home / "state.db"
        path.parent.mkdir(parents=True, exist_ok=True)
        return f"sqlite:///{path}"
    if conn.conn_type == "sqlite":
        # Airflow keeps a SQLite path in `host` (UI form) or, from a URI, in `schema`.
        db_file: str = conn.host or (f"/{conn.schema}" if conn.schema else "")
        if not db_file:
            raise ValueError(f"connection {conn_id!r} (sqlite) names no database file")
        return f"sqlite:///{db_file}"
    uri = conn.get_uri()
    for prefix in ("postgres://", "postgresql://"):
        if uri.startswith(prefix):
            return "postgresql+psycopg2://" + uri[len(prefix):]
    return uri


_engines: dict[str, Engine] = {}
_engine_lock = threading.Lock()


def _engine(url: str) -> Engine:
    with _engine_lock:
        if url not in _engines:
            kwargs: dict[str, Any] = {"future": True}
            if url.startswith("sqlite"):
                kwargs["connect_args"] = {"timeout": 30}
            _engines[url] = create_engine(url, **kwargs)
        return _engines[url]


class StateStore:
    def __init__(self, url: str | None = None) -> None:
        self.url = url or state_db_url()
        self.engine = _engine(self.url)
        self._migrated = False

    def migrate(self) -> list[int]:
        """Apply pending migrations; returns the versions applied (empty when up to date)."""
        applied: list[int] = []
        with self.engine.begin() as conn:
            schema_version.create(conn, checkfirst=True)
            done = {row[0] for row in conn.execute(select(schema_version.c.version))}
        for version, description, fn in MIGRATIONS:
            if version in done:
                continue
            with self.engine.begin() as conn:
                fn(conn)
                conn.execute(insert(schema_version).values(
                    version=version, description=description, applied_at=datetime.now(UTC)))
            applied.append(version)
        self._migrated = True
        return applied

    def _ready(self) -> None:
        if not self._migrated:
            self.migrate()

    def schema_version(self) -> int:
        self._ready()
        with self.engine.connect() as conn:
            versions = [row[0] for row in conn.execute(select(schema_version.c.version))]
        return max(versions, default=0)

    # -- watermarks ------------------------------------------------------------------------------
    def get_watermark(self, name: str) -> datetime | None:
        self._ready()
        with self.engine.connect() as conn:
            value = conn.execute(select(watermarks.c.value).where(watermarks.c.name == name)).scalar()
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value

    def set_watermark(self, name: str, value: datetime, run_id: str | None = None) -> None:
        """Upsert; a watermark never moves backwards (a backfill of the past leaves it alone)."""
        self._ready()
        now = datetime.now(UTC)
        with self.engine.begin() as conn:
            current = conn.execute(select(watermarks.c.value).where(watermarks.c.name == name)).scalar()
            if current is None:
                conn.execute(insert(watermarks).values(name=name, value=value, updated_at=now, run_id=run_id))
                return
            if current.tzinfo is None:
                current = current.replace(tzinfo=UTC)
            if value > current:
                conn.execute(update(watermarks).where(watermarks.c.name == name).values(
                    value=value, updated_at=now, run_id=run_id))

    # -- audit trail -----------------------------------------------------------------------------
    def audit(self, *, actor: str, action: str, subject: str, detail: dict[str, Any] | None = None,
              run_id: str | None = None, note: str | None = None) -> int:
        self._ready()
        with self.engine.begin() as conn:
            result = conn.execute(insert(audit_log).values(
                at=datetime.now(UTC), actor=actor, action=action, subject=subject,
                detail=json.loads(json.dumps(detail or {}, default=str)), run_id=run_id, note=note))
            key = result.inserted_primary_key
            if key is None:  # only for executemany / non-insert statements, which this is not
                raise RuntimeError("audit_log insert returned no primary key")
            return int(key[0])

    # -- remediation requests --------------------------------------------------------------------
    def upsert_request(self, request_id: str, **fields: Any) -> None:
        """Create the request row on first sight, update it afterwards (retries never duplicate)."""
        self._ready()
        now = datetime.now(UTC)
        fields = {k: json.loads(json.dumps(v, default=str)) if isinstance(v, dict | list) else v
                  for k, v in fields.items()}
        with self.engine.begin() as conn:
            exists = conn.execute(select(remediation_requests.c.request_id).where(
                remediation_requests.c.request_id == request_id)).scalar()
            if exists:
                conn.execute(update(remediation_requests).where(
                    remediation_requests.c.request_id == request_id).values(updated_at=now, **fields))
            else:
                defaults = {"parameters": {}, "targets": [], "plan": {}, "approvals": [], "status": "requested",
                            "requested_by": "unknown", "runbook": "", "run_id": ""}
                conn.execute(insert(remediation_requests).values(
                    request_id=request_id, created_at=now, updated_at=now, **{**defaults, **fields}))

    def get_request(self, request_id: str) -> dict[str, Any] | None:
        self._ready()
        with self.engine.connect() as conn:
            row = conn.execute(select(remediation_requests).where(
                remediation_requests.c.request_id == request_id)).first()
        return dict(row._mapping) if row else None

    def audit_entries(self, subject: str | None = None) -> list[dict[str, Any]]:
        self._ready()
        query = select(audit_log).order_by(audit_log.c.id)
        if subject:
            query = query.where(audit_log.c.subject == subject)
        with self.engine.connect() as conn:
            return [dict(row._mapping) for row in conn.execute(query)]
