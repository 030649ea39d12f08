"""The alerting YAML: the shipped files load; bad files are rejected naming file and field, and
(non-strict) only that concern falls back to its defaults."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from aiops.alerting.rules import load_rules
from aiops.core.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]
SHIPPED = REPO / "include" / "alerting"


def test_shipped_rules_load():
    rules = load_rules(SHIPPED, strict=True)
    assert rules.errors == []
    assert {r.name for r in rules.severity.rules} >= {"slo-fast-burn-pages", "staging-never-pages"}
    assert rules.suppression.flapping.changes >= 2
    assert set(rules.files) == {"severity", "routing", "suppression", "grouping"}


@pytest.mark.parametrize(("file", "text", "field", "message"), [
    pytest.param("severity.yaml", "rules:\n  - name: r1\n    match: {source: x}\n    severity: urgent\n",
                 "rules[0] (name: r1).severity", "Input should be", id="unknown_severity"),
    pytest.param("severity.yaml", "rules:\n  - name: r1\n    match: {sourse: x}\n    severity: high\n",
                 "rules[0] (name: r1).match.sourse", "Extra inputs", id="misspelt_match_field"),
    pytest.param("routing.yaml", "rules:\n  - name: r1\n    match: {}\n    topics: []\n",
                 "rules[0] (name: r1).topics", "at least 1", id="no_topics"),
    pytest.param("suppression.yaml", "maintenance_windows:\n  - name: w\n    match: {}\n    days: [funday]\n"
                 "    from: '01:00'\n    to: '02:00'\n", "maintenance_windows[0] (name: w).days", "unknown day",
                 id="bad_day"),
    pytest.param("suppression.yaml", "maintenance_windows:\n  - name: w\n    match: {}\n"
                 "    start: 2026-12-01T03:00:00Z\n    end: 2026-12-01T01:00:00Z\n", "maintenance_windows[0] (name: w)",
                 "start < end", id="window_ends_before_start"),
    pytest.param("suppression.yaml", "flapping: {changes: 1, minutes: 30}\n", "flapping.changes",
                 "greater than or equal to 2", id="flapping_threshold"),
    pytest.param("grouping.yaml", "group_window_minutes: soon\n", "group_window_minutes", "valid number",
                 id="not_a_number"),
    pytest.param("grouping.yaml", "dedup_window_minutes: [1\n", "line", "not valid YAML", id="broken_yaml"),
])
def test_bad_yaml_names_file_and_field(tmp_path, file, text, field, message):
    directory = tmp_path / "alerting"
    shutil.copytree(SHIPPED, directory)
    (directory / file).write_text(text)
    with pytest.raises(ConfigError) as info:
        load_rules(directory, strict=True)
    err = info.value
    assert err.path == directory / file
    assert err.field.startswith(field)
    assert message in err.message
    assert str(directory / file) in str(err)


def test_one_bad_file_keeps_the_others(tmp_path):
    directory = tmp_path / "alerting"
    shutil.copytree(SHIPPED, directory)
    (directory / "routing.yaml").write_text("rules: 3\n")
    rules = load_rules(directory)
    assert [e.path.name for e in rules.errors] == ["routing.yaml"]
    assert rules.routing.rules == []  # defaults: aiops-alerts-{team}
    assert len(rules.severity.rules) == len(load_rules(SHIPPED).severity.rules)
