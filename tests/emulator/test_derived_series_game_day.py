"""Derived series raise anomalies during a game day (issue 17): on an account whose live traffic is the
sandbox's live feeder's (``aiops_sandbox.traces.put_live`` with the active game-day effects), a CPU pin
on checkout raises its p99 latency and a 5xx surge on catalog raises its fault rate; traces_collect
turns them into derived series, anomaly_detection scores them with the CloudWatch scoring path and
alerts carry service / env / team, which alerting routes to the team's topic; triage quotes them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import boto3
import pytest

from aiops.anomaly import pipeline as anomaly
from aiops.metrics.pipeline import SERIES_KEY
from aiops.traces import pipeline as traces

pytestmark = [pytest.mark.emulator, pytest.mark.slow]
GAME_DAY = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
HISTORY = GAME_DAY.replace(hour=0) - timedelta(days=2)  # two quiet days before the game day's midnight
FAILURE = timedelta(minutes=45)
P99 = "AIOps/Traces|P99Latency|Service={}|p99"
FAULTS = "AIOps/Traces|FaultRatePercent|Service={}|Average"
TAGS = {"checkout": "storefront", "catalog": "discovery"}


@pytest.fixture
def game_day_traces(fresh_emulator, isolated_stores, monkeypatch):
    """Two quiet days, then 45 minutes of cpu-pinned on checkout and 5xx-surge on catalog, then quiet:
    the documents the live feeder sends (same generator, same effects), through PutTraceSegments."""
    from aiops.core.artifacts import ArtifactStore
    from aiops.core.settings import get_settings
    from aiops_sandbox import traces as feed

    monkeypatch.setenv("AIOPS_ANOMALY_BATCHES", "1")
    monkeypatch.setenv("AIOPS_ANOMALY_IMPORT_CW_BANDS", "false")
    get_settings.cache_clear()
    xray = boto3.client("xray", endpoint_url=fresh_emulator.endpoint, region_name="us-east-1",
                        aws_access_key_id="testing", aws_secret_access_key="testing")
    services = sorted(TAGS)
    failing = [SimpleNamespace(scenario="cpu-pinned", service="checkout", state="active"),
               SimpleNamespace(scenario="5xx-surge", service="catalog", state="active")]
    ts = datetime.timestamp
    feed.put_live(xray, services, [], ts(HISTORY), ts(GAME_DAY))
    feed.put_live(xray, services, feed.game_day_effects(failing, ts(GAME_DAY + FAILURE)), ts(GAME_DAY),
                  ts(GAME_DAY + FAILURE))
    feed.put_live(xray, services, [], ts(GAME_DAY + FAILURE), ts(GAME_DAY + 2 * FAILURE))
    # the estate's tags as metrics_extract discovered them (env and team of each service)
    ArtifactStore().put_json(SERIES_KEY, [
        {"namespace": "AWS/EC2", "metric": "CPUUtilization", "dimensions": {"InstanceId": f"i-{s}"},
         "stat": "Average", "region": "us-east-1", "resource_id": f"i-{s}",
         "tags": {"service": s, "env": "prod", "team": team}} for s, team in TAGS.items()])
    end = GAME_DAY + 2 * FAILURE
    chunks = traces.plan(end - timedelta(minutes=15), end, {"start": HISTORY.isoformat(), "end": end.isoformat()})
    summary = traces.publish([traces.collect_chunk(c) for c in chunks])
    assert summary["quarantined"] == []
    yield end
    get_settings.cache_clear()


def test_a_game_day_raises_derived_series_anomalies_routed_to_the_team(game_day_traces):
    from aiops.alerting.normalise import aiops_anomaly
    from aiops.alerting.rules import load_rules
    from aiops.incidents.triage import derived_evidence

    end = game_day_traces
    tasks = anomaly.plan([], {"start": (GAME_DAY - timedelta(hours=2)).isoformat(), "end": end.isoformat(),
                              "emit_alerts": True}, end)
    results = [anomaly.score_batch(t) for t in tasks]
    alerts = {a["series_id"]: a for r in results for a in r["alerts"]}
    assert sum(r["series"] for r in results) >= 4  # p99 and fault rate of both services, next to CloudWatch's

    for sid, service in ((P99.format("checkout"), "checkout"), (FAULTS.format("catalog"), "catalog")):
        assert sid in alerts, f"no anomaly on {sid}; alerts: {sorted(alerts)}"
        alert = alerts[sid]
        onset = datetime.fromisoformat(alert["onset"])
        assert GAME_DAY <= onset < GAME_DAY + timedelta(minutes=20)
        assert (alert["service"], alert["env"], alert["team"]) == (service, "prod", TAGS[service])
        event = {"id": f"e-{service}", "time": alert["onset"], "source": anomaly.ALERT_SOURCE,
                 "detail-type": anomaly.ALERT_DETAIL_TYPE, "region": "us-east-1", "account": "123456789012",
                 "detail": alert}
        normalised = aiops_anomaly(event)
        topics, _ = load_rules().routing.topics_for(normalised)
        assert f"aiops-alerts-{TAGS[service]}" in topics
    # the quiet hours before the game day raise nothing on the derived series
    assert not [a for a in alerts.values() if datetime.fromisoformat(a["onset"]) < GAME_DAY]

    evidence = derived_evidence("checkout", GAME_DAY - timedelta(minutes=15), GAME_DAY + FAILURE)
    p99 = next(i for i in evidence["series"] if i["series_id"] == P99.format("checkout"))
    assert p99["outside"]
    assert p99["band_source"] == "anomaly_detector"
    assert p99["text"].startswith("p99 latency ")
    assert " ms vs expected " in p99["text"]
    assert p99["value"] > p99["upper"]
