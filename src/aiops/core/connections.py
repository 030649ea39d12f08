"""Read an Airflow connection without importing Airflow, when that gives the same answer.

Importing Airflow costs seconds (and configures its logging), which made every ``aiops`` CLI call
that touches the state store take ~5 s. Airflow resolves a connection from, in order, a secrets
backend, an ``AIRFLOW_CONN_<ID>`` variable, and the metadata database. :func:`quick_connection`
answers the plain cases itself:

* ``AIRFLOW_CONN_<ID>`` as JSON, or as a ``postgres(ql)://`` URI;
* no such variable, no secrets backend, and a SQLite metadata database: the ``connection`` row
  (or "not defined") — unless its password/extra are encrypted (Fernet: Airflow decrypts those).

Anything else (a secrets backend, ``_CMD``/``_SECRET`` config, another metadata database, an
encrypted row, another URI scheme) returns ``decided=False`` and the caller asks Airflow, so the
answer never differs from Airflow's.
"""

from __future__ import annotations

import configparser
import json
import os
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlsplit


@dataclass(frozen=True)
class Conn:
    conn_id: str
    conn_type: str
    host: str | None = None
    schema: str | None = None
    login: str | None = None
    password: str | None = None
    port: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def get_uri(self) -> str:
        auth = ""
        if self.login or self.password:
            auth = quote(self.login or "", safe="") + (":" + quote(self.password, safe="") if self.password else "") + "@"
        port = f":{self.port}" if self.port else ""
        return f"{self.conn_type.replace('_', '-')}://{auth}{self.host or ''}{port}/{self.schema or ''}"


def _airflow_home() -> Path:
    return Path(os.environ.get("AIRFLOW_HOME") or Path.home() / "airflow")


def _config(section: str, key: str) -> tuple[bool, str | None]:
    """(plain, value): the value from the env var or airflow.cfg; plain=False when it is indirect."""
    env = f"AIRFLOW__{section.upper()}__{key.upper()}"
    if os.environ.get(env + "_CMD") or os.environ.get(env + "_SECRET"):
        return False, None
    if env in os.environ:
        return True, os.environ[env]
    cfg = Path(os.environ.get("AIRFLOW_CONFIG") or _airflow_home() / "airflow.cfg")
    if not cfg.is_file():
        return True, None
    parser = configparser.ConfigParser(interpolation=None, strict=False)
    try:
        parser.read(cfg)
    except configparser.Error:
        return False, None
    if parser.has_option(section, f"{key}_cmd") or parser.has_option(section, f"{key}_secret"):
        return False, None
    return True, parser.get(section, key, fallback=None)


def _from_env(conn_id: str, raw: str) -> tuple[bool, Conn | None]:
    text = raw.strip()
    if text.startswith("{"):
        try:
            data = json.loads(text)
        except ValueError:
            return False, None  # let Airflow report the malformed value
        extra = data.get("extra") or {}
        if isinstance(extra, str):
            try:
                extra = json.loads(extra)
            except ValueError:
                return False, None
        port = data.get("port")
        return True, Conn(conn_id=conn_id, conn_type=str(data.get("conn_type", "")), host=data.get("host"),
                          schema=data.get("schema"), login=data.get("login"), password=data.get("password"),
                          port=int(port) if port else None, extra=extra)
    parts = urlsplit(text)
    if parts.scheme not in ("postgres", "postgresql") or parts.query:
        return False, None
    return True, Conn(conn_id=conn_id, conn_type="postgres", host=unquote(parts.hostname or "") or None,
                      schema=unquote(parts.path.lstrip("/")) or None,
                      login=unquote(parts.username) if parts.username else None,
                      password=unquote(parts.password) if parts.password else None, port=parts.port)


def quick_connection(conn_id: str) -> tuple[bool, Conn | None]:
    """``(decided, conn)``: decided with ``conn=None`` means "not defined anywhere"; not decided means
    "ask Airflow" (see the module docstring)."""
    raw = os.environ.get(f"AIRFLOW_CONN_{conn_id.upper()}")
    if raw:
        return _from_env(conn_id, raw)
    plain, backend = _config("secrets", "backend")
    if not plain or backend:
        return False, None
    plain, url = _config("database", "sql_alchemy_conn")
    if not plain:
        return False, None
    if url is None:
        url = f"sqlite:///{_airflow_home() / 'airflow.db'}"
    if not url.startswith("sqlite:///"):
        return False, None
    path = Path(url[len("sqlite:///"):].split("?", 1)[0])
    if not path.is_file():
        return True, None  # no metadata database: no connection defined in it
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5) as db:
            row = db.execute("SELECT conn_type, host, schema, login, password, port, extra, is_encrypted, "
                             "is_extra_encrypted FROM connection WHERE conn_id = ?", (conn_id,)).fetchone()
    except sqlite3.OperationalError as exc:
        if "no such table" in str(exc):
            return True, None  # a database Airflow has not migrated: it holds no connections
        return False, None
    except sqlite3.Error:
        return False, None
    if row is None:
        return True, None
    conn_type, host, schema, login, password, port, extra, enc, extra_enc = row
    if (enc and password) or (extra_enc and extra):
        return False, None
    try:
        extra_dict = json.loads(extra) if extra else {}
    except ValueError:
        return False, None
    return True, Conn(conn_id=conn_id, conn_type=conn_type or "", host=host, schema=schema, login=login,
                      password=password, port=port, extra=extra_dict)
