"""The embedded AWS emulator: moto server on loopback, plus six documented sandbox extensions.

moto 5.2.5 is the emulator. Four things it does not do (well enough) for a realistic simulated
account, so the sandbox server adds them *inside the emulator* (platform code is unchanged and
calls the same AWS APIs it calls on real AWS):

1. **Indexed CloudWatch metrics.** moto keeps every datapoint in one list and rescans it for each
   query and period: GetMetricData over 14 days x 100+ series takes hours. We replace the storage
   of ``PutMetricData`` / ``GetMetricData`` / ``ListMetrics`` / ``GetMetricStatistics`` with a
   per-series index. Semantics follow the real API: exact dimension match, epoch-aligned periods,
   statistics Average/Sum/Minimum/Maximum/SampleCount/pNN, ``MaxDatapoints`` (default 100,800)
   with ``NextToken`` paging, ``ScanBy``. ``tests/test_emulator.py`` pins this against moto's own
   results on small data.
2. **Cost Explorer data.** moto answers ``GetCostAndUsage`` from a queue of canned responses.
   The sandbox seeds daily cost line items (``POST /aiops-sandbox/cost``) and the extension answers
   ``GetCostAndUsage`` from them: ``TimePeriod``, ``Granularity`` DAILY/MONTHLY, up to two
   ``GroupBy`` (DIMENSION SERVICE/LINKED_ACCOUNT/REGION/USAGE_TYPE or TAG), ``Filter`` with
   Dimensions/Tags/And/Or/Not, metrics UnblendedCost/BlendedCost/AmortizedCost/UsageQuantity.
3. **Back-dating.** moto stamps every resource "now". A realistic account has 200-day-old
   snapshots and 400-day-old access keys, so ``POST /aiops-sandbox/backdate`` sets creation /
   last-used times of EBS snapshots and volumes, EC2 instances and IAM access keys.
4. **SSM Automation.** moto has SSM documents but no Automation executions. The sandbox executor
   (:mod:`aiops_sandbox.automation`) answers Start/Get/Describe/Stop automation executions by
   running the published documents' steps against the emulator itself, so runbooks are rehearsed
   end to end with the same operator code real AWS gets; it also reports running instances as
   SSM-managed (``DescribeInstanceInformation``).

5. **X-Ray reads.** moto stores trace segments but answers ``GetServiceGraph`` with an empty graph and
   ``GetTraceSummaries`` with placeholders; :mod:`aiops_sandbox.xray` computes both from the stored
   segments in the real API's shape. ``POST /aiops-sandbox/xray`` bulk-loads history segments
   (the documents ``PutTraceSegments`` takes) into that index (not into moto's storage).

6. **Log history.** ``PutLogEvents`` accepts events of the last 14 days only (as on AWS), so a simulated
   account anchored further back cannot receive its application-log history through it.
   ``POST /aiops-sandbox/logs`` stores such events in an existing stream of moto's own log storage
   (:func:`load_log_history`); every read stays moto's ``FilterLogEvents`` / ``GetLogEvents``. The seed
   sends recent events through ``PutLogEvents`` as before and only older ones here.

Small fixes where moto differs from the real API are installed alongside (SSM ``SendCommand``
targets; the ``account`` field of EventBridge events delivered to targets).

Everything else is stock moto. The server binds 127.0.0.1 only.

Two small aids for the least-privilege proof (issue 16, :mod:`aiops.account`):

* **API call recording.** Every request that reaches moto's authorisation hook (or the SSM
  Automation extension) with an Amazon-provider user agent (``AmPP/``: the platform's own calls
  through Airflow connections, not the sandbox tooling's plain boto3) is recorded as an IAM action
  (``ec2:DescribeInstances``) in :data:`CALLS` and, when ``AIOPS_SANDBOX_CALL_LOG`` names a file,
  appended to it once per process. ``tests/conftest.py`` checks them against the generated policies.
* **IAM action prefixes.** moto names the action it authorises after the SigV4 signing name, which
  differs from the IAM prefix for two services the platform uses (``monitoring`` -> ``cloudwatch``,
  ``tagging`` -> ``tag``); with ``INITIAL_NO_AUTH_ACTION_COUNT`` set, a correct policy would be
  refused. The hook renames them as AWS does.
"""

from __future__ import annotations

import base64
import json
import re
import threading
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

SANDBOX_PREFIX = "/aiops-sandbox/"
DEFAULT_MAX_DATAPOINTS = 100_800

# --------------------------------------------------------------------------------------
# 1. Indexed CloudWatch metrics
# --------------------------------------------------------------------------------------

SeriesKey = tuple[str, str, tuple[tuple[str, str], ...]]
ORIGINALS: dict[str, Any] = {}  # moto's own implementations, kept for the equivalence tests


def _epoch(ts: Any) -> float:
    if ts is None:
        return datetime.now(UTC).timestamp()
    if isinstance(ts, datetime):
        if ts.tzinfo is None:
            ts = ts.replace(tzinfo=UTC)
        return ts.timestamp()
    if isinstance(ts, int | float):
        return float(ts)
    text = str(ts)
    try:
        return float(text)
    except ValueError:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        return parsed.timestamp()


