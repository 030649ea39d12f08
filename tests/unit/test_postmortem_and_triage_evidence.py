"""Honest and consistent evidence (issue 19): the post-mortem's Markdown and HTML come from one model
and show the same evidence; triage judges the newest points (the incident itself) even when the
anomaly detector has not scored them yet."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from html import unescape

from aiops.incidents import postmortem, series, triage

T0 = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)


def incident() -> dict:
    return {"incident_id": "INC-1", "title": "checkout-prod-db connections high", "service": "checkout",
            "env": "prod", "team": "storefront", "severity": "high", "state": "resolved",
            "first_seen": T0, "detected_at": T0 + timedelta(seconds=40), "triaged_at": T0 + timedelta(seconds=55),
            "remediation_started_at": T0 + timedelta(seconds=70), "resolved_at": T0 + timedelta(seconds=300),
            "last_seen": T0 + timedelta(minutes=3), "alerts": [{}], "links": {"evidence": "incidents/evidence/x.json"}}


EVIDENCE = {
    "metric_at_triage": {"series_id": "AWS/RDS|DatabaseConnections|DBInstanceIdentifier=db|Average",
                         "outside_band": 1, "band_source": "seasonal_baseline", "start": "a", "end": "b"},
    "metric": {"series_id": "AWS/RDS|DatabaseConnections|DBInstanceIdentifier=db|Average", "outside_band": 4,
               "band_source": "seasonal_baseline", "start": "a", "end": "c"},
    "logs": {"errors": 7, "top_messages": [{"message": "connection pool exhausted <x>", "count": 7}]},
    "changes": {"total": 0}, "related_alerts": {"alerts": [{}]},
}
ACTIONS = [{"runbook": "reboot-rds-instance", "parameters": {"DBInstanceIdentifier": "db"}, "status": "succeeded",
            "approval": "approval", "approvals": [{"user": "alice", "decision": "Approve"}], "execution_id": "e-1",
            "run_id": "r-1", "verification": {}}]
TIMELINE = [{"at": T0 + timedelta(seconds=55), "kind": "transition", "from_state": "detected", "to_state": "triaged",
             "reason": "evidence: 1 metric point(s) outside band, 7 error log line(s)", "actor": "incident_response",
             "run_id": "run-1"}]


def _text(html: str) -> str:
    return unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html)))


def test_markdown_and_html_show_the_same_sections_and_evidence():
    md, html = postmortem.render(incident(), EVIDENCE, {"reason": "back in band"}, None, actions=ACTIONS,
                                 timeline=TIMELINE)
    m = postmortem.model(incident(), EVIDENCE, {"reason": "back in band"}, ACTIONS, TIMELINE)
    sections = ["Summary", "Key times (UTC)", "Actions taken", "Timeline", "Evidence", "Follow-ups"]
    for section in sections:
        assert f"## {section}" in md
        assert f"<h2>{section}</h2>" in html
    flat = _text(html)
    for label, value in m["evidence"]:  # every evidence line in both renderings
        assert f"- {label}: {value}" in md
        assert f"{label}: {value}" in flat
    for line in m["actions"] + m["followups"]:
        assert line in md
        assert line in flat
    assert "<x>" not in html  # escaped in HTML, verbatim in Markdown
    assert "connection pool exhausted <x>" in md


def test_evidence_quotes_the_triage_count_the_timeline_quotes():
    md, _ = postmortem.render(incident(), EVIDENCE, None, None, actions=ACTIONS, timeline=TIMELINE)
    assert "evidence: 1 metric point(s) outside band" in md  # the timeline entry
    assert "- at triage: 1 point(s) outside the band" in md  # the same number in Evidence
    assert "- through the recovery: 4 point(s) outside the band" in md  # the re-read, labelled


def test_triage_judges_points_the_detector_has_not_scored_yet(monkeypatch):
    """A storm in the newest points (after the detector's last scores) is counted outside the band."""
    now = T0
    start = now - timedelta(hours=3)
    history = []
    for day in range(7, 0, -1):  # a week of a flat ~130 at every 5 minutes, then the last 3 hours
        t = start - timedelta(days=day)
        while t < start - timedelta(days=day) + timedelta(hours=3, minutes=10):
            history.append((t, 130.0 + (t.minute % 3)))
            t += timedelta(minutes=5)
    t = start
    while t < now + timedelta(minutes=5):
        storm = t >= now - timedelta(minutes=15)
        history.append((t, 495.0 if storm else 130.0 + (t.minute % 3)))
        t += timedelta(minutes=5)
    window = [ts for ts, _ in history if start <= ts < now + timedelta(minutes=5)]
    scored = {ts: (130.0, 100.0, 160.0) for ts in window if ts < now - timedelta(minutes=25)}  # lagging scores
    monkeypatch.setattr(series, "get_series", lambda *a, **k: history)
    monkeypatch.setattr(triage, "_detector_band", lambda *a, **k: scored)
    signal = {"series_id": "AWS/RDS|DatabaseConnections|DBInstanceIdentifier=db|Average"}
    snap = triage.metric_snapshot(signal, start, now + timedelta(minutes=5), incident_start=now - timedelta(minutes=15))
    storm_points = [p for p in snap["points"] if p["value"] == 495.0]
    assert len(storm_points) == 4
    assert all(p["outside"] for p in storm_points)
    assert snap["outside_band"] == 4
    assert snap["band_source"].startswith("anomaly_detector (+seasonal_baseline for")
