"""slo_tracking's and slo_weekly_report's steps on the simulated account: the checkout surge pages, the
catalog slow burn tickets, payments stays quiet; backfills reproduce the history; dashboards, alert
events and the report email land in the emulator; an exhausted budget demands one more approval."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import boto3
import pytest

from aiops.metrics import pipeline as metrics
from aiops.slo import pipeline

pytestmark = [pytest.mark.emulator, pytest.mark.slow]
ANCHOR = datetime(2026, 11, 20, 12, tzinfo=UTC)


def _utc(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


@pytest.fixture(scope="module")
def slo_store(seeded, tmp_path_factory):
    """A private artifact bucket and state store holding the last 4 days of the seeded account's
    ALB target-group series (what the SLOs read), extracted once for the module."""
    from aiops.core.artifacts import ArtifactStore
    from aiops.core.settings import get_settings

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AIOPS_ARTIFACT_BUCKET", "aiops-test-slo-pipeline")
        mp.setenv("AIOPS_HOME", str(tmp_path_factory.mktemp("aiops-slo")))
        get_settings.cache_clear()
        key = metrics.discover()["key"]
        store = ArtifactStore()
        store.put_json(key, [r for r in store.get_json(key)
                             if r["namespace"] == "AWS/ApplicationELB" and "TargetGroup" in r["dimensions"]])
        # the platform's first extraction covers the first hour of the 4 days: the seeded surge later
        # on is live data to it, not a first start's history
        began = ANCHOR - timedelta(days=4) + timedelta(hours=1)
        for start, end in ((ANCHOR - timedelta(days=4), began), (began, ANCHOR)):
            chunks = metrics.plan(end - timedelta(minutes=15), end, {"start": start.isoformat(), "end": end.isoformat()})
            metrics.publish([metrics.extract_chunk(c, key) for c in chunks])
        yield get_settings()
    get_settings.cache_clear()


@pytest.fixture(scope="module")
def surge(seeded):
    truth = next(a for a in seeded.manifest["anomalies"]
                 if a["metric"] == "HTTPCode_Target_5XX_Count" and a["detectable"])
    return _utc(truth["start"]), _utc(truth["end"])


@pytest.fixture(scope="module")
def last_day(slo_store):
    """Every SLO evaluated at every 5-minute point of the last day (not recorded)."""
    history, _ = pipeline.evaluate_range(ANCHOR - timedelta(days=1), ANCHOR, pipeline.load())
    return history


def _severities(history, service: str) -> set[str]:
    return set(history.loc[history["service"] == service, "severity"])


def test_checkout_surge_pages_during_the_surge(slo_store, surge):
    onset, end = surge
    task = pipeline.plan(ANCHOR, {"start": (onset - timedelta(hours=1)).isoformat(),
                                  "end": (end + timedelta(hours=2)).isoformat(), "emit_alerts": True})
    result = pipeline.record(task, run_id="test")
    pages = [a for a in result["alerts"] if a["slo_id"] == "checkout-availability"]
    assert [a["severity"] for a in pages] == ["page"]  # one alert for the whole incident, not one per point
    assert onset < _utc(pages[0]["evaluated_at"]) <= onset + timedelta(minutes=20)
    assert pages[0]["team"] == "storefront"
    assert any(w["firing"] and w["rule"] == "page-1h" for w in pages[0]["windows"])
    history = pipeline.read_history(onset, end, slo_ids=["checkout-availability"])
    assert history.loc[history["evaluated_at"] >= onset + timedelta(minutes=15), "severity"].eq("page").all()


def test_scheduled_catch_up_records_but_does_not_send_old_onsets(slo_store, surge):
    onset, _ = surge
    task = {"start": (onset - timedelta(hours=1)).isoformat(), "end": (onset + timedelta(hours=3)).isoformat(),
            "mode": "scheduled", "emit_alerts": True}  # a run catching up after three hours of downtime
    assert pipeline.record(task)["alerts"] == []
    history = pipeline.read_history(onset, onset + timedelta(hours=1), slo_ids=["checkout-availability"])
    assert history["alert"].dropna().tolist() == ["page"]


def test_scheduled_run_sends_an_onset_within_the_freshness_horizon(slo_store, surge):
    """The same onset, evaluated by a live run minutes after it (not a catch-up), is sent, stamped
    with its data time and age; evaluated today (history) it is not."""
    onset, _ = surge
    task = {"start": (onset - timedelta(hours=1)).isoformat(), "end": (onset + timedelta(minutes=30)).isoformat(),
            "mode": "scheduled", "emit_alerts": True}
    live = pipeline.record(task, now=onset + timedelta(minutes=35))
    [page] = [a for a in live["alerts"] if a["slo_id"] == "checkout-availability"]
    assert page["severity"] == "page"
    assert page["observed_at"] == page["evaluated_at"]
    assert 0 < page["data_age_seconds"] <= 35 * 60
    assert pipeline.record(task)["alerts"] == []  # the wall clock: days later, history


def test_catalog_slow_burn_tickets_and_does_not_page(last_day, seeded):
    assert seeded.manifest["slo"]["ticket"] == ["catalog"]
    availability = last_day[last_day["slo_id"] == "catalog-availability"]
    assert availability["severity"].eq("ticket").all()
    assert "page" not in _severities(last_day, "catalog")  # neither availability nor latency
    burn = availability.iloc[-1]["burn_rates"]
    assert 1.0 <= burn["3d"] < 6.0  # spends the budget faster than it accrues: ticket
    assert burn["6h"] < 6.0  # ... but too slowly to page


def test_payments_stays_quiet(last_day, seeded):
    assert seeded.manifest["slo"]["quiet"] == ["payments"]
    assert _severities(last_day, "payments") == {"none"}
    assert last_day.loc[last_day["service"] == "payments", "budget_remaining"].min() > 0.5


def test_budget_is_computed_over_the_history_the_store_holds(last_day):
    # 4 days stored, 28-day window: the budget covers the 4 days and says so.
    row = last_day[last_day["slo_id"] == "payments-availability"].iloc[-1]
    assert row["coverage"] == pytest.approx(4 / 28)
    assert row["budget_remaining"] == pytest.approx(1 - (row["total"] - row["good"]) / (0.001 * row["total"]))


def test_backfill_as_one_range_or_two_halves_writes_identical_history(slo_store, surge):
    onset, _ = surge
    start, middle, end = onset - timedelta(hours=2), onset + timedelta(minutes=20), onset + timedelta(hours=2)

    def backfill(a: datetime, b: datetime) -> None:
        pipeline.record(pipeline.plan(ANCHOR, {"start": a.isoformat(), "end": b.isoformat()}))

    backfill(start, end)
    whole = pipeline.read_history(start, end)
    backfill(start, middle)
    backfill(middle, end)
    backfill(start, end)  # and the same range again
    halves = pipeline.read_history(start, end)
    assert len(whole) == 4 * 48  # 4 SLOs x 48 points, no duplicates
    assert whole.to_json() == halves.to_json()


def test_surge_page_reaches_eventbridge(slo_store, surge, sandbox):
    onset, end = surge
    kw = {"endpoint_url": sandbox.endpoint, "region_name": "us-east-1", "aws_access_key_id": "testing",
          "aws_secret_access_key": "testing"}
    sqs, events = boto3.client("sqs", **kw), boto3.client("events", **kw)
    queue = sqs.create_queue(QueueName="test-slo-burn-alerts")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(Name="test-slo-burn-alerts", State="ENABLED",
                    EventPattern=json.dumps({"source": ["matcarv.aiops"], "detail-type": [pipeline.ALERT_DETAIL_TYPE]}))
    events.put_targets(Rule="test-slo-burn-alerts", Targets=[{"Id": "q", "Arn": arn}])
    result = pipeline.record(pipeline.plan(ANCHOR, {"start": onset.isoformat(), "end": end.isoformat(),
                                                    "emit_alerts": True}))
    assert pipeline.send_alerts(result["alerts"]) == len(result["alerts"]) >= 1
    got = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", [])
    details = [json.loads(m["Body"])["detail"] for m in got]
    page = next(d for d in details if d["slo_id"] == "checkout-availability")
    assert (page["alert_type"], page["severity"], page["service"], page["env"]) == (
        "slo_burn", "page", "checkout", "prod")
    assert page["fingerprint"] == result["alerts"][0]["fingerprint"]
    assert page["burn_rates"]["5m"] >= 14.4
    assert page["burn_rates"]["1h"] >= 14.4


def test_dashboards_are_published_per_service(slo_store, sandbox, seeded):
    _, series = pipeline.evaluate_range(ANCHOR - timedelta(minutes=5), ANCHOR, pipeline.load())
    summary = pipeline.update_dashboards(series, ANCHOR)
    assert summary["dashboards"] == ["MatCarv-SLO-catalog", "MatCarv-SLO-checkout", "MatCarv-SLO-payments"]
    cw = boto3.client("cloudwatch", endpoint_url=sandbox.endpoint, region_name="us-east-1",
                      aws_access_key_id="testing", aws_secret_access_key="testing")
    body = json.loads(cw.get_dashboard(DashboardName="MatCarv-SLO-checkout")["DashboardBody"])
    sli = next(w for w in body["widgets"] if w["properties"].get("title") == "checkout-availability: SLI (%)")
    tg = seeded.manifest["resources"]["target_groups"]["checkout/prod"]
    alb = [m for m in sli["properties"]["metrics"] if m[0] == "AWS/ApplicationELB"]
    assert [m[1] for m in alb] == ["RequestCount", "HTTPCode_Target_5XX_Count"]
    assert all(m[2:6] == ["LoadBalancer", tg["lb_dimension"], "TargetGroup", tg["dimension"]] for m in alb)
    # unchanged within the hour: not published again; changed SLO set or an hour later: published
    assert pipeline.update_dashboards(series, ANCHOR + timedelta(minutes=5))["updated"] == []
    assert len(pipeline.update_dashboards(series, ANCHOR + timedelta(hours=1))["updated"]) == 3


def test_weekly_report_is_stored_and_emailed(slo_store, seeded, surge):
    from moto.ses.models import ses_backends

    from aiops.core.artifacts import ArtifactStore

    onset, _ = surge
    pipeline.record(pipeline.plan(ANCHOR, {"start": (onset - timedelta(hours=6)).isoformat(),
                                           "end": ANCHOR.isoformat()}))
    backend = ses_backends[seeded.manifest["account_id"]]["us-east-1"]
    before = len(backend.sent_messages)
    report = pipeline.build_report(ANCHOR - timedelta(days=7), ANCHOR)
    sent = pipeline.send_report(report)
    html = ArtifactStore().get_bytes("slo/reports/dt=2026-11-20/report.html").decode()
    assert "checkout-availability" in html
    assert "data:image/png;base64," in html
    assert len(backend.sent_messages) == before + 1
    message = backend.sent_messages[-1]
    assert message.id == sent["message_id"]
    assert "eng-managers@matcarv.example" in message.destinations[0]
    assert "Content-ID: <slo-0@matcarv.aiops>" in message.raw_data
    assert report["subject"].startswith("SLO report, week ending 2026-11-20")


def test_exhausted_budget_demands_an_extra_approval(slo_store, seeded):
    from sqlalchemy import delete

    from aiops.core.state import StateStore, slo_history
    from aiops.remediation.pipeline import make_plan

    later = ANCHOR + timedelta(hours=1)
    synthetic, _ = pipeline.evaluate_range(ANCHOR, ANCHOR + timedelta(minutes=5), pipeline.load())
    synthetic = synthetic[synthetic["slo_id"] == "checkout-availability"].copy()
    synthetic["evaluated_at"] = synthetic["evaluated_at"] + timedelta(hours=1)
    synthetic["budget_remaining"] = -0.12
    pipeline.upsert_history(synthetic, later - timedelta(minutes=5), later, ["checkout-availability"])
    try:
        instance = seeded.manifest["resources"]["instances"]["checkout-prod-web-1"]
        plan = make_plan({"runbook": "restart-ec2-instance", "parameters": {"InstanceId": instance},
                          "requested_by": "alice.sre", "dry_run": True}, dag_id="remediate", run_id="slo-test")
        assert plan["extra_approval_reasons"] == ["error budget of checkout-availability exhausted (-12% remaining)"]
        assert plan["approval_rounds"] == 2
    finally:
        with StateStore().engine.begin() as conn:
            conn.execute(delete(slo_history).where(slo_history.c.evaluated_at == later))


def test_a_first_start_does_not_page_for_a_burn_that_began_before_it(slo_store, surge, monkeypatch):
    """Within the freshness horizon, but before the platform began watching the account (its first
    extraction): recorded, not sent."""
    onset, _ = surge
    task = {"start": (onset - timedelta(hours=1)).isoformat(), "end": (onset + timedelta(minutes=30)).isoformat(),
            "mode": "scheduled", "emit_alerts": True}
    monkeypatch.setattr(metrics, "live_since", lambda account_id=None: onset + timedelta(minutes=30))
    assert pipeline.record(task, now=onset + timedelta(minutes=35))["alerts"] == []
