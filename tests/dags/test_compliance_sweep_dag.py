"""compliance_sweep end to end with dag.test() on the simulated account: findings in Security Hub,
the summary emailed, and the approved fix requests become remediate runs with the runbook conf."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from aiops_sandbox.hitl import HitlResponder, approve, reject

pytestmark = [pytest.mark.airflow, pytest.mark.emulator, pytest.mark.slow]
ANCHOR = datetime(2026, 11, 20, 12, tzinfo=UTC)


@pytest.fixture
def dag(airflow_db, seeded, isolated_stores, monkeypatch):
    from airflow.dag_processing.dagbag import DagBag

    from aiops.compliance import collect as collectors

    # moto's ~1,300 AMI snapshots cost ~10 s per sweep; snapshots are covered by test_compliance_checks.
    monkeypatch.delitem(collectors.REGIONAL, "ebs_snapshots")
    return DagBag(dag_folder="dags/compliance_sweep.py").get_dag("compliance_sweep")


def _remediate_runs(prefix: str) -> list:
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session

    with create_session() as session:
        runs = session.query(DagRun).filter(DagRun.dag_id == "remediate", DagRun.run_id.like(f"{prefix}%")).all()
        return [(r.run_id, dict(r.conf or {})) for r in runs]


def test_sweep_publishes_emails_and_sends_approved_fixes_to_remediate(dag, seeded):
    m = seeded.manifest
    with HitlResponder({"request_fixes": approve(by="carol.secops")}) as responder:
        run = dag.test(logical_date=ANCHOR, run_conf={"remediate_all_fixable": True})
    states = {ti.task_id: ti.state for ti in run.get_task_instances()}
    assert run.state == "success", states
    assert states["send_summary"] == "success"
    assert states["publish_findings"] == "success"
    body = responder.answered[0][0].body
    assert m["resources"]["buckets"]["public_assets"] in body  # the approver sees what will be requested

    sweep_id = "123456789012-" + ANCHOR.strftime("%Y-%m-%dT%H%M%SZ")  # account-keyed (revision 0003)
    confs = [c for _, c in _remediate_runs(f"compliance__{sweep_id}")]
    by_runbook = {}
    for c in confs:
        by_runbook.setdefault(c["runbook"], []).append(c["parameters"])
    assert {"GroupId": m["resources"]["security_groups"]["bastion-ssh"], "Port": "22", "Protocol": "tcp",
            "SourceCidr": "0.0.0.0/0"} in by_runbook["revoke-world-open-ingress"]
    assert {"GroupId": m["resources"]["security_groups"]["staging-windows-rdp"], "Port": "3389",
            "Protocol": "tcp", "SourceCidr": "::/0"} in by_runbook["revoke-world-open-ingress"]
    assert {"BucketName": m["resources"]["buckets"]["public_assets"]} in by_runbook["block-public-s3-bucket"]
    assert all(c["requested_by"] == "compliance_sweep" and c["dry_run"] is False for c in confs)


def test_rejected_request_sends_nothing(dag):
    later = datetime(2026, 11, 21, 12, tzinfo=UTC)
    with HitlResponder({"request_fixes": reject(by="carol.secops")}):
        run = dag.test(logical_date=later, run_conf={"remediate_all_fixable": True, "send_email": False})
    states = {ti.task_id: ti.state for ti in run.get_task_instances()}
    assert states["request_fixes"] == "success"
    assert states["fix_requests"] == "skipped"
    assert _remediate_runs(f"compliance__{later:%Y-%m-%dT%H%M%SZ}") == []
