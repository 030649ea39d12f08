"""The state store: operational records (watermarks, audit trail; later incidents, approvals,
findings history, recommendation decisions) in SQL through SQLAlchemy.

The database is the Airflow connection ``settings.state_conn_id`` (Postgres in compose); when
that connection does not exist, a SQLite file under ``settings.home``. The schema is migrated by
Alembic (``aiops/core/migrations``, version table ``aiops_alembic_version``) under a lock, once, on
first use or by ``aiops state migrate``. Concurrency (SQLite WAL + ``BEGIN IMMEDIATE``, Postgres row
locks) is described next to the engine below and in docs/state-store.md.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
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
    UniqueConstraint,
    create_engine,
    delete,
    event,
    insert,
    inspect,
    select,
    text,
    update,
)
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from aiops.core.connections import quick_connection
from aiops.core.redact import private_file
from aiops.core.settings import get_settings

metadata = MetaData()

watermarks = Table(
    "aiops_watermarks", metadata,
    # Per AWS account: a second account's connection has its own history to pull (revision 0002).
    Column("name", String(200), primary_key=True),
    Column("account_id", String(20), primary_key=True, server_default=""),
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
    Column("account_id", String(20)),
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
    Column("account_id", String(20), nullable=False, server_default=""),  # of its alerts; '' unknown
    Column("group_key", String(250), nullable=False),  # unique per account (revision 0002)
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
    UniqueConstraint("account_id", "group_key", name="uq_aiops_incidents_account_group"),
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
    # re-run of the same interval finds its change done and does not make it twice (aiops.remediation.records).
    Column("change_key", String(400), primary_key=True),  # <workflow>/<interval>/<action>/<resource>
    Column("workflow", String(100), nullable=False),
    Column("action", String(60), nullable=False),
    Column("resource_id", String(300), nullable=False),
    Column("policy", String(100)),
    Column("status", String(20), nullable=False),  # done | failed | refused | sent
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
    Column("account_id", String(20)),
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


def state_db_url(conn_id: str | None = None) -> str:
    """SQLAlchemy URL of the state store: the Airflow connection, else the default SQLite file."""
    settings = get_settings()
    conn_id = conn_id or settings.state_conn_id

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


# -- engine: SQLite in WAL mode with write transactions that lock up front; Postgres row locks ------------
#
# SQLite: the pysqlite driver by default runs SELECTs outside any transaction and opens one only at the
# first INSERT/UPDATE, so a read-modify-write of a JSON column (fold an alert into an incident) read
# stale data and overwrote other writers' changes. Here the store issues BEGIN itself: a write
# transaction (``StateEngine.begin()`` / :meth:`StateStore.transaction`) is ``BEGIN IMMEDIATE`` and
# holds the database's write lock from its first read; a read (``connect()``) is a deferred BEGIN,
# which in WAL mode reads a snapshot without blocking writers. ``busy_timeout`` makes a waiting writer
# queue instead of failing.
# Postgres: read-modify-write selects use ``SELECT ... FOR UPDATE`` (see ``with_for_update()`` in the
# callers); the migration lock is an advisory transaction lock.

BUSY_TIMEOUT_SECONDS = 60
VERSION_TABLE = "aiops_alembic_version"  # not Airflow's `alembic_version`: the two may share a database
LEGACY_VERSION_TABLE = "aiops_schema_version"  # the pre-Alembic hand-ordered migrations
_MIGRATION_LOCK_KEY = 0x41_494F_5053  # "AIOPS": pg_advisory_xact_lock key of state-store migrations
_WRITE = "aiops_write"

_engines: dict[str, Engine] = {}
_engine_lock = threading.Lock()


def _sqlite_engine(url: str) -> Engine:
    engine = create_engine(url, connect_args={"timeout": BUSY_TIMEOUT_SECONDS})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # the driver's implicit BEGIN is off: _on_begin issues it
        cursor = dbapi_conn.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_SECONDS * 1000}")
        cursor.execute("PRAGMA journal_mode = WAL")  # persistent; readers never block the writer
        cursor.execute("PRAGMA synchronous = NORMAL")  # durable at checkpoints; the WAL default
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get(_WRITE) else "BEGIN")

    return engine


def _engine(url: str) -> Engine:
    with _engine_lock:
        if url not in _engines:
            if url.startswith("sqlite"):
                if url.startswith("sqlite:///") and url != "sqlite:///:memory:":
                    private_file(url[len("sqlite:///"):].split("?")[0])  # readable by its owner only
                _engines[url] = _sqlite_engine(url)
            else:
                _engines[url] = create_engine(url, pool_pre_ping=True)
        return _engines[url]


class StateEngine:
    """The store's engine. ``begin()`` is a WRITE transaction (SQLite: ``BEGIN IMMEDIATE``, so whatever
    it reads stays current until it commits); ``connect()`` reads. Everything else is the SQLAlchemy
    :class:`~sqlalchemy.Engine`'s (``dialect``, ``url``, ``dispose`` ...)."""

    def __init__(self, engine: Engine) -> None:
        self.sa_engine = engine

    @contextmanager
    def begin(self) -> Iterator[Connection]:
        with self.sa_engine.connect() as conn:
            conn.execution_options(**{_WRITE: True})
            with conn.begin():
                yield conn

    def connect(self) -> Connection:
        return self.sa_engine.connect()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.sa_engine, name)


