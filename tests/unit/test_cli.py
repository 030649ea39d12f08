"""The aiops command line."""

from __future__ import annotations

import json

import pytest

from aiops.cli import main


def test_config_prints_every_setting_with_its_env_name(capsys):
    assert main(["config"]) == 0
    out = capsys.readouterr().out
    assert "AIOPS_ARTIFACT_BUCKET" in out
    assert "AIOPS_METRICS_HISTORY_DAYS" in out


def test_describe_summarises_a_manifest(tmp_path, capsys):
    manifest = {
        "account_id": "123456789012", "region": "us-east-1", "seed": 7, "anchor": "2026-11-20T12:00:00Z",
        "resources": {"instances": {"a": "i-1"}, "load_balancers": {}, "databases": {}, "volumes": {},
                      "buckets": {}},
        "metrics": {"series_count": 3, "days": 15},
        "anomalies": [{"start": "2026-11-17T14:10:00Z", "kind": "spike", "description": "CPU pinned"}],
        "waste": {"idle_instances": ["i-1"]}, "misconfigurations": [{"id": "ssh_open_to_world", "resource": "sg-1"}],
        "security_events": [], "slo": {"page": ["checkout"], "ticket": [], "quiet": []},
    }
    path = tmp_path / "m.json"
    path.write_text(json.dumps(manifest))
    assert main(["sandbox", "describe", "--manifest", str(path)]) == 0
    out = capsys.readouterr().out
    assert "CPU pinned" in out
    assert "ssh_open_to_world: sg-1" in out


def test_describe_without_a_manifest_says_how_to_get_one(tmp_path, capsys):
    assert main(["sandbox", "describe", "--manifest", str(tmp_path / "missing.json")]) == 2
    assert "aiops sandbox up" in capsys.readouterr().out


def test_seed_refuses_a_plain_endpoint_with_a_clear_message(capsys):
    with pytest.raises(RuntimeError, match="not a MatCarv sandbox emulator"):
        main(["sandbox", "seed", "--endpoint", "http://127.0.0.1:9"])


def test_state_migrate_reports_the_schema_version(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("AIRFLOW_CONN_AIOPS_STATE", f"sqlite:///{tmp_path}/s.db")
    from aiops.core.state import head_revision

    assert main(["state", "migrate"]) == 0
    assert f"schema revision {head_revision()} (applied " in capsys.readouterr().out
    assert main(["state", "migrate"]) == 0
    assert f"schema revision {head_revision()} (up to date)" in capsys.readouterr().out
