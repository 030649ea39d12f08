"""State keyed by account (issue 15, failure 5): pointing the AWS connection at another account does
not reuse the first account's anomaly / SLO watermarks or compliance sweep history; a watermark is
trusted only when the data it vouches for exists; remediation requests record their account."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import boto3
import pytest

from aiops.core.state import StateStore

pytestmark = [pytest.mark.emulator]
FIRST = "123456789012"
END = datetime(2026, 11, 20, 12, tzinfo=UTC)


@pytest.fixture
def switch_account(sandbox, monkeypatch):
    """Call it to point the default AWS connection at account 222222222222 of the same emulator."""
    from aiops.core import aws

    def switch() -> str:
        creds = boto3.client("sts", endpoint_url=sandbox.endpoint, region_name="us-east-1",
                             aws_access_key_id="testing", aws_secret_access_key="testing").assume_role(
            RoleArn="arn:aws:iam::222222222222:role/aiops", RoleSessionName="aiops")["Credentials"]
        monkeypatch.setenv("AIRFLOW_CONN_AWS_DEFAULT", json.dumps({
            "conn_type": "aws", "login": creds["AccessKeyId"], "password": creds["SecretAccessKey"],
            "extra": {"region_name": "us-east-1", "endpoint_url": sandbox.endpoint,
                      "aws_session_token": creds["SessionToken"]}}))
        aws.clear_client_cache()
        return "222222222222"

    yield switch
    aws.clear_client_cache()


def _slo_row(at: datetime) -> dict:
    return {"slo_id": "checkout-availability", "evaluated_at": at, "service": "checkout", "objective": 0.999,
            "window_days": 28, "coverage": 1.0, "good": 1.0, "total": 1.0, "burn_rates": {}, "firing": [],
            "severity": "none"}


def _publish_anomaly_run(end: datetime) -> None:
    from aiops.anomaly import pipeline as anomaly
    from aiops.anomaly.store import DOMAIN
    from aiops.core.artifacts import ArtifactStore

    ArtifactStore().put_bytes(ArtifactStore.key(DOMAIN, "scores", (end - timedelta(minutes=5)).date(),
                                                "batch-000.parquet"), b"scores")
    anomaly.publish([{"series": 1, "points": 3, "anomalies": 0, "fits": 0, "warmed": 0, "alerts": [],
                      "end": end.isoformat()}], run_id="r1")


def test_another_account_reuses_no_anomaly_or_slo_watermark(isolated_stores, switch_account):
    from sqlalchemy import insert

    from aiops.anomaly import pipeline as anomaly
    from aiops.core.identity import current_account
    from aiops.core.state import slo_history
    from aiops.slo import pipeline as slo

    assert current_account() == FIRST
    store = StateStore()
    store.migrate()
    with store.transaction() as conn:
        conn.execute(insert(slo_history).values(**_slo_row(END)))
    slo.advance(END.isoformat(), run_id="r1")
    _publish_anomaly_run(END)
    assert slo.evaluated_until() == END
    assert anomaly.scored_until() == END

    other = switch_account()
    assert current_account() == other
    assert slo.evaluated_until() is None  # not the first account's
    assert anomaly.scored_until() is None
    later = END + timedelta(hours=1)
    with store.transaction() as conn:
        conn.execute(insert(slo_history).values(**_slo_row(later)))
    slo.advance(later.isoformat(), run_id="r2")
    assert slo.evaluated_until() == later
    # the first account's watermarks are untouched by the second's runs
    assert store.get_watermark(slo.WATERMARK, account_id=FIRST) == END
    assert store.get_watermark(anomaly.WATERMARK, account_id=FIRST) == END
    assert store.get_watermark(slo.WATERMARK, account_id=other) == later
    assert store.get_watermark(anomaly.WATERMARK, account_id=other) is None


def test_watermarks_whose_data_is_gone_are_not_trusted(isolated_stores):
    from sqlalchemy import delete, insert

    from aiops.anomaly import pipeline as anomaly
    from aiops.anomaly.store import DOMAIN
    from aiops.core.artifacts import ArtifactStore
    from aiops.core.state import slo_history
    from aiops.slo import pipeline as slo

    store = StateStore()
    store.migrate()
    with store.transaction() as conn:
        conn.execute(insert(slo_history).values(**_slo_row(END)))
    slo.advance(END.isoformat(), run_id="r1")
    _publish_anomaly_run(END)
    assert (slo.evaluated_until(), anomaly.scored_until()) == (END, END)

    with store.transaction() as conn:  # the SLO history was lost
        conn.execute(delete(slo_history))
    artifacts = ArtifactStore()  # the artifact store was emptied
    for key in artifacts.list_keys(f"{DOMAIN}/"):
        artifacts.s3.delete_object(Bucket=artifacts.bucket, Key=key)
    assert slo.evaluated_until() is None
    assert anomaly.scored_until() is None
    assert store.get_watermark(slo.WATERMARK, account_id=FIRST) == END  # still recorded, just not trusted


def test_two_accounts_swept_at_the_same_time_keep_their_own_history(isolated_stores):
    from aiops.compliance import history
    from aiops.compliance.pipeline import sweep_id_of

    store = StateStore()
    store.migrate()
    earlier, now = END - timedelta(days=1), END
    for account in (FIRST, "222222222222"):
        for as_of in (earlier, now):
            history.record_sweep(store, sweep_id=sweep_id_of(as_of, account), as_of=as_of, account_id=account,
                                 regions=["us-east-1"], results=[], errors={}, sweep_diff=None)
    assert sweep_id_of(now, FIRST) != sweep_id_of(now, "222222222222")
    # the second account's sweep of the same day did not overwrite the first's
    assert history.previous_sweep(store, now + timedelta(seconds=1), FIRST) == sweep_id_of(now, FIRST)
    assert history.previous_sweep(store, now, "222222222222") == sweep_id_of(earlier, "222222222222")
    with store.engine.connect() as conn:
        from sqlalchemy import select

        from aiops.core.state import compliance_sweeps

        rows = conn.execute(select(compliance_sweeps.c.sweep_id, compliance_sweeps.c.account_id)).all()
    assert len(rows) == 4
    assert all(sweep.startswith(account + "-") for sweep, account in rows)