def _alembic_config(conn: Connection | None = None) -> Any:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(Path(__file__).with_name("migrations")))
    cfg.attributes["connection"] = conn
    return cfg


_heads: list[str] = []


def head_revision() -> str:
    """The newest revision in ``aiops/core/migrations/versions`` (one linear history)."""
    if not _heads:
        from alembic.script import ScriptDirectory

        _heads.append(ScriptDirectory.from_config(_alembic_config()).get_current_head() or "")
    return _heads[0]


_migrated: set[str] = set()  # URLs this process has seen at head


class StateStore:
    def __init__(self, url: str | None = None) -> None:
        self.url = url or state_db_url()
        self.engine = StateEngine(_engine(self.url))

    @property
    def is_postgres(self) -> bool:
        return self.engine.dialect.name == "postgresql"

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """A write transaction for read-modify-write: SQLite holds the write lock from the first
        statement; on Postgres lock the rows you read with ``select(...).with_for_update()``."""
        with self.engine.begin() as conn:
            yield conn

    def _current_revision(self, conn: Connection) -> str | None:
        if not inspect(conn).has_table(VERSION_TABLE):
            return None
        return conn.exec_driver_sql(f"SELECT version_num FROM {VERSION_TABLE}").scalar()

    def migrate(self) -> list[str]:
        """Upgrade the schema to the newest revision; returns the revisions applied (empty when up to
        date). Safe to call from many processes at once: the first takes the migration lock and
        upgrades, the others wait for it and then find the schema current.

        A database created before the Alembic revisions (``aiops_schema_version``) upgrades the same way:
        the baseline revision creates only the tables it lacks."""
        from alembic import command
        from alembic.script import ScriptDirectory

        with self.engine.connect() as conn:  # the common case, without the lock: already at head
            if self._current_revision(conn) == head_revision():
                _migrated.add(self.url)
                return []
        with self.transaction() as conn:
            if self.is_postgres:
                conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK_KEY})
            before = self._current_revision(conn)
            cfg = _alembic_config(conn)
            command.upgrade(cfg, "head")
            script = ScriptDirectory.from_config(cfg)
            applied = [r.revision for r in script.iterate_revisions("head", before or "base")]
        _migrated.add(self.url)
        return list(reversed(applied))

    def _ready(self) -> None:
        if self.url in _migrated:
            return
        with self.engine.connect() as conn:
            current = self._current_revision(conn)
        if current == head_revision():
            _migrated.add(self.url)
        else:
            self.migrate()

    def schema_revision(self) -> str | None:
        """The revision the database is at (None before the first migration)."""
        with self.engine.connect() as conn:
            return self._current_revision(conn)

    def schema_version(self) -> str | None:
        """The schema revision after migrating (kept for callers of the pre-Alembic API)."""
        self._ready()
        return self.schema_revision()

    # -- watermarks ------------------------------------------------------------------------------
    def get_watermark(self, name: str, *, account_id: str = "") -> datetime | None:
        """The watermark ``name`` of AWS account ``account_id`` (``''``: not account-bound)."""
        self._ready()
        with self.engine.connect() as conn:
            value = conn.execute(select(watermarks.c.value).where(
                watermarks.c.name == name, watermarks.c.account_id == account_id)).scalar()
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value

    def set_watermark(self, name: str, value: datetime, run_id: str | None = None, *,
                      account_id: str = "") -> None:
        """Upsert; a watermark never moves backwards (a backfill of the past leaves it alone)."""
        self._ready()
        key = (watermarks.c.name == name, watermarks.c.account_id == account_id)
        for attempt in range(2):  # Postgres: a racing first insert loses on the key, then updates
            now = datetime.now(UTC)
            try:
                with self.transaction() as conn:
                    current = conn.execute(select(watermarks.c.value).where(*key).with_for_update()).scalar()
                    if current is None:
                        conn.execute(insert(watermarks).values(name=name, account_id=account_id, value=value,
                                                               updated_at=now, run_id=run_id))
                        return
                    if current.tzinfo is None:
                        current = current.replace(tzinfo=UTC)
                    if value > current:
                        conn.execute(update(watermarks).where(*key).values(value=value, updated_at=now,
                                                                           run_id=run_id))
                    return
            except IntegrityError:
                if attempt:
                    raise

    def clear_watermark(self, name: str, *, account_id: str = "") -> None:
        """Forget a watermark (its data is gone): the next run starts from an empty store."""
        self._ready()
        with self.transaction() as conn:
            conn.execute(delete(watermarks).where(watermarks.c.name == name, watermarks.c.account_id == account_id))

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
        with self.transaction() as conn:
            exists = conn.execute(select(remediation_requests.c.request_id).where(
                remediation_requests.c.request_id == request_id).with_for_update()).scalar()
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