@dataclass
class _Series:
    """Datapoints of one (namespace, metric, dimensions): parallel lists, sorted lazily."""

    ts: list[float] = field(default_factory=list)
    total: list[float] = field(default_factory=list)  # sum of the datum
    count: list[float] = field(default_factory=list)  # sample count of the datum
    low: list[float] = field(default_factory=list)
    high: list[float] = field(default_factory=list)
    unit: str | None = None
    _sorted: Any = None

    def add(self, ts: float, total: float, count: float, low: float, high: float) -> None:
        self.ts.append(ts)
        self.total.append(total)
        self.count.append(count)
        self.low.append(low)
        self.high.append(high)
        self._sorted = None

    def arrays(self) -> tuple[Any, Any, Any, Any, Any]:
        import numpy as np

        if self._sorted is None:
            ts = np.asarray(self.ts, dtype=float)
            order = np.argsort(ts, kind="stable")
            self._sorted = (
                ts[order],
                np.asarray(self.total, dtype=float)[order],
                np.asarray(self.count, dtype=float)[order],
                np.asarray(self.low, dtype=float)[order],
                np.asarray(self.high, dtype=float)[order],
            )
        return self._sorted


def _series_key(namespace: str, name: str, dimensions: Iterable[Any]) -> SeriesKey:
    dims = []
    for d in dimensions or []:
        if isinstance(d, dict):
            dims.append((str(d["Name"]), str(d.get("Value"))))
        else:  # moto Dimension object
            dims.append((str(d.name), str(d.value)))
    return (namespace, name, tuple(sorted(dims)))


def _aggregate(stat: str, total: Any, count: Any, low: Any, high: Any) -> float:
    import numpy as np

    if stat == "Sum":
        return float(total.sum())
    if stat == "Average":
        n = count.sum()
        return float(total.sum() / n) if n else 0.0
    if stat == "Minimum":
        return float(low.min())
    if stat == "Maximum":
        return float(high.max())
    if stat == "SampleCount":
        return float(count.sum())
    if stat.startswith("p"):
        q = float(stat[1:])
        means = np.divide(total, np.where(count == 0, 1, count))
        return float(np.percentile(means, q))
    raise ValueError(f"Unsupported statistic {stat!r}")


class MetricIndex:
    """Per-backend store of datapoints keyed by series; thread-safe for the threaded server."""

    def __init__(self) -> None:
        self.series: dict[SeriesKey, _Series] = defaultdict(_Series)
        self.lock = threading.Lock()

    def put(self, namespace: str, metric_data: list[dict[str, Any]]) -> None:
        with self.lock:
            for member in metric_data:
                key = _series_key(namespace, member["MetricName"], member.get("Dimensions", []))
                series = self.series[key]
                series.unit = member.get("Unit") or series.unit
                ts = _epoch(member.get("Timestamp"))
                if member.get("Values"):
                    values = [float(v) for v in member["Values"]]
                    counts = [float(c) for c in (member.get("Counts") or [1] * len(values))]
                    for v, c in zip(values, counts, strict=False):
                        series.add(ts, v * c, c, v, v)
                elif member.get("StatisticValues"):
                    s = member["StatisticValues"]
                    series.add(
                        ts,
                        float(s["Sum"]),
                        float(s["SampleCount"]),
                        float(s["Minimum"]),
                        float(s["Maximum"]),
                    )
                else:
                    v = float(member.get("Value", 0))
                    series.add(ts, v, 1.0, v, v)

    def put_series(self, key: SeriesKey, start: float, step: float, values: list[float],
                   unit: str | None = None) -> int:
        """Bulk-load a regular series (the sandbox's history); NaN values are gaps."""
        with self.lock:
            series = self.series[key]
            series.unit = unit or series.unit
            n = 0
            for i, v in enumerate(values):
                if v is None or v != v:
                    continue
                series.add(start + i * step, float(v), 1.0, float(v), float(v))
                n += 1
            return n

    def query(
        self, key: SeriesKey, start: float, end: float, period: int, stat: str
    ) -> tuple[list[float], list[float]]:
        """Epoch-aligned period buckets in [start, end): (bucket starts, values), ascending."""
        import numpy as np

        with self.lock:
            series = self.series.get(key)
            if series is None or not series.ts:
                return [], []
            ts, total, count, low, high = series.arrays()
        lo, hi = np.searchsorted(ts, start, "left"), np.searchsorted(ts, end, "left")
        if lo >= hi:
            return [], []
        ts, total, count, low, high = ts[lo:hi], total[lo:hi], count[lo:hi], low[lo:hi], high[lo:hi]
        buckets = np.floor(ts / period) * period
        edges = np.flatnonzero(np.diff(buckets)) + 1
        starts = np.concatenate(([0], edges))
        stops = np.concatenate((edges, [len(ts)]))
        out_ts, out_val = [], []
        for a, b in zip(starts, stops, strict=True):
            out_ts.append(float(buckets[a]))
            out_val.append(_aggregate(stat, total[a:b], count[a:b], low[a:b], high[a:b]))
        return out_ts, out_val

    def series_keys(self) -> list[SeriesKey]:
        with self.lock:
            return list(self.series)


