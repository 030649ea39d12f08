"""The AIOps status page in the Airflow UI."""

from __future__ import annotations

from fastapi.testclient import TestClient

from aiops.console import app as ui


def test_every_page_requires_an_airflow_login():
    app = ui.create_app()
    client = TestClient(app, raise_server_exceptions=False)
    for path in ("/", "/service/checkout", "/incidents", "/incidents/INC-1", "/cost", "/compliance", "/slos",
                 "/audit", "/status", "/status.json"):
        response = client.get(path, headers={"Accept": "application/json"})
        assert response.status_code == 401, path  # never served anonymously
        assert "MatCarv" not in response.text


def test_status_renders_stores_and_escapes_names():
    page = ui.render_status({
        "generated": "2026-11-20T12:00:00+00:00", "bucket": "<script>x</script>", "state_url": "sqlite:///s.db",
        "schema_version": 1, "watermark": "2026-11-20T12:00:00+00:00", "partitions": ["2026-11-19", "2026-11-20"],
        "quarantine": [], "sandbox": {"anchor": "2026-11-20T12:00:00Z", "series": 116, "anomalies": 10,
                                      "misconfigurations": 10, "security_events": 11}})
    assert "<script>x</script>" not in page
    assert "&lt;script&gt;" in page
    assert "2 day partition(s) (2026-11-19 .. 2026-11-20)" in page
    assert "116 series" in page


def test_status_explains_an_empty_platform():
    page = ui.render_status({"generated": "now", "bucket": "b", "state_url": "x", "schema_version": 1,
                             "watermark": None, "partitions": [], "quarantine": []})
    assert "metrics_extract has not completed a run" in page


def test_plugin_registers_the_app_and_a_nav_link():
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "plugins" / "aiops_plugin.py"
    spec = importlib.util.spec_from_file_location("aiops_plugin", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    plugin = module.AiopsPlugin
    assert plugin.fastapi_apps[0]["url_prefix"] == "/aiops"
    assert plugin.external_views[0]["href"] == "/aiops/"
    assert {v["category"] for v in plugin.external_views} == {"AIOps"}
    assert {v["name"] for v in plugin.external_views} >= {"Overview", "Incidents", "Cost", "Compliance", "SLOs",
                                                         "Audit"}


def test_pages_escape_stored_text_and_render_markdown_without_html():
    from datetime import UTC, datetime

    from aiops.console import views

    incident = {"incident_id": "INC-1", "title": "<script>alert(1)</script>", "state": "resolved", "severity": "high",
                "service": "checkout", "root_resource": "r", "first_seen": datetime(2026, 11, 20, tzinfo=UTC),
                "detected_at": datetime(2026, 11, 20, tzinfo=UTC), "links": {}}
    html = views.render("incident.html", page="/incidents", user={"name": "v", "can_act": False}, started=0.0,
                        as_of=datetime(2026, 11, 20, tzinfo=UTC), base="/aiops",
                        d={"incident": incident, "timeline": [], "evidence": None, "requests": [],
                           "postmortem_md": "# PM\n\n<img src=x onerror=alert(2)>\n\n| a | b |\n|---|---|\n| 1 | 2 |"})
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<img src=x" not in html  # raw HTML in the post-mortem is shown as text, not rendered
    assert "<h1>PM</h1>" in html
    assert "<table>" in html


def test_incident_actions_name_their_targets_not_their_raw_records():
    from datetime import UTC, datetime

    from aiops.console import views

    incident = {"incident_id": "INC-2", "title": "t", "state": "resolved", "severity": "high", "service": "checkout",
                "root_resource": "r", "first_seen": datetime(2026, 11, 20, tzinfo=UTC), "links": {}}
    target = {"id": "i-0abc", "kind": "ec2:instance", "tags": {"Name": "<b>web-1</b>", "env": "prod"},
              "exists": True, "state": "running", "detail": {"name": "<b>web-1</b>", "type": "m5.large"}}
    request = {"runbook": "reboot-ec2-instance", "targets": [target, "i-0def"], "status": "succeeded",
               "approvals": [], "execution_id": "e-1", "requested_by": "platform:incident_response"}
    html = views.render("incident.html", page="/incidents", user={"name": "v", "can_act": False}, started=0.0,
                        as_of=datetime(2026, 11, 20, tzinfo=UTC), base="/aiops",
                        d={"incident": incident, "timeline": [], "evidence": None, "requests": [request],
                           "postmortem_md": None})
    assert "i-0abc (&lt;b&gt;web-1&lt;/b&gt;), i-0def" in html
    assert "'tags'" not in html
    assert "m5.large" not in html


def test_svg_charts_escape_labels_and_keep_spikes_when_downsampled():
    from datetime import UTC, datetime, timedelta

    from aiops.console import svg

    t0 = datetime(2026, 11, 20, tzinfo=UTC)
    points = [(t0 + timedelta(minutes=5 * i), 1.0) for i in range(4000)]
    points[2345] = (points[2345][0], 99.0)
    small = svg.downsample(points)
    assert len(small) <= svg.MAX_POINTS
    assert max(v for _, v in small) == 99.0
    out = svg.render(svg.Chart(start=t0, end=points[-1][0], title="<b>x</b>",
                               lines=[svg.Series("a<", points), svg.Series("b", points[:10])],
                               markers=[(points[2345][0], 99.0, "<anomaly>")]))
    assert "<b>x</b>" not in out
    assert "&lt;anomaly&gt;" in out
    assert out.count("<circle") == 1
