"""include/incidents/runbooks.yaml: the shipped rules load and name catalog runbooks; bad files are
rejected naming the file and the field; rule matching and the asset-event id collection."""

from __future__ import annotations

import pytest

from aiops.core.errors import ConfigError
from aiops.incidents import config
from aiops.incidents.pipeline import incident_ids
from aiops.incidents.triage import signal_of


def test_shipped_rules_load_and_name_catalog_runbooks():
    from aiops.remediation.catalog import load_catalog

    rules = config.load_rules()
    assert [r.id for r in rules.rules][:1] == ["ec2-cpu-pinned"]
    assert config.check_against_catalog(rules, load_catalog().ids) == []


@pytest.mark.parametrize(("text", "field"), [
    pytest.param("rules:\n  - id: x\n    when: {metric: CPU}\n", "rules.0.runbook", id="missing_runbook"),
    pytest.param("rules:\n  - id: x\n    when: {colour: red}\n    runbook: r\n", "rules.0.when.colour",
                 id="unknown_when_field"),
    pytest.param("rules:\n  - id: x\n    when: {}\n    runbook: r\n    parameters: {A: '{tag:x}'}\n",
                 "rules.0.parameters", id="unknown_placeholder"),
    pytest.param("rules:\n  - {id: a, when: {}, runbook: r}\n  - {id: a, when: {}, runbook: r}\n", "rules.1.id",
                 id="duplicate_id"),
    pytest.param("rules: [\n", "", id="not_yaml"),
])
def test_bad_rules_name_file_and_field(tmp_path, text, field):
    path = tmp_path / "runbooks.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as exc:
        config.load_rules(path)
    assert exc.value.field == field
    assert exc.value.path == path


def test_unknown_runbook_is_reported_not_fatal(tmp_path):
    path = tmp_path / "runbooks.yaml"
    path.write_text("rules:\n  - {id: a, when: {metric: CPUUtilization}, runbook: no-such-runbook}\n")
    problems = config.check_against_catalog(config.load_rules(path), ["reboot-ec2-instance"], path)
    assert [p.field for p in problems] == ["rules.0.runbook"]


def test_rule_matches_on_every_given_field():
    rule = config.MatchRule(id="r", when=config.When(namespace="AWS/EC2", metric="CPUUtilization"), runbook="x")
    assert rule.matches({"namespace": "AWS/EC2", "metric": "CPUUtilization", "source": "cloudwatch_alarm"})
    assert not rule.matches({"namespace": "AWS/RDS", "metric": "CPUUtilization"})


def test_signal_from_a_cloudwatch_alarm_payload_without_series_id():
    alert = {"source": "cloudwatch_alarm", "metric": None, "raw": {"detail": {"configuration": {"metrics": [
        {"id": "m1", "metricStat": {"metric": {"namespace": "AWS/RDS", "name": "DatabaseConnections",
                                               "dimensions": {"DBInstanceIdentifier": "checkout-prod-db"}},
                                    "period": 300, "stat": "Average"}}]}}}}
    sig = signal_of(alert)
    assert sig is not None
    assert sig["series_id"] == "AWS/RDS|DatabaseConnections|DBInstanceIdentifier=checkout-prod-db|Average"


def test_incident_ids_from_asset_events_and_conf_are_deduplicated():
    extras = [{"incident_ids": ["INC-A", "INC-B"], "created": ["INC-A"]}, {"incident_ids": ["INC-B"]}, {}]
    assert incident_ids(extras, None) == ["INC-A", "INC-B"]
    assert incident_ids([], "INC-C") == ["INC-C"]
