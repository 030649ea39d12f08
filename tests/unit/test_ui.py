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
