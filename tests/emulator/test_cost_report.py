"""The daily cost report against the seeded Cost Explorer data: numbers, charts, the injected spend
spike found with its driver, storage by day (backfill), CSV, and the SES email."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime, timedelta

import pytest

pytestmark = pytest.mark.emulator


@pytest.fixture(scope="module")
def cost_env(seeded, tmp_path_factory):
    import uuid

    from aiops.core.settings import get_settings

    mp = pytest.MonkeyPatch()
    mp.setenv("AIOPS_ARTIFACT_BUCKET", f"aiops-test-{uuid.uuid4().hex[:12]}")
    mp.setenv("AIOPS_HOME", str(tmp_path_factory.mktemp("cost-report")))
    get_settings.cache_clear()
    yield seeded
    mp.undo()
    get_settings.cache_clear()


@pytest.fixture(scope="module")
def spike_report(cost_env):
    from aiops.cost.report import build_report

    spike = date.fromisoformat(cost_env.manifest["cost"]["anomaly"]["date"])
    return spike, build_report(spike)


def _ce_total(day: date) -> float:
    from aiops.core import aws

    resp = aws.client("ce").get_cost_and_usage(
        TimePeriod={"Start": day.isoformat(), "End": (day + timedelta(days=1)).isoformat()},
        Granularity="DAILY", Metrics=["UnblendedCost"])
    return float(resp["ResultsByTime"][0]["Total"]["UnblendedCost"]["Amount"])


def test_the_injected_spend_spike_is_an_anomaly_with_its_driver(cost_env, spike_report):
    truth = cost_env.manifest["cost"]["anomaly"]
    _spike, report = spike_report
    assert [a["service"] for a in report["anomalies"]] == [truth["service"]]
    anomaly = report["anomalies"][0]
    assert anomaly["direction"] == "up"
    assert anomaly["actual_usd"] > anomaly["upper_usd"]
    driver = anomaly["driver"]
    assert driver["tag_service"] == truth["tag_service"]
    assert driver["usage_type"] == "DataTransfer-Out-Bytes"
    assert driver["factor"] == pytest.approx(truth["factor"], rel=0.15)


def test_an_ordinary_day_has_no_anomaly(cost_env):
    from aiops.cost.report import build_report

    spike = date.fromisoformat(cost_env.manifest["cost"]["anomaly"]["date"])
    report = build_report(spike - timedelta(days=3))
    assert report["anomalies"] == []


def test_report_numbers_match_cost_explorer(spike_report):
    from aiops.core.artifacts import ArtifactStore

    spike, report = spike_report
    total = _ce_total(spike)
    before = _ce_total(spike - timedelta(days=1))
    assert report["total_usd"] == pytest.approx(total, abs=0.01)
    rows = list(csv.DictReader(io.StringIO(ArtifactStore().get_bytes(report["csv_key"]).decode())))
    total_row = next(r for r in rows if r["dimension"] == "total")
    assert float(total_row["prev_day_usd"]) == pytest.approx(before, abs=0.01)
    assert float(total_row["dod_usd"]) == pytest.approx(total - before, abs=0.02)
    teams = {r["key"]: float(r["day_usd"]) for r in rows if r["dimension"] == "team"}
    assert set(teams) == {"storefront", "payments", "platform"}
    assert sum(teams.values()) == pytest.approx(total, abs=0.05)
    assert {r["dimension"] for r in rows} == {"total", "service", "account", "team", "service_tag", "env"}


def test_month_end_forecast_brackets_the_month_to_date(spike_report):
    spike, report = spike_report
    f = report["forecast"]
    assert f["month"] == spike.strftime("%Y-%m")
    assert f["mtd_usd"] < f["lower_usd"] <= f["forecast_usd"] <= f["upper_usd"]
    # the remaining days cost about what an ordinary recent day did (not the spike day)
    per_day = (f["forecast_usd"] - f["mtd_usd"]) / f["days_remaining"]
    assert per_day == pytest.approx(_ce_total(spike - timedelta(days=1)), rel=0.1)


def test_html_embeds_the_charts_and_the_numbers(spike_report):
    from aiops.core.artifacts import ArtifactStore

    spike, report = spike_report
    assert report["key"] == f"cost/reports/dt={spike.isoformat()}/report.html"
    html = ArtifactStore().get_bytes(report["key"]).decode()
    assert html.count('src="data:image/png;base64,') == 3
    for alt in ("Daily spend with forecast band", "Top movers", "Cost by team"):
        assert alt in html
    assert f"{report['total_usd']:,.2f}" in html
    assert f"{report['forecast']['forecast_usd']:,.2f}" in html
    assert "Likely driver" in html
    assert "DataTransfer-Out-Bytes" in html


def test_backfill_writes_the_past_day_partition_and_rewrites_it(cost_env):
    from aiops.core.artifacts import ArtifactStore
    from aiops.cost.report import build_report

    past = date(2026, 10, 2)
    first = build_report(past, run_id="backfill__2026-10-02T06:00:00+00:00")
    again = build_report(past, run_id="manual__2026-12-02T10:00:00+00:00")
    store = ArtifactStore()
    keys = store.list_keys("cost/reports/dt=2026-10-02/")
    latest = [k for k in keys if "/runs/" not in k]
    assert sorted(k.rsplit("/", 1)[1] for k in latest) == ["cost.csv", "email.eml", "latest.json", "report.html",
                                                           "report.txt", "summary.json"]
    # each run keeps its own report; the day's pointer names the newest
    runs = {k.split("/runs/")[1].split("/")[0] for k in keys if "/runs/" in k}
    assert runs == {"backfill__2026-10-02T06_00_00_00_00", "manual__2026-12-02T10_00_00_00_00"}
    assert store.get_json("cost/reports/dt=2026-10-02/latest.json")["run"] == again["run"]
    # deterministic rendering: the same day rendered twice gives the same bytes (charts and message)
    assert first["email_sha256"] == again["email_sha256"]
    assert store.get_bytes(first["run_key"]) == store.get_bytes(again["run_key"])
    assert store.get_bytes(first["email_key"]) == store.get_bytes("cost/reports/dt=2026-10-02/email.eml")
    assert first["total_usd"] == again["total_usd"] == pytest.approx(_ce_total(past), abs=0.01)
    assert first["forecast"]["month"] == "2026-10"


def test_report_is_emailed_through_ses(cost_env, spike_report):
    from moto.ses.models import ses_backends

    from aiops.cost.report import send_report

    _spike, report = spike_report
    backend = ses_backends[cost_env.manifest["account_id"]]["us-east-1"]
    before = len(backend.sent_messages)
    sent = send_report(report)
    assert len(backend.sent_messages) == before + 1
    message = backend.sent_messages[-1]
    assert message.id == sent["message_id"]
    assert "finops@matcarv.example" in message.destinations[0]
    assert message.raw_data.count("Content-ID: <cost-") == 3
    assert "Cost report" in report["subject"]


def test_a_report_day_is_emailed_once_and_every_send_is_recorded(cost_env):
    """A rerun re-renders and stores its own copy, but does not email the day again unless asked;
    sent.json keeps what was sent (the exact message key), so nothing emailed is lost."""
    from moto.ses.models import ses_backends

    from aiops.core.artifacts import ArtifactStore
    from aiops.core.reporting import sent_records
    from aiops.cost.report import build_report, send_report

    backend = ses_backends[cost_env.manifest["account_id"]]["us-east-1"]
    day = date(2026, 10, 5)
    before = len(backend.sent_messages)
    first = build_report(day, run_id="scheduled__2026-10-05")
    assert send_report(first)["skipped"] is False
    rerun = build_report(day, run_id="manual__rerun")
    again = send_report(rerun)
    assert again["skipped"] is True
    assert "already sent" in again["reason"]
    assert len(backend.sent_messages) == before + 1
    forced = send_report(rerun, resend=True)
    assert forced["skipped"] is False
    assert len(backend.sent_messages) == before + 2
    records = sent_records(rerun)
    assert [r["run"] for r in records] == [first["run"], rerun["run"]]
    assert [r["resend"] for r in records] == [False, True]
    store = ArtifactStore()
    for r in records:  # the exact messages sent are still there
        assert store.get_bytes(r["email_key"]) is not None


def test_cli_prints_the_report_for_a_day(cost_env, capsys):
    from aiops.cli import main

    assert main(["cost", "report", "--day", "2026-11-05"]) == 0
    out = capsys.readouterr().out
    assert "MatCarv AWS cost report for 2026-11-05" in out
    assert "month-end forecast" in out
    assert "cost/reports/dt=2026-11-05/cost.csv" in out


def test_realised_savings_appear_in_the_report(cost_env):
    from sqlalchemy import update

    from aiops.core.artifacts import ArtifactStore
    from aiops.core.state import StateStore, remediation_requests
    from aiops.cost import decisions
    from aiops.cost.model import Recommendation, RecommendationDecision
    from aiops.cost.report import build_report
    from aiops.remediation.pipeline import request_id

    rec = Recommendation(id="idle_instance:i-0abc", kind="idle_instance", action="stop", resource_type="ec2:instance",
                         resource_id="i-0abc", current={}, recommended={}, current_monthly_usd=70.08,
                         recommended_monthly_usd=0.0, monthly_savings_usd=70.08, evidence={}, confidence="high",
                         reason="idle", runbook="stop-idle-instance")
    applied_at = datetime(2026, 11, 1, 9, tzinfo=UTC)
    decisions.record_decisions([RecommendationDecision(decision="apply", recommendation=rec, ref="R1",
                                                       remediate_run_id="cost__x__R1")],
                               review_run_id="x", decided_by="bob.finops", decided_at=applied_at,
                               dismiss_days=90, apply_hold_days=7)
    store = StateStore()
    rid = request_id("remediate", "cost__x__R1")
    store.upsert_request(rid, run_id="cost__x__R1", status="succeeded")
    with store.engine.begin() as conn:  # the remediation finished on Nov 2 (logical time of the sandbox)
        conn.execute(update(remediation_requests).where(remediation_requests.c.request_id == rid).values(
            updated_at=datetime(2026, 11, 2, tzinfo=UTC)))
    report = build_report(date(2026, 11, 9))
    html = ArtifactStore().get_bytes(report["key"]).decode()
    accrued = round(70.08 * 8 / (730 / 24), 2)  # Nov 2 00:00 to the end of Nov 9
    assert "$70.08/mo" in html
    assert f"${accrued:,.2f} saved so far" in html
    assert "idle_instance:i-0abc" in html
    earlier = build_report(date(2026, 11, 1))  # before it completed: not counted yet
    assert "$0.00/mo" in ArtifactStore().get_bytes(earlier["key"]).decode()
