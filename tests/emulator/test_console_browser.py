"""The console in a real browser: Airflow's API server with the plugin, Debian's Chromium driven by
Playwright, SimpleAuthManager users (a viewer and an operator), stores filled by the platform's own
steps over the simulated account (aiops_sandbox.estate). Asserts on what a person sees."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

pytestmark = [pytest.mark.emulator, pytest.mark.slow]

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]
USERS = {"dana.viewer": ("viewer", "viewer-pw-1"), "alice.op": ("op", "op-pw-1")}
REPO = Path(__file__).resolve().parents[2]

if not Path(CHROMIUM).exists():  # .ci/run installs it; a dev box without it skips, loudly
    pytest.skip(f"{CHROMIUM} is not installed (apt-get install -y chromium)", allow_module_level=True)
playwright_api = pytest.importorskip("playwright.sync_api")


@pytest.fixture(scope="module")
def estate(seeded, tmp_path_factory):
    """Private stores filled from the seeded account: 6 days of metrics, the last 3 scored for
    checkout (the pinned CPU on 11-17), a day of logs and traces (the 5xx surge), a cost report,
    a compliance sweep, the surge incident with its post-mortem and a pending approval."""
    from aiops.core.settings import get_settings
    from aiops_sandbox.estate import populate

    home = tmp_path_factory.mktemp("console")
    manifest = home / "ground_truth.json"
    manifest.write_text(json.dumps(seeded.manifest))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AIOPS_ARTIFACT_BUCKET", "aiops-test-console")
        mp.setenv("AIOPS_HOME", str(home / "aiops"))
        mp.setenv("AIOPS_ANOMALY_BATCHES", "2")
        mp.setenv("AIOPS_ANOMALY_IMPORT_CW_BANDS", "false")
        get_settings.cache_clear()
        result = populate(manifest, days=6, score_days=3, collect_days=1,
                          score_services=["checkout"], cost_days=1, sweeps=1)
        env = {k: os.environ[k] for k in ("AIOPS_ARTIFACT_BUCKET", "AIOPS_HOME", "AIRFLOW_CONN_AWS_DEFAULT")}
        yield {**result, "env": env, "manifest": seeded.manifest}
    get_settings.cache_clear()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def api_server(estate, airflow_db, tmp_path_factory):
    """``airflow api-server`` on a free loopback port, on the test's Airflow DB, with the plugin."""
    home = tmp_path_factory.mktemp("api")
    passwords = home / "passwords.json"
    passwords.write_text(json.dumps({u: pw for u, (_, pw) in USERS.items()}))
    port = _free_port()
    env = {**os.environ, **estate["env"],
           "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": ",".join(f"{u}:{r}" for u, (r, _) in USERS.items()),
           "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords),
           "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{port}",
           "PYTHONPATH": os.pathsep.join([str(REPO / "src"), str(REPO / "sandbox" / "src"),
                                          os.environ.get("PYTHONPATH", "")])}
    log = (home / "api.log").open("w")
    proc = subprocess.Popen([sys.executable, "-m", "airflow", "api-server", "--host", "127.0.0.1", "--port",
                             str(port), "--workers", "1"], env=env, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:
        try:
            urllib.request.urlopen(f"{base}/api/v2/monitor/health", timeout=2)
            break
        except (urllib.error.URLError, ConnectionError, TimeoutError) as exc:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                raise RuntimeError(f"api-server did not start: {(home / 'api.log').read_text()[-3000:]}") from exc
            time.sleep(1)
    yield base
    os.killpg(proc.pid, 15)
    proc.wait(timeout=30)


@pytest.fixture(scope="module")
def browser():
    with playwright_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        yield b
        b.close()


def login(browser, base: str, user: str):
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.goto(f"{base}/aiops/")  # not logged in: Airflow's login page, then back here
    assert "/auth/login" in page.url
    page.fill("input[name=username]", user)
    page.fill("input[name=password]", USERS[user][1])
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/aiops/", timeout=60_000)
    return page


def shot(page, name: str) -> None:
    target = os.environ.get("AIOPS_CONSOLE_SCREENSHOTS")  # set to write docs/img/console_*.png
    if target:
        Path(target).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(target) / f"console_{name}.png"), full_page=True)


def test_unauthenticated_requests_get_401_or_the_login_page(api_server):
    for path in ("/aiops/", "/aiops/service/checkout", "/aiops/incidents", "/aiops/cost", "/aiops/audit"):
        req = urllib.request.Request(api_server + path, headers={"Accept": "application/json"})
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(req, timeout=30)
        assert err.value.code == 401, path
    opener = urllib.request.build_opener(type("NoRedirect", (urllib.request.HTTPRedirectHandler,), {
        "redirect_request": lambda *a, **k: None}))
    with pytest.raises(urllib.error.HTTPError) as err:
        opener.open(urllib.request.Request(api_server + "/aiops/cost", headers={"Accept": "text/html"}), timeout=30)
    assert err.value.code == 303
    assert "/auth/login" in err.value.headers["Location"]