def _index_of(backend: Any) -> MetricIndex:
    index = backend.__dict__.get("_aiops_metric_index")
    if index is None:
        index = backend.__dict__.setdefault("_aiops_metric_index", MetricIndex())
    return index


def _encode_token(state: dict[str, int]) -> str:
    return base64.urlsafe_b64encode(json.dumps(state).encode()).decode()


def _decode_token(token: str) -> dict[str, int]:
    from moto.cloudwatch.exceptions import InvalidParameterValue

    try:
        return json.loads(base64.urlsafe_b64decode(token.encode()))
    except Exception as exc:
        raise InvalidParameterValue("Request parameter NextToken is invalid") from exc


def get_metric_data_page(
    backend: Any,
    queries: list[dict[str, Any]],
    start_time: Any,
    end_time: Any,
    scan_by: str = "TimestampDescending",
    max_datapoints: int | None = None,
    next_token: str | None = None,
) -> tuple[list[dict[str, Any]], str | None]:
    """GetMetricData over the index with real paging: at most ``max_datapoints`` per response."""
    from moto.cloudwatch.exceptions import ValidationError
    from moto.cloudwatch.metric_data_expression_parser import parse_expression

    start, end = _epoch(start_time), _epoch(end_time)
    if start >= end:
        raise ValidationError("The parameter EndTime must be greater than StartTime.")
    budget = int(max_datapoints or DEFAULT_MAX_DATAPOINTS)
    state = _decode_token(next_token) if next_token else {"q": 0, "p": 0}
    index = _index_of(backend)

    stat_queries = [q for q in queries if "MetricStat" in q]
    full_results: list[dict[str, Any]] = []
    page: list[dict[str, Any]] = []
    token: str | None = None
    for qi, query in enumerate(stat_queries):
        ms = query["MetricStat"]
        key = _series_key(
            ms["Metric"]["Namespace"], ms["Metric"]["MetricName"], ms["Metric"].get("Dimensions", [])
        )
        ts, vals = index.query(key, start, end, int(ms["Period"]), ms["Stat"])
        if scan_by == "TimestampDescending":
            ts, vals = ts[::-1], vals[::-1]
        stamps = [datetime.fromtimestamp(t, UTC) for t in ts]
        label = query.get("Label") or f"{ms['Metric']['MetricName']} {ms['Stat']}"
        result = {"id": query["Id"], "label": label, "values": vals, "timestamps": stamps}
        full_results.append({**result, "status_code": "Complete"})
        if qi < state["q"] or token is not None or not query.get("ReturnData", True):
            continue
        offset = state["p"] if qi == state["q"] else 0
        remaining = len(vals) - offset
        if remaining <= budget:
            page.append({**result, "values": vals[offset:], "timestamps": stamps[offset:],
                         "status_code": "Complete"})
            budget -= remaining
        else:
            page.append({**result, "values": vals[offset:offset + budget],
                         "timestamps": stamps[offset:offset + budget], "status_code": "PartialData"})
            token = _encode_token({"q": qi, "p": offset + budget})
    if token is None:
        # Metric math runs on complete results, returned with the last page.
        for query in queries:
            if "Expression" in query and not query["Expression"].startswith("SELECT"):
                expr_vals, expr_stamps = parse_expression(query["Expression"], full_results)
                page.append({"id": query["Id"], "label": query.get("Label") or query["Id"],
                             "values": expr_vals, "timestamps": expr_stamps, "status_code": "Complete"})
    return page, token


