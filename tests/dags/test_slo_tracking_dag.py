"""slo_tracking end to end with dag.test(): a backfill over the checkout 5xx surge on the simulated account."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import boto3
import pytest

pytestmark = [pytest.mark.airflow, pytest.mark.emulator, pytest.mark.slow]
ANCHOR = datetime(2026, 11, 20, 12, tzinfo=UTC)


@pytest.fixture
def one_day_of_alb_metrics(seeded, isolated_stores):
    """The last day of the ALB target-group series in the test's private metrics store."""
    from aiops.core.artifacts import ArtifactStore
    from aiops.metrics import pipeline as metrics

    key = metrics.discover()["key"]
    store = ArtifactStore()
    store.put_json(key, [r for r in store.get_json(key)
                         if r["namespace"] == "AWS/ApplicationELB" and "TargetGroup" in r["dimensions"]])
    chunks = metrics.plan(ANCHOR - timedelta(minutes=15), ANCHOR,
                          {"start": (ANCHOR - timedelta(days=1)).isoformat(), "end": ANCHOR.isoformat()})
    metrics.publish([metrics.extract_chunk(c, key) for c in chunks])


def test_backfill_run_records_history_alerts_metrics_and_dashboards(airflow_db, seeded, sandbox,
                                                                     one_day_of_alb_metrics):
    from airflow.dag_processing.dagbag import DagBag

    from aiops.core.state import StateStore
    from aiops.slo import pipeline

    surge = next(a for a in seeded.manifest["anomalies"]
                 if a["metric"] == "HTTPCode_Target_5XX_Count" and a["detectable"])
    onset = datetime.fromisoformat(surge["start"].replace("Z", "+00:00"))
    start, end = onset - timedelta(minutes=15), onset + timedelta(minutes=45)

    dag = DagBag(dag_folder="dags/slo_tracking.py").get_dag("slo_tracking")
    run = dag.test(logical_date=ANCHOR, run_conf={"start": start.isoformat(), "end": end.isoformat(),
                                                  "emit_alerts": True})
    tis = {ti.task_id: ti for ti in run.get_task_instances()}
    assert run.state == "success", {k: ti.state for k, ti in tis.items()}

    history = pipeline.read_history(start, end)
    assert len(history) == 4 * 12  # every SLO at every 5-minute point of the range
    checkout = history[history["slo_id"] == "checkout-availability"]
    assert checkout["alert"].dropna().tolist() == ["page"]
    assert set(history.loc[history["service"] != "checkout", "severity"]) <= {"none", "ticket"}
    assert tis["alert"].xcom_pull(task_ids="alert") == 1
    assert StateStore().get_watermark(pipeline.WATERMARK, account_id="123456789012") is None  # a backfill leaves
    # the live schedule alone

    kw = {"endpoint_url": sandbox.endpoint, "region_name": "us-east-1", "aws_access_key_id": "testing",
          "aws_secret_access_key": "testing"}
    cw = boto3.client("cloudwatch", **kw)
    assert {"MatCarv-SLO-checkout", "MatCarv-SLO-catalog", "MatCarv-SLO-payments"} <= {
        d["DashboardName"] for d in cw.list_dashboards(DashboardNamePrefix="MatCarv-SLO-")["DashboardEntries"]}
    published = cw.list_metrics(Namespace="MatCarv/SLO", MetricName="ErrorBudgetRemaining")["Metrics"]
    assert {"checkout-availability", "payments-availability"} <= {
        d["Value"] for m in published for d in m["Dimensions"] if d["Name"] == "SloId"}