def test_viewer_reads_every_page_and_sees_the_estate(api_server, browser, estate):
    page = login(browser, api_server, "dana.viewer")
    base = api_server + "/aiops"
    # Overview: one row per service, the pending approval without an action for a viewer
    services = page.locator("#services")
    assert services.get_by_role("link", name="checkout", exact=True).is_visible()
    checkout = services.locator("tr", has=page.get_by_role("link", name="checkout", exact=True))
    assert "checkout-availability" in checkout.inner_text()
    assert page.locator("#pending").get_by_text("reboot-ec2-instance").is_visible()
    assert page.locator("#pending").get_by_text("awaiting an operator").is_visible()
    assert page.locator("a.action").count() == 0  # a viewer is offered no action
    assert "read-only" in page.locator("header").inner_text()
    assert page.locator("#cost-kpi").is_visible()
    shot(page, "overview")

    # Service page: the pinned instance's CPU anomaly, marked on its chart
    page.goto(f"{base}/service/checkout?range=3d")
    pinned = next(a for a in estate["manifest"]["anomalies"] if a["metric"] == "CPUUtilization"
                  and a["resource"].startswith("checkout"))
    card = page.locator(f".metric[data-series='{pinned['series_id']}']")
    assert card.is_visible()
    assert "anomal" in card.locator("h3").inner_text()
    assert card.locator("circle.anomaly").count() >= 1
    assert card.locator("polygon.band").count() == 1  # the forecast band
    shot(page, "service")
    page.goto(f"{base}/service/checkout?range=24h")  # the surge: logs, traces, the incident
    assert page.locator("#log-counts").is_visible()
    assert "upstream payment-gateway timeout" in page.locator("#signatures").inner_text()
    assert page.locator("#trace-latency").is_visible()
    assert page.locator("#slow-traces tr").count() > 1
    incident_id = estate["incidents"]["incident_id"]
    assert page.locator("#service-incidents").get_by_role("link", name=incident_id).is_visible()
    assert "scale-out-asg" in page.locator("#executions").inner_text()

    # Incidents: list, then the detail with its timeline, approver, execution id and post-mortem
    page.goto(f"{base}/incidents")
    row = page.locator("#incidents tr", has=page.get_by_role("link", name=incident_id))
    assert "resolved" in row.inner_text()
    assert "checkout" in row.inner_text()
    shot(page, "incidents")
    row.get_by_role("link", name=incident_id).click()
    assert page.get_by_role("heading", name=f"{incident_id}: checkout-prod-5xx-high is ALARM", exact=True).is_visible()
    timeline = page.locator("#timeline").inner_text()
    assert "detected" in timeline
    assert "triaged" in timeline
    assert "resolved" in timeline
    actions = page.locator("#actions").inner_text()
    assert "alice.sre (approve)" in actions
    assert "3f0e6a2c-estate-5xx" in actions
    postmortem = page.locator("#postmortem")
    assert postmortem.is_visible()
    assert incident_id in postmortem.inner_text()
    assert postmortem.locator("script").count() == 0
    shot(page, "incident")

    # Cost: the report's numbers as stored
    from aiops.core.artifacts import ArtifactStore

    os.environ.update(estate["env"])
    store = ArtifactStore(bucket=estate["env"]["AIOPS_ARTIFACT_BUCKET"])
    day = store.partitions("cost", "reports")[-1]
    summary = store.get_json(store.key("cost", "reports", day, "summary.json"))
    page.goto(f"{base}/cost")
    kpis = page.locator("#cost-kpis").inner_text()
    assert f"${summary['total']['day_usd']:,.2f}" in kpis
    assert f"${summary['forecast']['forecast_usd']:,.2f}" in kpis
    top = summary["tables"]["service"][0]
    assert top["key"] in page.locator("#movers").inner_text()
    shot(page, "cost")

    page.goto(f"{base}/compliance")
    assert "%" in page.locator("#posture").inner_text()
    assert page.locator("table.findings").count() >= 1
    shot(page, "compliance")
    page.goto(f"{base}/slos")
    assert "checkout-availability" in page.locator("#slos").inner_text()
    assert page.locator("svg.chart").count() >= 2
    shot(page, "slos")
    page.goto(f"{base}/audit")
    audit = page.locator("#requests").inner_text()
    assert "scale-out-asg" in audit
    assert "3f0e6a2c-estate-5xx" in audit
    assert "alice.sre" in audit
    assert "approve" in page.locator("#audit").inner_text()
    shot(page, "audit")
    page.context.close()


def test_operator_sees_the_action_and_the_menu_inside_airflow(api_server, browser):
    page = login(browser, api_server, "alice.op")
    assert "operator" in page.locator("header").inner_text()
    action = page.locator("#pending a.action")
    assert action.inner_text() == "Review in Required Actions"
    assert action.get_attribute("href") == "/required_actions"
    # the AIOps menu inside Airflow's own UI, the page embedded
    page.goto(api_server + "/")
    page.get_by_role("button", name="Plugins").click()
    page.get_by_text("AIOps", exact=True).click()
    page.get_by_role("menuitem", name="Incidents").click()
    page.wait_for_url("**/plugin/aiops_incidents**")
    page.frame_locator("iframe").get_by_role("heading", name="Incidents").wait_for(timeout=60_000)
    shot(page, "in_airflow")
    page.context.close()


def test_viewer_cannot_answer_an_approval(api_server):
    """The action itself is Airflow's: a viewer's token may not answer a HITL request (403)."""
    def token(user: str) -> str:
        req = urllib.request.Request(f"{api_server}/auth/token", method="POST",
                                     data=json.dumps({"username": user, "password": USERS[user][1]}).encode(),
                                     headers={"Content-Type": "application/json"})
        return json.loads(urllib.request.urlopen(req, timeout=30).read())["access_token"]

    req = urllib.request.Request(
        f"{api_server}/api/v2/dags/remediate/dagRuns/r1/taskInstances/approve/-1/hitlDetails", method="PATCH",
        data=json.dumps({"chosen_options": ["Approve"], "params_input": {}}).encode(),
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {token('dana.viewer')}"})
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(req, timeout=30)
    assert err.value.code == 403


def test_chromium_is_the_os_package():
    assert shutil.which("chromium") == CHROMIUM