def _install_cloudwatch_index() -> None:
    from moto.cloudwatch.exceptions import InvalidParameterValue
    from moto.cloudwatch.models import CloudWatchBackend, MetricDatum
    from moto.cloudwatch.responses import CloudWatchResponse
    from moto.core.responses import ActionResult, EmptyResult

    if getattr(CloudWatchBackend, "_aiops_indexed", False):
        return

    def put_metric_data(self: Any, namespace: str, metric_data: list[dict[str, Any]]) -> None:
        for i, metric in enumerate(metric_data):
            self._validate_parameters_put_metric_data(metric, i + 1)
        _index_of(self).put(namespace, metric_data)

    def list_metrics(self: Any, next_token: str | None, namespace: str, metric_name: str,
                     dimensions: list[dict[str, str]]) -> tuple[str | None, list[Any]]:
        wanted = {(d["Name"], d.get("Value")) for d in dimensions or []}
        keys = sorted(
            k for k in _index_of(self).series_keys()
            if (not namespace or k[0] == namespace)
            and (not metric_name or k[1] == metric_name)
            and all((n, v) in k[2] or (v is None and n in dict(k[2])) for n, v in wanted)
        )
        offset = 0
        if next_token:
            try:
                offset = int(next_token)
            except ValueError as exc:
                raise InvalidParameterValue("Request parameter NextToken is invalid") from exc
        page = keys[offset:offset + 500]
        token = str(offset + 500) if offset + 500 < len(keys) else None
        metrics = [
            MetricDatum(ns, name, 0.0, [{"Name": n, "Value": v} for n, v in dims], None)
            for ns, name, dims in page
        ]
        return token, metrics

    def get_metric_statistics(self: Any, namespace: str, metric_name: str, start_time: Any,
                              end_time: Any, period: int, stats: list[str],
                              dimensions: list[dict[str, str]] | None = None,
                              unit: str | None = None) -> list[Any]:
        key = _series_key(namespace, metric_name, dimensions or [])
        index = _index_of(self)
        by_stat = {s: dict(zip(*index.query(key, _epoch(start_time), _epoch(end_time), period, s),
                               strict=True)) for s in stats}
        out = []
        for bucket in sorted(next(iter(by_stat.values()), {})):
            stamp = datetime.fromtimestamp(bucket, UTC)
            out.append(_FixedStatistics(stamp, stats, {s: by_stat[s][bucket] for s in stats}, unit))
        return out

    def response_get_metric_data(self: Any) -> Any:
        params = self._get_params()
        queries = params.get("MetricDataQueries", [])
        for query in queries:
            if "MetricStat" not in query and "Expression" not in query:
                from moto.cloudwatch.exceptions import ValidationError

                raise ValidationError("The parameter MetricDataQueries.member.1.MetricStat is required.\n")
        results, token = get_metric_data_page(
            self.cloudwatch_backend, queries, params["StartTime"], params["EndTime"],
            params.get("ScanBy") or "TimestampDescending", params.get("MaxDatapoints"),
            params.get("NextToken"),
        )
        body: dict[str, Any] = {"MetricDataResults": results}
        if token:
            body["NextToken"] = token
        return ActionResult(body)

    def response_put_metric_data(self: Any) -> Any:
        self.cloudwatch_backend.put_metric_data(self._get_param("Namespace"),
                                                self._get_param("MetricData", []))
        return EmptyResult()

    ORIGINALS.update({"put_metric_data": CloudWatchBackend.put_metric_data,
                      "get_metric_data": CloudWatchBackend.get_metric_data,
                      "list_metrics": CloudWatchBackend.list_metrics})
    # Deliberate monkeypatching of moto's classes, via setattr (mypy rejects assigning to methods).
    patches: list[tuple[type, str, object]] = [
        (CloudWatchBackend, "put_metric_data", put_metric_data),
        (CloudWatchBackend, "list_metrics", list_metrics),
        (CloudWatchBackend, "get_metric_statistics", get_metric_statistics),
        (CloudWatchResponse, "get_metric_data", response_get_metric_data),
        (CloudWatchResponse, "put_metric_data", response_put_metric_data),
        (CloudWatchBackend, "_aiops_indexed", True),
    ]
    for cls, attr, value in patches:
        setattr(cls, attr, value)


class _FixedStatistics:
    """Pre-computed statistics in the shape moto's GetMetricStatistics serialiser reads."""

    def __init__(self, timestamp: datetime, stats: list[str], values: dict[str, float],
                 unit: str | None) -> None:
        self.timestamp = timestamp
        self.stats = stats
        self.unit = unit
        self._values = values

    def get_statistics_for_type(self, stat: str) -> float | None:
        return self._values.get(stat)

    def __getattr__(self, name: str) -> Any:
        mapping = {"sum": "Sum", "average": "Average", "minimum": "Minimum", "maximum": "Maximum",
                   "sample_count": "SampleCount"}
        if name in mapping:
            return self._values.get(mapping[name])
        raise AttributeError(name)


# --------------------------------------------------------------------------------------
# 2. Cost Explorer from seeded line items
# --------------------------------------------------------------------------------------

COST_METRICS = ("UnblendedCost", "BlendedCost", "AmortizedCost", "NetUnblendedCost", "UsageQuantity")
_cost_items: dict[str, list[dict[str, Any]]] = {}  # account id -> daily line items
_cost_lock = threading.Lock()


def set_cost_items(account_id: str, items: list[dict[str, Any]]) -> int:
    """Replace an account's line items: dicts with date, service, region, usage_type, cost,
    usage, tags (dict). Returns how many are stored."""
    required = {"date", "service", "cost"}
    for i, item in enumerate(items):
        missing = required - item.keys()
        if missing:
            raise ValueError(f"cost item {i}: missing field(s) {sorted(missing)}")
    with _cost_lock:
        _cost_items[account_id] = list(items)
    return len(items)


def get_cost_items(account_id: str) -> list[dict[str, Any]] | None:
    with _cost_lock:
        items = _cost_items.get(account_id)
        return None if items is None else list(items)


def _dimension_value(item: dict[str, Any], account_id: str, key: str) -> str:
    return {
        "SERVICE": item.get("service", ""),
        "LINKED_ACCOUNT": account_id,
        "REGION": item.get("region", "us-east-1"),
        "USAGE_TYPE": item.get("usage_type", ""),
        "RECORD_TYPE": "Usage",
    }.get(key, "")


