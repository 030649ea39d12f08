"""Sandbox extension 5: X-Ray GetServiceGraph / GetTraceSummaries computed from stored segments, in
the real API's shape (botocore's service model validates every response), with the simulated
account's traffic shaped by its ground truth."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import boto3
import botocore.session
import pytest
from botocore import xform_name
from botocore.parsers import create_parser
from botocore.stub import Stubber
from moto import mock_aws

from aiops.traces import collect
from aiops_sandbox import traces, xray

T0 = datetime(2026, 11, 20, 6, 0, tzinfo=UTC)
MANIFEST = {
    "resources": {"log_groups": {"/matcarv/checkout/prod/application": 30, "/matcarv/catalog/prod/application": 30}},
    "anomalies": [{"resource": "checkout/prod", "metric": "HTTPCode_Target_5XX_Count", "kind": "surge",
                   "start": "2026-11-20T06:00:00Z", "end": "2026-11-20T07:00:00Z"},
                  {"resource": "catalog-prod-search", "metric": "CPUUtilization", "kind": "spike",
                   "start": "2026-11-20T06:00:00Z", "end": "2026-11-20T07:00:00Z"}],
}


def _model_validated(operation: str, body: dict) -> dict:
    """Parse ``body`` as the wire JSON of ``operation`` and validate it against botocore's model."""
    session = botocore.session.get_session()
    model = session.get_service_model("xray").operation_model(operation)
    parsed = create_parser("rest-json").parse(
        {"body": json.dumps(body).encode(), "headers": {}, "status_code": 200}, model.output_shape)
    parsed.pop("ResponseMetadata", None)
    client = session.create_client("xray", region_name="us-east-1", aws_access_key_id="x",
                                   aws_secret_access_key="y")
    with Stubber(client) as stub:  # add_response validates the response against the output shape
        stub.add_response(xform_name(operation), parsed)
    return parsed


@pytest.fixture
def account():
    xray.install()
    with mock_aws():
        client = boto3.client("xray", region_name="us-east-1")
        docs = traces.build_documents(MANIFEST, (T0 - timedelta(hours=2)).timestamp(),
                                      (T0 + timedelta(hours=2)).timestamp(), per_bucket=20)
        for i in range(0, len(docs), 50):
            assert client.put_trace_segments(TraceSegmentDocuments=docs[i:i + 50])["UnprocessedTraceSegments"] == []
        yield client


def test_service_graph_has_the_real_shape_and_the_surge(account):
    before = account.get_service_graph(StartTime=T0 - timedelta(hours=1), EndTime=T0)
    during = account.get_service_graph(StartTime=T0, EndTime=T0 + timedelta(hours=1))
    nodes = {s["Name"]: s for s in during["Services"]}
    assert {"checkout", "catalog", "payments", "client"} <= set(nodes)  # payments: a callee of checkout
    checkout = nodes["checkout"]
    assert checkout["Type"] == "AWS::EC2::Instance"
    assert checkout["SummaryStatistics"]["TotalCount"] == 20 * 12
    edge_names = {nodes_by_ref(during)[e["ReferenceId"]] for e in checkout["Edges"]}
    assert edge_names == {"payments", "inventory", "payment-gateway"}
    fault = checkout["SummaryStatistics"]["FaultStatistics"]["TotalCount"] / checkout["SummaryStatistics"]["TotalCount"]
    quiet = {s["Name"]: s for s in before["Services"]}["checkout"]["SummaryStatistics"]
    assert fault > 0.15
    assert quiet["FaultStatistics"]["TotalCount"] / quiet["TotalCount"] < 0.05
    # the CPU spike on catalog: p99 up, computed from the histogram like the collector does
    p99_during = collect.percentile(nodes["catalog"]["ResponseTimeHistogram"], 0.99)
    p99_before = collect.percentile({s["Name"]: s for s in before["Services"]}["catalog"]["ResponseTimeHistogram"],
                                    0.99)
    assert p99_during > 2 * p99_before
    body = xray.service_graph(_backend(), T0.timestamp(), (T0 + timedelta(hours=1)).timestamp())
    _model_validated("GetServiceGraph", body)


