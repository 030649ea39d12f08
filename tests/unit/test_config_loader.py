"""Config errors are loud and safe (issue 15 failure 6, issue 18 "one loader").

- one loader reports every problem of a file with file, line and field;
- ``aiops config validate`` checks every file under include/; the JSON Schemas are current;
- a typo in routing.yaml never silently falls back to defaults: the last good version stays in force
  and an alert event says so; without a last good version the run fails.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from aiops.alerting.rules import RoutingRules, load_rules
from aiops.config_files import validate_include, write_schemas
from aiops.core.config import ConfigErrors, load_yaml_model
from aiops.core.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]
TYPO = "notify_min_severity: medium\nrules:\n  - name: critical\n    match: {severity_at_leest: critical}\n" \
       "    topics: [aiops-alerts-platform]\n  - name: bad\n    topics: []\nbogus: 1\n"


def test_every_error_with_file_line_and_field(tmp_path):
    path = tmp_path / "routing.yaml"
    path.write_text(TYPO)
    with pytest.raises(ConfigErrors) as exc:
        load_yaml_model(path, RoutingRules)
    lines = str(exc.value).splitlines()
    assert len(lines) == 4, lines  # all of them, not the first only
    assert f"{path}:4: rules[0] (name: critical).match.severity_at_leest: Extra inputs are not permitted" in lines
    assert any(line.startswith(f"{path}:7: rules[1] (name: bad).topics:") for line in lines)
    assert f"{path}:8: bogus: Extra inputs are not permitted" in lines
    assert isinstance(exc.value, ConfigError)  # callers catching the old error still do


def test_yaml_syntax_error_names_the_line(tmp_path):
    path = tmp_path / "x.yaml"
    path.write_text("a: 1\nb: [1, 2\nc: 3\n")
    with pytest.raises(ConfigErrors, match=r"x.yaml:\d: not valid YAML"):
        load_yaml_model(path, RoutingRules)


def test_reproduction_a_typo_used_to_mean_defaults(tmp_path):
    """What load_rules alone does with the typo: the routing file is dropped (defaults: notify from
    info, no critical route) — the pipeline must never apply that."""
    shutil.copytree(REPO / "include" / "alerting", tmp_path / "alerting")
    (tmp_path / "alerting" / "routing.yaml").write_text(TYPO)
    rules = load_rules(tmp_path / "alerting")
    assert rules.errors
    assert rules.routing.notify_min_severity == "info"
    assert rules.routing.rules == []


class DictStore:
    def __init__(self):
        self.docs: dict[str, object] = {}

    def get_json(self, key):
        return self.docs.get(key)

    def put_json(self, key, obj):
        self.docs[key] = json.loads(json.dumps(obj))
        return key


def test_broken_routing_keeps_the_last_good_version_and_raises_an_alert(tmp_path):
    from aiops.alerting.normalise import normalise_batch
    from aiops.alerting.pipeline import rules_in_force

    shutil.copytree(REPO / "include" / "alerting", tmp_path / "alerting")
    store = DictStore()
    good, events = rules_in_force(tmp_path / "alerting", store=store)
    assert events == []
    assert good.routing.notify_min_severity == "medium"

    (tmp_path / "alerting" / "routing.yaml").write_text(TYPO)
    rules, events = rules_in_force(tmp_path / "alerting", store=store)
    assert rules.routing == good.routing  # the last good version, not defaults
    assert rules.errors  # still reported
    assert [e["detail-type"] for e in events] == ["AIOps Config Error"]
    assert events[0]["detail"]["action"] == "last good version in force"
    again, _ = rules_in_force(tmp_path / "alerting", store=store)
    assert again.routing == good.routing  # the broken file never replaces the last good one
    _, events_again = rules_in_force(tmp_path / "alerting", store=store)
    assert events_again[0]["id"] == events[0]["id"]  # one alert per broken content, not one per run

    alerts, dead = normalise_batch([{"Body": json.dumps(events[0])}])
    assert dead == []
    assert alerts[0].severity == "high"
    assert alerts[0].resource == f"config:{tmp_path / 'alerting' / 'routing.yaml'}"


def test_broken_file_without_a_last_good_version_fails_the_run(tmp_path):
    from aiops.alerting.pipeline import rules_in_force

    shutil.copytree(REPO / "include" / "alerting", tmp_path / "alerting")
    (tmp_path / "alerting" / "routing.yaml").write_text(TYPO)
    with pytest.raises(ConfigError, match="no last good version"):
        rules_in_force(tmp_path / "alerting", store=DictStore())


def test_every_file_under_include_is_known_and_valid():
    checked, problems = validate_include(REPO / "include")
    assert problems == []
    assert len(checked) == len(list((REPO / "include").rglob("*.yaml")))


def test_validate_reports_broken_files(tmp_path):
    shutil.copytree(REPO / "include", tmp_path / "include")
    (tmp_path / "include" / "alerting" / "routing.yaml").write_text(TYPO)
    (tmp_path / "include" / "metrics" / "catalog.yaml").write_text("families: [\n")
    (tmp_path / "include" / "alerting" / "stray.yaml").write_text("a: 1\n")
    _, problems = validate_include(tmp_path / "include")
    text = "\n".join(problems)
    assert "routing.yaml:4: rules[0] (name: critical).match.severity_at_leest" in text
    assert "catalog.yaml:2: not valid YAML" in text
    assert "stray.yaml: no schema knows this file" in text
    proc = subprocess.run([sys.executable, "-m", "aiops.cli", "config", "validate", "--include-dir",
                           str(tmp_path / "include")], capture_output=True, text=True)
    assert proc.returncode == 1
    assert "routing.yaml:4:" in proc.stdout


def test_published_json_schemas_are_current(tmp_path):
    written = write_schemas(tmp_path)
    assert written
    for path in written:
        committed = REPO / "schemas" / path.relative_to(tmp_path)
        assert committed.exists(), f"run `aiops config schema` ({committed} missing)"
        assert json.loads(committed.read_text()) == json.loads(path.read_text()), f"{committed} is stale"