def _matches(item: dict[str, Any], account_id: str, expr: dict[str, Any] | None) -> bool:
    if not expr:
        return True
    if "And" in expr:
        return all(_matches(item, account_id, e) for e in expr["And"])
    if "Or" in expr:
        return any(_matches(item, account_id, e) for e in expr["Or"])
    if "Not" in expr:
        return not _matches(item, account_id, expr["Not"])
    if "Dimensions" in expr:
        d = expr["Dimensions"]
        return _dimension_value(item, account_id, d["Key"]) in d.get("Values", [])
    if "Tags" in expr:
        t = expr["Tags"]
        return (item.get("tags") or {}).get(t["Key"], "") in t.get("Values", [])
    return True


def _group_key(item: dict[str, Any], account_id: str, group: dict[str, str]) -> str:
    if group["Type"] == "TAG":
        return f"{group['Key']}${(item.get('tags') or {}).get(group['Key'], '')}"
    return _dimension_value(item, account_id, group["Key"])


def cost_and_usage(account_id: str, request: dict[str, Any]) -> dict[str, Any] | None:
    """GetCostAndUsage answered from seeded items; None when the account has none seeded."""
    from datetime import date, timedelta

    with _cost_lock:
        items = _cost_items.get(account_id)
    if items is None:
        return None
    period = request["TimePeriod"]
    start, end = date.fromisoformat(period["Start"]), date.fromisoformat(period["End"])
    granularity = request.get("Granularity", "DAILY")
    metrics = request.get("Metrics") or ["UnblendedCost"]
    groups = request.get("GroupBy") or []

    def bucket_of(day: date) -> date:
        return day.replace(day=1) if granularity == "MONTHLY" else day

    buckets: dict[date, dict[tuple[str, ...], dict[str, float]]] = {}
    cursor = start
    while cursor < end:
        buckets.setdefault(bucket_of(cursor), {})
        cursor += timedelta(days=1)
    for item in items:
        day = date.fromisoformat(item["date"])
        if not (start <= day < end) or not _matches(item, account_id, request.get("Filter")):
            continue
        keys = tuple(_group_key(item, account_id, g) for g in groups)
        acc = buckets[bucket_of(day)].setdefault(keys, defaultdict(float))
        for m in metrics:
            acc[m] += float(item.get("usage", 0.0) if m == "UsageQuantity" else item["cost"])

    def amounts(values: dict[str, float]) -> dict[str, dict[str, str]]:
        return {m: {"Amount": f"{values.get(m, 0.0):.10f}",
                    "Unit": "N/A" if m == "UsageQuantity" else "USD"} for m in metrics}

    results = []
    for bucket in sorted(buckets):
        if granularity == "MONTHLY":
            nxt = (bucket.replace(day=28) + timedelta(days=4)).replace(day=1)
            b_start, b_end = max(bucket, start), min(nxt, end)
        else:
            b_start, b_end = bucket, bucket + timedelta(days=1)
        entry: dict[str, Any] = {
            "TimePeriod": {"Start": b_start.isoformat(), "End": b_end.isoformat()},
            "Estimated": b_end > date.today(),
        }
        if groups:
            entry["Total"] = {}
            entry["Groups"] = [
                {"Keys": list(k), "Metrics": amounts(v)} for k, v in sorted(buckets[bucket].items())
            ]
        else:
            total: dict[str, float] = defaultdict(float)
            for v in buckets[bucket].values():
                for m, x in v.items():
                    total[m] += x
            entry["Total"] = amounts(total)
            entry["Groups"] = []
        results.append(entry)
    answer: dict[str, Any] = {"ResultsByTime": results, "DimensionValueAttributes": []}
    if groups:
        answer["GroupDefinitions"] = [{"Type": g["Type"], "Key": g["Key"]} for g in groups]
    return answer


def _install_cost_explorer() -> None:
    from moto.ce.models import CostExplorerBackend

    if getattr(CostExplorerBackend, "_aiops_costs", False):
        return
    original = CostExplorerBackend.get_cost_and_usage

    def get_cost_and_usage(self: Any, body: str) -> dict[str, Any]:
        answer = cost_and_usage(self.account_id, json.loads(body))
        return answer if answer is not None else original(self, body)

    # Deliberate monkeypatching of moto's class, via setattr (mypy rejects assigning to methods).
    patches: dict[str, object] = {"get_cost_and_usage": get_cost_and_usage, "_aiops_costs": True}
    for attr, value in patches.items():
        setattr(CostExplorerBackend, attr, value)


# --------------------------------------------------------------------------------------
# 3. Back-dating resources
# --------------------------------------------------------------------------------------