def nodes_by_ref(graph: dict) -> dict:
    return {s["ReferenceId"]: s["Name"] for s in graph["Services"]}


def _backend():
    from moto.xray.models import xray_backends

    return xray_backends["123456789012"]["us-east-1"]


def test_trace_summaries_page_filter_and_shape(account):
    got, kwargs = [], {"StartTime": T0, "EndTime": T0 + timedelta(hours=1)}
    while True:
        page = account.get_trace_summaries(**kwargs)
        got.extend(page["TraceSummaries"])
        if not page.get("NextToken"):
            break
        kwargs["NextToken"] = page["NextToken"]
    assert len(got) == 2 * 20 * 12  # two services, more than one page
    assert all(T0 <= s["StartTime"] < T0 + timedelta(hours=1) for s in got)
    assert {s["EntryPoint"]["Name"] for s in got} == {"checkout", "catalog"}
    slow = max(got, key=lambda s: s["ResponseTime"])
    assert slow["ResponseTime"] > 0.1
    assert slow["Http"]["HttpURL"].startswith("https://")
    faulty = account.get_trace_summaries(StartTime=T0, EndTime=T0 + timedelta(hours=1),
                                         FilterExpression='service("checkout") AND fault')["TraceSummaries"]
    assert faulty
    assert all(s["HasFault"] and "checkout" in [x["Name"] for x in s["ServiceIds"]] for s in faulty)
    with pytest.raises(account.exceptions.InvalidRequestException):
        account.get_trace_summaries(StartTime=T0, EndTime=T0 + timedelta(hours=1), FilterExpression="annotation.x = 1")
    body = xray.trace_summaries(_backend(), {"StartTime": T0.timestamp(), "EndTime": (T0 + timedelta(hours=1)).timestamp()})
    _model_validated("GetTraceSummaries", body)
    assert "NextToken" in body


def test_history_bulk_load_answers_like_put_trace_segments():
    xray.install()
    with mock_aws():
        client = boto3.client("xray", region_name="us-east-1")
        docs = traces.build_documents(MANIFEST, T0.timestamp(), (T0 + timedelta(minutes=30)).timestamp())
        assert xray.load_history(_backend(), docs) == len(docs)
        graph = client.get_service_graph(StartTime=T0, EndTime=T0 + timedelta(minutes=30))
        total = sum(s["SummaryStatistics"].get("TotalCount", 0) for s in graph["Services"]
                    if s["Name"] in ("checkout", "catalog"))
        assert total == len(docs)


def test_documents_are_deterministic_and_shaped_by_the_ground_truth():
    a = traces.build_documents(MANIFEST, T0.timestamp(), (T0 + timedelta(hours=1)).timestamp())
    b = traces.build_documents(MANIFEST, T0.timestamp(), (T0 + timedelta(hours=1)).timestamp())
    assert a == b
    assert traces.services(MANIFEST) == ["catalog", "checkout"]
    doc = json.loads(a[0])
    assert doc["trace_id"].startswith("1-")
    assert int(doc["trace_id"].split("-")[1], 16) == int(doc["start_time"])


def test_live_feed_sends_traces_and_a_game_day_shapes_them():
    """The live feeder's traces go through PutTraceSegments; an active CPU pin slows its service."""
    from types import SimpleNamespace

    xray.install()
    with mock_aws():
        client = boto3.client("xray", region_name="us-east-1")
        pinned = [SimpleNamespace(scenario="cpu-pinned", service="checkout", state="active")]
        start, end = T0.timestamp(), (T0 + timedelta(hours=2)).timestamp()
        quiet = traces.documents_for(["checkout"], [], start, end, seed=int(start))
        n = traces.put_live(client, ["checkout"], traces.game_day_effects(pinned, end), start, end)
        assert n == len(quiet)
        graph = client.get_service_graph(StartTime=T0, EndTime=T0 + timedelta(hours=2))
        node = {s["Name"]: s for s in graph["Services"]}["checkout"]
        baseline = sorted(json.loads(d)["end_time"] - json.loads(d)["start_time"] for d in quiet)
        assert collect.percentile(node["ResponseTimeHistogram"], 0.99) > 2 * baseline[int(0.99 * len(baseline))]
