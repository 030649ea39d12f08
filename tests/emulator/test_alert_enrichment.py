"""Enrichment beyond tags: recent CloudTrail changes to the alert's resource (from the seeded trail's
log files) and SLO impact from the SLO history; a failing enrichment is recorded, not raised."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from aiops.core.alerts import Alert

pytestmark = [pytest.mark.emulator]


def alert(resource: str, t: datetime, **kw) -> Alert:
    return Alert(source="securityhub", event_id=f"e-{resource}", time=t, resource=resource, title="t",
                 fingerprint="f" * 32, raw={}, **kw)


def test_recent_changes_from_cloudtrail(seeded):
    from aiops.alerting.enrich import enrich_changes

    opened = next(s for s in seeded.manifest["security_events"] if s["detection"] == "security_group_opened_to_world")
    when = datetime.fromisoformat(opened["event_time"].replace("Z", "+00:00"))
    sg = opened["detail"]["group_id"]
    after, before = alert(sg, when + timedelta(minutes=10)), alert(sg, when - timedelta(minutes=10))
    other = alert("sg-00000000000000000", when + timedelta(minutes=10))
    enrich_changes([after, before, other], timedelta(hours=2))
    names = [(c["event_name"], c["actor"]) for c in after.enrichment["recent_changes"]]
    assert ("AuthorizeSecurityGroupIngress", opened["actor"]) in names
    assert all(c["event_name"] != "AuthorizeSecurityGroupIngress" for c in before.enrichment["recent_changes"])
    assert other.enrichment["recent_changes"] == []


def test_slo_impact_from_history(isolated_stores):
    from sqlalchemy import insert

    from aiops.alerting.enrich import enrich_slo
    from aiops.core.state import StateStore, slo_history

    t = datetime(2026, 11, 20, 11, 0, tzinfo=UTC)
    store = StateStore()
    store.migrate()
    row = {"slo_id": "checkout-availability", "service": "checkout", "env": "prod", "team": "storefront",
           "objective": 0.999, "window_days": 28, "coverage": 1.0, "good": 1.0, "total": 1.0, "burn_rates": {},
           "firing": [], "sli": 0.998}
    with store.engine.begin() as conn:
        conn.execute(insert(slo_history), [
            {**row, "evaluated_at": t - timedelta(minutes=30), "budget_remaining": 0.5, "severity": "none"},
            {**row, "evaluated_at": t - timedelta(minutes=5), "budget_remaining": 0.31, "severity": "page"},
            {**row, "evaluated_at": t + timedelta(minutes=5), "budget_remaining": 0.1, "severity": "page"}])
    mine = alert("i-1", t, service="checkout", env="prod")
    staging = alert("i-2", t, service="checkout", env="staging")
    enrich_slo([mine, staging])
    [impact] = mine.enrichment["slo_impact"]
    assert (impact["slo_id"], impact["budget_remaining"], impact["severity"]) == ("checkout-availability", 0.31, "page")
    assert "slo_impact" not in staging.enrichment


def test_failing_enrichment_is_recorded_not_raised(monkeypatch):
    from aiops.alerting import enrich

    def broken(*a, **kw):
        raise RuntimeError("trail bucket unreachable")

    monkeypatch.setattr(enrich, "enrich_tags", lambda alerts: None)
    monkeypatch.setattr(enrich, "enrich_changes", broken)
    monkeypatch.setattr(enrich, "enrich_slo", lambda alerts: None)
    a = alert("i-1", datetime(2026, 11, 20, tzinfo=UTC))
    enrich.enrich([a])
    assert a.enrichment["errors"]["recent_changes"] == "RuntimeError: trail bucket unreachable"