def backdate(account_id: str, region: str, kind: str, resource_id: str, when: str,
             user: str | None = None) -> None:
    """Set the creation (or last-used) time moto stamped as "now" to ``when`` (ISO 8601)."""
    from moto.ec2.models import ec2_backends
    from moto.iam.models import iam_backends

    moment = datetime.fromisoformat(when.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    naive = moment.astimezone(UTC).replace(tzinfo=None)
    if kind == "ebs_snapshot":
        ec2_backends[account_id][region].snapshots[resource_id].start_time = naive
    elif kind == "ebs_volume":
        ec2_backends[account_id][region].volumes[resource_id].create_time = naive
    elif kind == "ec2_instance":
        instance = ec2_backends[account_id][region].get_instance(resource_id)
        # moto types launch_time as datetime; its response serializer also takes this ISO string
        instance.launch_time = naive.strftime("%Y-%m-%dT%H:%M:%S.000Z")  # type: ignore[assignment]
    elif kind in {"iam_access_key", "iam_access_key_last_used"}:
        backend = iam_backends[account_id]["global"]
        for iam_user in backend.users.values():
            for key in iam_user.access_keys:
                if key.access_key_id == resource_id:
                    if kind == "iam_access_key":
                        key.create_date = naive
                    else:
                        from moto.iam.models import AccessKeyLastUsed

                        key.last_used = AccessKeyLastUsed(timestamp=naive, service="ec2", region=region)
                    return
        raise KeyError(f"no access key {resource_id}")
    elif kind == "iam_password_last_used":
        iam_user = iam_backends[account_id]["global"].users[resource_id]
        # moto initialises this to None without an annotation, so mypy infers type None
        iam_user.password_last_used = naive  # type: ignore[assignment]
    else:
        raise ValueError(f"unknown backdate kind {kind!r}")


# --------------------------------------------------------------------------------------
# The server
# --------------------------------------------------------------------------------------


def load_log_history(backend: Any, group: str, stream: str, events: list[dict[str, Any]]) -> int:
    """Store history log events (``{"timestamp": epoch_ms, "message": ...}``, oldest first) in an
    existing log stream, as CloudWatch Logs would hold them had they been sent when they happened.

    ``PutLogEvents`` accepts events from the last 14 days only (moto enforces it like AWS), so a
    simulated account whose anchor is further back than that (the test suite's fixed anchor, a replay)
    gets its application-log history here; reads (``FilterLogEvents``, ``GetLogEvents``) are moto's own.
    Same checks as the API: the group and stream exist, events are in timestamp order."""
    if group not in backend.groups:
        raise ValueError(f"log group {group!r} does not exist")
    if stream not in backend.groups[group].streams:
        raise ValueError(f"log stream {stream!r} does not exist in {group!r}")
    stamps = [int(e["timestamp"]) for e in events]
    if stamps != sorted(stamps):
        raise ValueError("log events must be in chronological order (as PutLogEvents requires)")
    backend.groups[group].put_log_events(stream, [{"timestamp": t, "message": str(e["message"])}
                                                  for t, e in zip(stamps, events, strict=True)])
    return len(events)


def _json_response(start_response: Any, status: str, body: dict[str, Any]) -> list[bytes]:
    data = json.dumps(body).encode()
    start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(data)))])
    return [data]


class SandboxApp:
    """WSGI app: ``/aiops-sandbox/*`` handled here, everything else by moto."""

    def __init__(self) -> None:
        from moto.server import DomainDispatcherApplication, create_backend_app

        install_extensions()
        self.moto = DomainDispatcherApplication(create_backend_app)

    def _moto_or_automation(self, environ: dict[str, Any], start_response: Any) -> Any:
        from aiops_sandbox import automation  # SSM Automation, which moto lacks (see its docstring)

        if automation.is_automation_request(environ):
            target = str(environ.get("HTTP_X_AMZ_TARGET", ""))
            record_call({"User-Agent": environ.get("HTTP_USER_AGENT", ""),
                         "Authorization": environ.get("HTTP_AUTHORIZATION", "")}, target.rsplit(".", 1)[-1])
            denied = authorize_automation(environ, target.rsplit(".", 1)[-1])
            if denied is not None:
                return _json_response(start_response, "403 Forbidden", denied)
            return automation.handle(environ, start_response)
        return self.moto(environ, start_response)

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        path = environ.get("PATH_INFO", "")
        if not path.startswith(SANDBOX_PREFIX):
            try:
                return self._moto_or_automation(environ, start_response)
            except NotImplementedError as exc:  # an API moto lacks: a clean AWS-style error, no traceback
                return _json_response(start_response, "400 Bad Request", {
                    "__type": "UnsupportedOperation", "Message": f"the emulator does not implement this: {exc}",
                    "message": f"the emulator does not implement this: {exc}"})
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
            payload = json.loads(environ["wsgi.input"].read(length) or b"{}")
            action = path[len(SANDBOX_PREFIX):].strip("/")
            account = payload.get("account_id", "123456789012")
            if action == "ping":
                return _json_response(start_response, "200 OK", {"sandbox": True})
            if action == "calls":
                with _calls_lock:
                    recorded = sorted(CALLS)
                    if payload.get("reset"):
                        CALLS.clear()
                return _json_response(start_response, "200 OK", {"calls": recorded})
            if action == "cost":
                n = set_cost_items(account, payload["items"])
                return _json_response(start_response, "200 OK", {"stored": n})
            if action == "metrics":
                from moto.cloudwatch.models import cloudwatch_backends

                backend = cloudwatch_backends[account][payload.get("region", "us-east-1")]
                index, n = _index_of(backend), 0
                for item in payload["series"]:
                    key = _series_key(item["namespace"], item["metric"], item.get("dimensions", []))
                    n += index.put_series(key, float(item["start"]), float(item["step"]), item["values"],
                                          item.get("unit"))
                return _json_response(start_response, "200 OK", {"datapoints": n})
            if action == "xray":
                from moto.xray.models import xray_backends

                from aiops_sandbox import xray

                xbackend = xray_backends[account][payload.get("region", "us-east-1")]
                n = xray.load_history(xbackend, payload["documents"])
                return _json_response(start_response, "200 OK", {"segments": n})
            if action == "logs":
                from moto.logs.models import logs_backends

                lbackend = logs_backends[account][payload.get("region", "us-east-1")]
                n = load_log_history(lbackend, payload["group"], payload["stream"], payload["events"])
                return _json_response(start_response, "200 OK", {"events": n})
            if action == "backdate":
                for entry in payload["items"]:
                    backdate(account, entry.get("region", "us-east-1"), entry["kind"], entry["id"],
                             entry["time"])
                return _json_response(start_response, "200 OK", {"backdated": len(payload["items"])})
            return _json_response(start_response, "404 Not Found", {"error": f"unknown action {action}"})
        except (KeyError, ValueError, TypeError) as exc:
            return _json_response(start_response, "400 Bad Request", {"error": f"{type(exc).__name__}: {exc}"})


