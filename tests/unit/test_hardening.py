"""Plugin and file hardening: the console app serves no API docs and never runs without auth; the
state DB and the generated password file are owner-only; the CLI masks secrets."""

from __future__ import annotations

import importlib.util
import os
import stat
import sys
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

PLUGIN = Path(__file__).resolve().parents[2] / "plugins" / "aiops_plugin.py"


def _load_plugin():
    spec = importlib.util.spec_from_file_location("aiops_plugin_under_test", PLUGIN)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# -- the console app -----------------------------------------------------------------------------------
@pytest.mark.parametrize("path", ["/docs", "/redoc", "/openapi.json", "/docs/oauth2-redirect"])
def test_plugin_serves_no_api_docs(path):
    app = _load_plugin().AiopsPlugin.fastapi_apps[0]["app"]
    response = TestClient(app, raise_server_exceptions=False).get(path)
    assert response.status_code in {401, 403, 404}
    assert "swagger" not in response.text.lower()
    assert "openapi" not in response.text.lower()


def test_plugin_pages_need_a_login():
    app = _load_plugin().AiopsPlugin.fastapi_apps[0]["app"]
    client = TestClient(app, raise_server_exceptions=False)
    for path in ("/", "/status", "/status.json"):
        response = client.get(path)
        assert response.status_code in {401, 403}, (path, response.status_code)
        assert "MatCarv" not in response.text


def test_auth_import_failure_is_an_error_not_an_open_app(monkeypatch):
    """A fresh API server whose auth import fails: the console module and the plugin fail to import
    (Airflow lists a plugin import error) instead of serving pages without authentication."""
    import importlib

    monkeypatch.setitem(sys.modules, "airflow.api_fastapi.core_api.security", None)  # import now fails
    monkeypatch.delitem(sys.modules, "aiops.console.app", raising=False)
    with pytest.raises(ImportError):
        importlib.import_module("aiops.console.app")
    monkeypatch.delitem(sys.modules, "aiops.console.app", raising=False)
    with pytest.raises(ImportError):
        _load_plugin()


# -- file modes --------------------------------------------------------------------------------------
@pytest.fixture
def loose_umask():
    old = os.umask(0o022)
    yield
    os.umask(old)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_state_db_is_owner_only(tmp_path, loose_umask):
    from aiops.core.state import StateStore

    db = tmp_path / "state.db"
    store = StateStore(f"sqlite:///{db}")
    store.migrate()
    store.audit(actor="t", action="x", subject="y")
    assert _mode(db) == 0o600
    for extra in tmp_path.glob("state.db-*"):  # WAL / journal files follow the database's mode
        assert _mode(extra) & 0o077 == 0, extra


def test_existing_world_readable_state_db_is_tightened(tmp_path, loose_umask):
    from aiops.core.state import StateStore

    db = tmp_path / "old.db"
    db.touch(mode=0o644)
    assert _mode(db) == 0o644
    StateStore(f"sqlite:///{db}").migrate()
    assert _mode(db) == 0o600


def test_devrun_password_file_is_created_owner_only_before_airflow_writes_it(tmp_path, loose_umask):
    """Airflow appends the generated passwords to an existing file (mode kept), so we create it 0600."""
    from aiops.core.redact import private_file

    path = private_file(tmp_path / "simple_auth_manager_passwords.json.generated")
    assert _mode(path) == 0o600
    with open(path, "a+") as handle:  # what SimpleAuthManager does
        handle.write('{"admin": "pw"}')
    assert _mode(path) == 0o600
    devrun = (Path(__file__).resolve().parents[2] / "sandbox" / "src" / "aiops_sandbox" / "devrun.py").read_text()
    assert 'private_file(airflow_home / "simple_auth_manager_passwords.json.generated")' in devrun


# -- secrets in CLI output ------------------------------------------------------------------------------
def test_state_migrate_masks_the_database_password(monkeypatch, capsys):
    import aiops.core.state as state
    from aiops.cli import main

    class FakeStore:
        url = "postgresql+psycopg2://aiops:s3cr3t-pw@db.internal:5432/aiops_state"

        def migrate(self) -> list[str]:
            return []

        def schema_revision(self) -> str:
            return "0001"

    monkeypatch.setattr(state, "StateStore", FakeStore)
    assert main(["state", "migrate"]) == 0
    out = capsys.readouterr().out
    assert "s3cr3t-pw" not in out
    assert "postgresql+psycopg2://aiops:***@db.internal:5432/aiops_state" in out


def test_config_masks_credentials(monkeypatch, capsys):
    from aiops.cli import main
    from aiops.core.settings import get_settings

    monkeypatch.setenv("AIOPS_ALERTING_QUEUE_URL", "https://svc:queue-pw@sqs.example/123456789012/q")
    get_settings.cache_clear()
    try:
        assert main(["config"]) == 0
    finally:
        get_settings.cache_clear()
    out = capsys.readouterr().out
    assert "queue-pw" not in out
    assert "https://svc:***@sqs.example/123456789012/q" in out


@pytest.mark.parametrize(("name", "value", "shown"), [
    ("db_password", "hunter2", "***"), ("api_token", "abc", "***"), ("jwt_secret", "x", "***"),
    ("state_url", "postgresql://u:p@h/db", "postgresql://u:***@h/db"), ("bucket", "b", "b"),
    ("db_password", "", ""),
])
def test_mask_setting(name, value, shown):
    from aiops.core.redact import mask_setting

    assert mask_setting(name, value) == shown


# -- every approval has assigned users --------------------------------------------------------------------
def test_prod_patch_install_without_policy_approvers_is_assigned_to_the_default_approvers():
    from datetime import UTC, datetime

    from aiops.core.settings import get_settings
    from aiops.ops import patching
    from aiops.ops.policy import PatchPolicy

    policy = PatchPolicy.model_validate({"id": "p", "selector": {"PatchGroup": "g"}, "mode": "enforce",
                                         "maintenance_window": {"days": ["sun"], "start": "23:00",
                                                                "duration_minutes": 240, "timezone": "UTC"}})
    assert policy.approvers == []
    fleet = [patching.Instance(f"i-{k}", "running", {"env": "prod", "Name": f"h{k}"}) for k in range(2)]
    _, _, plan = patching.plan_patching([policy], {"p": fleet}, datetime(2026, 11, 22, 23, 30, tzinfo=UTC),
                                        default_batch_size=3)
    assert plan["needs_approval"] is True
    assert plan["approvers"] == sorted(get_settings().ops_patch_approvers)
    assert plan["approvers"]


@pytest.mark.airflow
def test_compliance_fix_offer_is_assigned_to_named_users(airflow_db):
    from airflow.dag_processing.dagbag import DagBag

    from aiops.core.settings import get_settings

    dag = DagBag(dag_folder="dags/compliance_sweep.py").get_dag("compliance_sweep")
    users = [u["id"] for u in dag.get_task("request_fixes").assigned_users]
    assert users == get_settings().compliance_fix_approvers
    assert users
