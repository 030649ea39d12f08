"""CloudWatch Anomaly Detection bands, where the account has detectors configured.

``DescribeAnomalyDetectors`` (paginated) lists the single-metric detectors; for each metric we
ask ``GetMetricData`` for ``ANOMALY_DETECTION_BAND(m, stddevs)`` next to the metric itself. The
band comes back as extra ``MetricDataResults`` for the expression's id; results whose label names
the upper/lower bound ("High"/"Upper", "Low"/"Lower") are read as such. The emulator has no
anomaly detectors: ``tests/unit/test_cw_anomaly.py`` exercises this path with stubbed responses
in the real API's shape.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from aiops.account.permissions import permissions
from aiops.core import aws
from aiops.metrics.collect import metric_data_pages
from aiops.metrics.model import series_id

PERMISSIONS = permissions(
    "CloudWatch anomaly detection bands",
    reader=(
        "cloudwatch:DescribeAnomalyDetectors",
        "cloudwatch:GetMetricData",
    ),
)


@dataclass(frozen=True)
class CwBand:
    series_id: str
    timestamps: list[datetime]
    lower: list[float]
    upper: list[float]


def list_detectors(region: str | None = None) -> dict[str, dict[str, Any]]:
    """series_id -> detector (trained single-metric detectors only)."""
    cw = aws.client("cloudwatch", region=region)
    found: dict[str, dict[str, Any]] = {}
    for resp in cw.get_paginator("describe_anomaly_detectors").paginate(AnomalyDetectorTypes=["SINGLE_METRIC"]):
        for det in resp.get("AnomalyDetectors", []):
            single = det.get("SingleMetricAnomalyDetector") or det
            if det.get("StateValue", "TRAINED") not in {"TRAINED", "TRAINED_INSUFFICIENT_DATA"}:
                continue
            dims = {d["Name"]: d["Value"] for d in single.get("Dimensions", [])}
            sid = series_id(single["Namespace"], single["MetricName"], dims, single["Stat"])
            found[sid] = single
    return found


def _bound(label: str) -> str | None:
    text = label.lower()
    if "high" in text or "upper" in text:
        return "upper"
    if "low" in text or "lower" in text:
        return "lower"
    return None


def fetch_bands(detectors: Iterable[dict[str, Any]], start: datetime, end: datetime, *, period: int = 300,
                stddevs: float = 2.0, region: str | None = None) -> dict[str, CwBand]:
    """series_id -> band over [start, end) for each detector (100 detectors per call: 2 queries each
    plus the band expression stays under the 500-query limit)."""
    cw = aws.client("cloudwatch", region=region)
    dets = list(detectors)
    out: dict[str, CwBand] = {}
    for offset in range(0, len(dets), 100):
        chunk = dets[offset:offset + 100]
        queries: list[dict[str, Any]] = []
        ids: dict[str, str] = {}
        for i, det in enumerate(chunk):
            dims = {d["Name"]: d["Value"] for d in det.get("Dimensions", [])}
            sid = series_id(det["Namespace"], det["MetricName"], dims, det["Stat"])
            ids[f"ad{i}"] = sid
            queries.append({"Id": f"m{i}", "ReturnData": True, "MetricStat": {
                "Metric": {"Namespace": det["Namespace"], "MetricName": det["MetricName"],
                           "Dimensions": det.get("Dimensions", [])},
                "Period": period, "Stat": det["Stat"]}})
            queries.append({"Id": f"ad{i}", "ReturnData": True,
                            "Expression": f"ANOMALY_DETECTION_BAND(m{i}, {stddevs:g})"})
        parts: dict[str, dict[str, dict[datetime, float]]] = {}
        for resp in metric_data_pages(cw, queries, start, end):
            for result in resp.get("MetricDataResults", []):
                if result["Id"] not in ids:
                    continue
                bound = _bound(result.get("Label", ""))
                if bound is None:
                    continue
                series = parts.setdefault(result["Id"], {}).setdefault(bound, {})
                series.update(zip(result.get("Timestamps", []), result.get("Values", []), strict=False))
        for qid, bounds in parts.items():
            lower, upper = bounds.get("lower", {}), bounds.get("upper", {})
            stamps = sorted(set(lower) & set(upper))
            if stamps:
                out[ids[qid]] = CwBand(ids[qid], stamps, [float(lower[t]) for t in stamps],
                                       [float(upper[t]) for t in stamps])
    return out