def _install_run_command_targets_fix() -> None:
    """moto 5.2.5 ``SendCommand`` without ``Targets`` filters EC2 with no filter, so every instance
    in the account joins the command (its ``InstanceIds`` and invocations). Real SSM runs on the
    given ``InstanceIds`` only; patching relies on that (protected instances are left out)."""
    from moto.ssm.models import Command

    if getattr(Command, "_aiops_targets_fix", False):
        return
    original = Command._get_instance_ids_from_targets

    def instance_ids_from_targets(self: Any) -> list[str]:
        return original(self) if self.targets else []

    Command._get_instance_ids_from_targets = instance_ids_from_targets  # type: ignore[method-assign]
    Command._aiops_targets_fix = True  # type: ignore[attr-defined]


# --------------------------------------------------------------------------------------
# API call recording and IAM action prefixes (issue 16)
# --------------------------------------------------------------------------------------

CALLS: set[str] = set()  # IAM actions the platform (AmPP user agent) called in this process
_calls_lock = threading.Lock()
SIGNING_NAME_TO_IAM_PREFIX = {"monitoring": "cloudwatch", "tagging": "tag"}
# REST-JSON services whose moto action name is the URL path, not the IAM action
REST_PATH_ACTIONS = {"xray:ServiceGraph": "xray:GetServiceGraph", "xray:TraceSummaries": "xray:GetTraceSummaries",
                     "xray:Traces": "xray:BatchGetTraces", "xray:TraceSegments": "xray:PutTraceSegments"}
_SCOPE = re.compile(r"Credential=[^/,\s]+/[^/]+/[^/]+/([^/]+)/")


def iam_prefix(signing_name: str) -> str:
    return SIGNING_NAME_TO_IAM_PREFIX.get(signing_name, signing_name)


def record_call(headers: Any, action: str | None) -> None:
    """Remember ``service:Action`` when the request came from the platform (Amazon provider hook)."""
    import os

    if not action:
        return
    agent = str(headers.get("User-Agent") or headers.get("user-agent") or "")
    if "AmPP/" not in agent:
        return
    match = _SCOPE.search(str(headers.get("Authorization") or headers.get("authorization") or ""))
    if not match:
        return
    name = f"{iam_prefix(match.group(1))}:{action}"
    name = REST_PATH_ACTIONS.get(name, name)
    with _calls_lock:
        if name in CALLS:
            return
        CALLS.add(name)
        path = os.environ.get("AIOPS_SANDBOX_CALL_LOG")
        if path:
            with open(path, "a", encoding="utf-8") as fh:
                fh.write(name + "\n")


def _install_call_recorder() -> None:
    from moto.core.authorization import ActionAuthenticatorMixin
    from moto.iam import access_control

    if getattr(ActionAuthenticatorMixin, "_aiops_recorder", False):
        return
    original = ActionAuthenticatorMixin._authenticate_and_authorize_action

    def authorize(self: Any, iam_request_cls: type, resource: str = "*") -> None:
        try:
            if iam_request_cls is access_control.S3IAMRequest:
                action = self.data.get("Action") if isinstance(self.data, dict) else None
            else:
                action = self._get_action()
            record_call(self.headers, action[0] if isinstance(action, list) else action)
        except Exception:  # recording must never break a request
            pass
        return original(self, iam_request_cls, resource)

    ActionAuthenticatorMixin._authenticate_and_authorize_action = authorize  # type: ignore[method-assign]
    ActionAuthenticatorMixin._aiops_recorder = True  # type: ignore[attr-defined]

    base_init = access_control.IAMRequestBase.__init__

    def init(self: Any, *args: Any, **kwargs: Any) -> None:
        base_init(self, *args, **kwargs)
        service, _, name = self._action.partition(":")
        self._action = f"{iam_prefix(service)}:{name}"

    access_control.IAMRequestBase.__init__ = init  # type: ignore[method-assign]


