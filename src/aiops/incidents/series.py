"""An incident signal's metric series and its seasonal band, for triage evidence and the recovery
check (:mod:`aiops.incidents.triage`, :mod:`aiops.incidents.runbook_rules` both read them here).

CloudWatch series come from ``GetMetricData``; derived series (from logs and traces) from the
derived store (:mod:`aiops.metrics.derived`).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from aiops.account.permissions import permissions
from aiops.core import aws
from aiops.core.settings import get_settings
from aiops.metrics import derived
from aiops.metrics.collect import metric_data_pages

PERMISSIONS = permissions(
    "incident evidence: metric series",
    reader=("cloudwatch:GetMetricData",),
)

BAND_HISTORY_DAYS = get_settings().incident_band_history_days
BAND_K = 3.0


def get_series(signal: dict[str, Any], start: datetime, end: datetime, period: int) -> list[tuple[datetime, float]]:
    """(timestamp, value) of the signal's series in [start, end) at ``period`` seconds, oldest first."""
    if derived.is_derived(signal.get("namespace")):  # computed from logs/traces: in the derived store, not CloudWatch
        return derived.points(signal["series_id"], start, end)

    query = {"Id": "m0", "ReturnData": True, "MetricStat": {
        "Metric": {"Namespace": signal["namespace"], "MetricName": signal["metric"],
                   "Dimensions": [{"Name": k, "Value": v} for k, v in sorted(signal["dimensions"].items())]},
        "Period": period, "Stat": signal["stat"]}}
    points: dict[datetime, float] = {}
    for page in metric_data_pages(aws.client("cloudwatch"), [query], start, end):
        for result in page.get("MetricDataResults", []):
            for ts, value in zip(result.get("Timestamps", []), result.get("Values", []), strict=False):
                points[ts.astimezone(UTC)] = float(value)
    return sorted(points.items())


def seasonal_band(history: list[tuple[datetime, float]], at: list[datetime], *, period: int = 300,
                  days: int = BAND_HISTORY_DAYS, k: float = BAND_K) -> list[tuple[float, float, float] | None]:
    """(forecast, lower, upper) per timestamp: median +- k * 1.4826 * MAD of the same time of day
    over the previous ``days`` days (at least 10% of the median wide, so a flat series still has a
    band). None where fewer than 3 previous days have a value."""
    import numpy as np

    by_slot = {int(ts.timestamp()) // period * period: v for ts, v in history}
    out: list[tuple[float, float, float] | None] = []
    for ts in at:
        slot = int(ts.timestamp()) // period * period
        past = [by_slot[slot - d * 86400] for d in range(1, days + 1) if slot - d * 86400 in by_slot]
        if len(past) < 3:
            out.append(None)
            continue
        arr = np.asarray(past, dtype=float)
        med = float(np.median(arr))
        mad = float(np.median(np.abs(arr - med))) * 1.4826
        half = max(k * mad, 0.1 * abs(med), 1e-9)
        out.append((med, med - half, med + half))
    return out
