"""CloudWatch collector: discover the series to pull, then pull them with GetMetricData.

Discovery lists what exists (``ListMetrics`` per catalog namespace, paginated), keeps the metrics
the catalog names, and attaches resource tags (service, env, team, owner) from one paginated pass of
the Resource Groups Tagging API per region. Extraction batches 500 queries per GetMetricData call
(the API's limit) and follows ``NextToken`` until the window is complete.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from aiops.account.permissions import permissions
from aiops.core import aws
from aiops.metrics.model import MetricCatalog, series_id

PERMISSIONS = permissions(
    "CloudWatch metrics and the tags of their resources",
    reader=(
        "cloudwatch:GetMetricData",
        "cloudwatch:ListMetrics",
        "tag:GetResources",
    ),
)

TAG_KEYS = ("service", "env", "team", "owner")
MAX_QUERIES_PER_CALL = 500  # GetMetricData: MetricDataQueries limit
MAX_DATAPOINTS_PER_CALL = 100_800  # GetMetricData: datapoints returned per response


def queries_per_call(window_seconds: float, period: int, limit: int = MAX_QUERIES_PER_CALL) -> int:
    """Series per call so that one response holds a whole window: 500 for short windows, fewer when
    500 series x points would overflow 100,800 datapoints (a 1-day window at 5 minutes: 350)."""
    points = max(1, math.ceil(window_seconds / period))
    return max(1, min(limit, MAX_DATAPOINTS_PER_CALL // points))


def minimum_calls(n_series: int, window_seconds: float, period: int) -> int:
    """The fewest GetMetricData calls any client can make for this window."""
    points = max(1, math.ceil(window_seconds / period))
    return max(math.ceil(n_series / MAX_QUERIES_PER_CALL), math.ceil(n_series * points / MAX_DATAPOINTS_PER_CALL))


@dataclass(frozen=True)
class SeriesRef:
    namespace: str
    metric: str
    dimensions: tuple[tuple[str, str], ...]
    stat: str
    region: str
    resource_id: str
    tags: tuple[tuple[str, str], ...] = ()

    @property
    def series_id(self) -> str:
        return series_id(self.namespace, self.metric, dict(self.dimensions), self.stat)

    def tag(self, key: str) -> str:
        return dict(self.tags).get(key, "")

    def to_dict(self) -> dict[str, Any]:
        return {"namespace": self.namespace, "metric": self.metric, "dimensions": dict(self.dimensions),
                "stat": self.stat, "region": self.region, "resource_id": self.resource_id,
                "tags": dict(self.tags)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SeriesRef:
        return cls(d["namespace"], d["metric"], tuple(sorted(d["dimensions"].items())), d["stat"], d["region"],
                   d["resource_id"], tuple(sorted(d.get("tags", {}).items())))


@dataclass
class CallStats:
    """API calls made, for the benchmark and the run log."""

    get_metric_data_calls: int = 0
    list_metrics_calls: int = 0
    tagging_calls: int = 0
    datapoints: int = 0
    by_api: dict[str, int] = field(default_factory=dict)

    def merge(self, other: CallStats) -> None:
        self.get_metric_data_calls += other.get_metric_data_calls
        self.list_metrics_calls += other.list_metrics_calls
        self.tagging_calls += other.tagging_calls
        self.datapoints += other.datapoints


def resource_tags(region: str, stats: CallStats | None = None) -> dict[str, dict[str, str]]:
    """ARN -> tags for every tagged resource in the region (one paginated pass)."""
    tagging = aws.client("resourcegroupstaggingapi", region=region)
    out: dict[str, dict[str, str]] = {}
    for page in tagging.get_paginator("get_resources").paginate(ResourcesPerPage=100):
        if stats:
            stats.tagging_calls += 1
        for item in page.get("ResourceTagMappingList", []):
            out[item["ResourceARN"]] = {t["Key"]: t["Value"] for t in item.get("Tags", [])}
    return out


def discover_series(catalog: MetricCatalog, regions: Iterable[str], *, account_id: str | None = None,
                    stats: CallStats | None = None) -> list[SeriesRef]:
    """Every catalogued series that exists in the account, with its resource's tags."""
    stats = stats if stats is not None else CallStats()
    account_id = account_id or aws.account_id()
    found: dict[str, SeriesRef] = {}
    for region in regions:
        cw = aws.client("cloudwatch", region=region)
        tags = resource_tags(region, stats)
        for family in catalog.families:
            wanted = {m.name: m for m in family.metrics}
            for page in cw.get_paginator("list_metrics").paginate(Namespace=family.namespace):
                stats.list_metrics_calls += 1
                for metric in page.get("Metrics", []):
                    spec = wanted.get(metric["MetricName"])
                    if spec is None:
                        continue
                    dims = {d["Name"]: d["Value"] for d in metric.get("Dimensions", [])}
                    if family.resource_dimension in dims:
                        resource, template = dims[family.resource_dimension], family.arn
                    elif family.fallback_dimension and family.fallback_dimension in dims:
                        resource, template = dims[family.fallback_dimension], family.fallback_arn or family.arn
                    else:
                        continue  # an aggregate without a resource (e.g. per-AZ): not ours to track
                    try:
                        arn = template.format(region=region, account=account_id, **dims)
                    except KeyError:
                        arn = ""
                    rtags = tags.get(arn, {})
                    ref = SeriesRef(family.namespace, metric["MetricName"], tuple(sorted(dims.items())), spec.stat,
                                    region, resource, tuple(sorted((k, rtags[k]) for k in TAG_KEYS if k in rtags)))
                    found[ref.series_id] = ref
    return sorted(found.values(), key=lambda r: r.series_id)