def authorize_automation(environ: dict[str, Any], action: str) -> dict[str, Any] | None:
    """With moto's IAM enforcement on (``INITIAL_NO_AUTH_ACTION_COUNT``), authorise an SSM Automation
    call (answered by the sandbox, not moto) the way moto authorises its own: signature, then the
    caller's policies for ``ssm:<action>``. Returns an AWS-style error body when refused."""
    import io

    from moto import settings
    from moto.core.authorization import ActionAuthenticatorMixin
    from moto.iam.access_control import IAMRequest
    from moto.iam.models import get_account_id_from
    from werkzeug.wrappers import Request

    if ActionAuthenticatorMixin.request_count < settings.INITIAL_NO_AUTH_ACTION_COUNT:
        ActionAuthenticatorMixin.request_count += 1
        return None
    length = int(environ.get("CONTENT_LENGTH") or 0)
    body = environ["wsgi.input"].read(length) if length else b""
    environ["wsgi.input"] = io.BytesIO(body)
    environ["CONTENT_LENGTH"] = str(len(body))
    request = Request(environ)
    headers = dict(request.headers)
    match = _SCOPE.search(str(headers.get("Authorization", "")))
    if not match:
        return {"__type": "MissingAuthenticationTokenException", "message": "Missing Authentication Token"}
    access_key = str(headers["Authorization"]).split("Credential=", 1)[1].split("/", 1)[0]
    path = request.full_path.rstrip("?")
    try:
        iam_request = IAMRequest(account_id=get_account_id_from(access_key), method=request.method, path=path,
                                 data={}, body=body, headers=headers, action=action)
        iam_request.check_signature()
        iam_request.check_action_permitted("*")
    except Exception as exc:  # moto's AccessDenied / SignatureDoesNotMatch / InvalidClientTokenId
        code = getattr(exc, "error_type", None) or type(exc).__name__
        return {"__type": str(code), "message": str(getattr(exc, "message", None) or exc)}
    return None


def _install_event_account_fix() -> None:
    """moto 5.2.5 delivers EventBridge events to targets through a default input template that drops
    the envelope's ``account`` field. Real EventBridge always delivers it (``version, id,
    detail-type, source, account, time, region, resources, detail``), and the platform checks it
    before acting unattended (docs/preapproval.md), so the template gets it back."""
    from moto.events.utils import EventTemplateParser

    template = EventTemplateParser.DEFAULT_EVENT_INPUT_TEMPLATE
    if '"account"' not in template:
        EventTemplateParser.DEFAULT_EVENT_INPUT_TEMPLATE = template.replace(
            '"source": "<source>",', '"source": "<source>", "account": "<account>",')


def install_extensions() -> None:
    """Patch moto's CloudWatch and Cost Explorer backends (idempotent; also for ``mock_aws``)."""
    _install_cloudwatch_index()
    _install_cost_explorer()
    _install_run_command_targets_fix()
    _install_event_account_fix()
    from aiops_sandbox import xray

    xray.install()
    _install_call_recorder()
    from aiops_sandbox import cfn  # CloudFormation resource types moto lacks (bootstrap stack)

    cfn.install()


class SandboxServer:
    """moto + extensions on a loopback port, in a background thread."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host, self.port = host, port
        self._server: Any = None
        self._thread: threading.Thread | None = None

    @property
    def endpoint(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> SandboxServer:
        from moto.moto_server.werkzeug_app import MotoRequestHandler
        from werkzeug.serving import make_server

        class QuietHandler(MotoRequestHandler):
            def log_request(self, *args: Any, **kwargs: Any) -> None:  # one line per API call is noise
                pass

        self._server = make_server(self.host, self.port, SandboxApp(), threaded=True,
                                   request_handler=QuietHandler)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, name="aiops-sandbox",
                                        daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def serve_forever(self) -> None:
        assert self._thread is not None
        while self._thread.is_alive():
            self._thread.join(timeout=0.5)


def is_sandbox(endpoint: str, timeout: float = 2.0) -> bool:
    """True when ``endpoint`` is our sandbox server (not a plain moto server or real AWS)."""
    import urllib.request

    try:
        req = urllib.request.Request(f"{endpoint.rstrip('/')}{SANDBOX_PREFIX}ping", data=b"{}",
                                     method="POST")
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return bool(json.loads(resp.read()).get("sandbox"))
    except Exception:
        return False


def post(endpoint: str, action: str, payload: dict[str, Any], timeout: float = 60.0) -> dict[str, Any]:
    import urllib.error
    import urllib.request

    req = urllib.request.Request(f"{endpoint.rstrip('/')}{SANDBOX_PREFIX}{action}",
                                 data=json.dumps(payload).encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        raise RuntimeError(f"sandbox {action} failed: {exc.read().decode(errors='replace')}") from exc

