"""A sweep that cannot read part of the account never reports it fixed (issue 15, failure 1).

IAM answers AccessDenied (an IAM change) or keeps throttling past the retries — through a fault proxy
in front of the emulator. The failing IAM findings of the previous sweep must stay failing and
"not evaluated" with the error: not resolved in the diff, not archived in Security Hub, not "new" the
day after; the sweep is marked partial.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from aiops.compliance import pipeline
from aiops.core import aws
from aiops_sandbox.faults import Fault, FaultProxy

pytestmark = [pytest.mark.emulator]
T0 = datetime(2026, 11, 20, 6, tzinfo=UTC)
ADMIN = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}


@pytest.fixture
def proxied_account(fresh_emulator, isolated_stores, monkeypatch):
    from aiops.compliance import collect as collectors
    from aiops.core.artifacts import ArtifactStore

    monkeypatch.delitem(collectors.REGIONAL, "ebs_snapshots")  # moto's ~1,300 public AMI snapshots: slow
    iam = fresh_emulator.client("iam")
    arn = iam.create_policy(PolicyName="everything", PolicyDocument=json.dumps(ADMIN))["Policy"]["Arn"]
    for name in ("deploy-bot", "alice"):
        iam.create_user(UserName=name)
        iam.attach_user_policy(UserName=name, PolicyArn=arn)
        iam.create_access_key(UserName=name)
        iam.create_access_key(UserName=name)
    iam.create_login_profile(UserName="alice", Password="Passw0rd!Passw0rd!")
    with FaultProxy(fresh_emulator.endpoint) as proxy:
        monkeypatch.setenv("AIRFLOW_CONN_AWS_DEFAULT", json.dumps({
            "conn_type": "aws", "login": "testing", "password": "testing",
            "extra": {"region_name": "us-east-1", "endpoint_url": proxy.endpoint,
                      "config_kwargs": {"retries": {"max_attempts": 2}}}}))
        aws.clear_client_cache()
        ArtifactStore().ensure_bucket()
        yield proxy, fresh_emulator.client("securityhub")
    aws.clear_client_cache()


def _sweep(as_of):
    collected = pipeline.collect_inventory(as_of)
    evaluated = pipeline.evaluate_sweep(collected, run_id=f"test-{as_of:%d}")
    published = pipeline.publish_findings(evaluated)
    return evaluated, published


def _iam_findings(hub):
    found, kwargs = [], {"MaxResults": 100}
    while True:
        page = hub.get_findings(**kwargs)
        found += page["Findings"]
        if not page.get("NextToken"):
            return [f for f in found if f["GeneratorId"].startswith("matcarv-aiops/compliance/iam_")]
        kwargs["NextToken"] = page["NextToken"]


def _iam_failed(evaluated):
    doc = pipeline.ArtifactStore().get_json(evaluated["results_key"])
    return {(r["check_id"], r["resource_id"]): r for r in doc["results"]
            if r["check_id"].startswith("iam_") and r["status"] == "FAILED"}


@pytest.mark.parametrize("code", ["AccessDenied", "Throttling"])
def test_failed_collector_keeps_its_failures_failing(proxied_account, code):
    proxy, hub = proxied_account
    first, _ = _sweep(T0)
    before = _iam_failed(first)
    assert len(before) >= 10, sorted(before)
    assert ("iam_policy_no_admin_star", "everything") in {(k[0], r["resource_name"]) for k, r in before.items()}
    assert not first.get("partial")
    active = {f["Id"] for f in _iam_findings(hub) if f["RecordState"] == "ACTIVE"}
    assert len(active) == len(before)

    # IAM cannot be read: every IAM call fails (past the connection's 2 attempts when throttled)
    proxy.add(Fault("iam", code, status=403 if code == "AccessDenied" else 400, times=None))
    second, _ = _sweep(T0 + timedelta(days=1))
    assert second["diff"]["resolved"] == 0
    assert {f["Id"] for f in _iam_findings(hub) if f["RecordState"] == "ACTIVE"} == active  # nothing archived
    assert second["partial"] is True
    assert second["diff"]["new"] == 0
    after = _iam_failed(second)
    assert set(after) == set(before)  # still failing ...
    assert all(code in (r["not_evaluated"] or "") for r in after.values())  # ... and not evaluated, with the error
    assert second["counts"]["NOT_EVALUATED"] >= len(before)
    assert code in second["errors"]["iam_policy_no_admin_star"]
    findings = _iam_findings(hub)
    assert {f["Id"] for f in findings if f["RecordState"] == "ACTIVE"} == active  # nothing archived
    assert all(f["Compliance"]["Status"] == "FAILED" for f in findings)

    # IAM is readable again: the failures are "still failing", not "new"
    proxy.clear()
    third, _ = _sweep(T0 + timedelta(days=2))
    assert not third["partial"]
    assert third["diff"]["new"] == 0
    assert third["diff"]["resolved"] == 0
    assert set(_iam_failed(third)) == set(before)
    assert not any(r["not_evaluated"] for r in _iam_failed(third).values())

    # the summary of the partial sweep says so
    stored = pipeline.build_summary(second)
    text = pipeline.ArtifactStore().get_bytes(stored["text_key"]).decode()
    assert text.startswith("[PARTIAL] Compliance summary")
    assert "still failing at last evaluation: [CRITICAL] iam_policy_no_admin_star" in text or \
        "still failing at last evaluation: [HIGH] iam_policy_no_admin_star" in text