def metric_data_pages(cw: Any, queries: list[dict[str, Any]], start: datetime, end: datetime) -> Iterator[dict]:
    """Every GetMetricData response for ``queries`` over [start, end), following NextToken (botocore's
    paginator: one page is one call, so callers count calls by counting pages)."""
    yield from cw.get_paginator("get_metric_data").paginate(
        MetricDataQueries=queries, StartTime=start, EndTime=end, ScanBy="TimestampAscending")


def fetch_metric_data(
    series: list[SeriesRef],
    start: datetime,
    end: datetime,
    *,
    period: int = 300,
    batch_size: int = 500,
    stats: CallStats | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, tuple[list[datetime], list[float]]]:
    """series_id -> (timestamps, values) over [start, end), ascending.

    Batches hold up to ``batch_size`` (max 500) series, fewer when the window is long enough that
    500 series would overflow one response's 100,800 datapoints; so each batch is normally one
    call and the total meets :func:`minimum_calls`. ``NextToken`` is still followed (gaps in the
    period grid or API-side limits can split a response). Regions are queried separately.
    """
    if not 1 <= batch_size <= MAX_QUERIES_PER_CALL:
        raise ValueError("GetMetricData accepts 1 to 500 queries per call")
    batch_size = queries_per_call((end - start).total_seconds(), period, batch_size)
    stats = stats if stats is not None else CallStats()
    out: dict[str, tuple[list[datetime], list[float]]] = {}
    by_region: dict[str, list[SeriesRef]] = {}
    for ref in series:
        by_region.setdefault(ref.region, []).append(ref)
    done = 0
    for region, refs in by_region.items():
        cw = aws.client("cloudwatch", region=region)
        for offset in range(0, len(refs), batch_size):
            chunk = refs[offset:offset + batch_size]
            queries: list[dict[str, Any]] = [{
                "Id": f"q{i}",
                "MetricStat": {
                    "Metric": {"Namespace": r.namespace, "MetricName": r.metric,
                               "Dimensions": [{"Name": k, "Value": v} for k, v in r.dimensions]},
                    "Period": period, "Stat": r.stat},
                "ReturnData": True,
            } for i, r in enumerate(chunk)]
            acc: dict[str, tuple[list[datetime], list[float]]] = {q["Id"]: ([], []) for q in queries}
            for resp in metric_data_pages(cw, queries, start, end):
                stats.get_metric_data_calls += 1
                for result in resp.get("MetricDataResults", []):
                    ts, vals = acc[result["Id"]]
                    ts.extend(result.get("Timestamps", []))
                    vals.extend(result.get("Values", []))
            for i, ref in enumerate(chunk):
                ts, vals = acc[f"q{i}"]
                pairs = sorted(zip(ts, vals, strict=True), key=lambda p: p[0])
                out[ref.series_id] = ([p[0] for p in pairs], [float(p[1]) for p in pairs])
                stats.datapoints += len(pairs)
            done += len(chunk)
            if progress:
                progress(done, len(series))
    return out
