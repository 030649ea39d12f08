"""Triage on the seeded account: for the ground-truth incident (checkout 5xx surge) the evidence
holds the error lines the sandbox wrote into the service's log group at that time, a metric
snapshot with its forecast band that the surge leaves, and the runbook its rule points at."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from aiops.core.alerts import Alert
from aiops.incidents import triage

pytestmark = [pytest.mark.emulator, pytest.mark.slow]


def _utc(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


@pytest.fixture(scope="module")
def truth_incident(seeded):
    return seeded.manifest["incidents"][0]


@pytest.fixture
def incident(truth_incident):
    start = _utc(truth_incident["start"])
    alert = Alert(source="cloudwatch_alarm", event_id="e-5xx", time=start + timedelta(minutes=5),
                  service=truth_incident["service"], env="prod", metric=truth_incident["series_id"],
                  title="checkout 5xx surge", severity="high", fingerprint="fp", raw={})
    return {"incident_id": "INC-TRIAGE", "title": "checkout: 5xx surge", "service": truth_incident["service"],
            "env": "prod", "severity": "high", "root_resource": None, "state": "detected",
            "first_seen": alert.time, "last_seen": _utc(truth_incident["end"]),
            "alerts": [alert.model_dump(mode="json")]}


@pytest.fixture
def evidence(incident, isolated_stores):
    return triage.gather_evidence(incident, now=incident["last_seen"] + timedelta(hours=1))


def test_error_lines_around_the_incident_come_from_the_service_log_group(evidence, seeded, truth_incident):
    burst = next(b for b in seeded.manifest["logs"] if b["service"] == truth_incident["service"])
    logs = evidence["logs"]
    assert burst["log_group"] in logs["log_groups"]
    assert logs["errors"] > 0
    assert {m["message"] for m in logs["top_messages"]} & set(burst["messages"])
    assert _utc(burst["start"]) - timedelta(minutes=15) <= _utc(logs["first_error"])


def test_metric_snapshot_has_a_band_the_surge_leaves(evidence, truth_incident):
    metric = evidence["metric"]
    assert metric["series_id"] == truth_incident["series_id"]
    banded = [p for p in metric["points"] if "lower" in p]
    assert len(banded) > 24  # hours of 5-minute points around the event carry the band
    inside = [p for p in banded if _utc(p["t"]) < _utc(truth_incident["start"]) - timedelta(hours=1)]
    assert sum(p["outside"] for p in inside) <= len(inside) * 0.1  # before the surge: mostly in band
    during = [p for p in banded if _utc(truth_incident["start"]) <= _utc(p["t"]) < _utc(truth_incident["end"])]
    assert any(p["outside"] and p["value"] > p["upper"] for p in during)


def test_matching_runbook_is_resolved_against_the_account(evidence, seeded):
    [match, *_] = evidence["runbooks"]
    assert match["rule"] == "alb-target-5xx"
    assert match["runbook"] == "scale-out-asg"
    assert match["parameters"]["AutoScalingGroupName"] in seeded.manifest["resources"]["asgs"]
    assert match["approval"] == "requires-approval"


def test_recent_changes_are_read_from_the_trail(evidence):
    changes = evidence["changes"]
    assert "error" not in changes, changes
    assert changes["available"] is True
