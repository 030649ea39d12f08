"""Daily spend from Cost Explorer, the month-end forecast and spend anomalies.

- :func:`daily_costs` pages ``GetCostAndUsage`` (DAILY, UnblendedCost) grouped by one dimension
  (``SERVICE``, ``LINKED_ACCOUNT``, ``USAGE_TYPE``) or cost-allocation tag (``team``, ``service``,
  ``env``) into a tidy frame ``day, key, cost``.
- :func:`month_end_forecast`: Prophet on the daily total; the month-end figure is month-to-date plus
  the predicted remaining days, its interval from Prophet's predictive sample paths (so the interval
  is of the month's sum, not a sum of per-day intervals); one-off spikes are left out of the fit.
- :func:`spend_anomalies`: per AWS service, a Prophet model of the days before the report day; the
  day is anomalous when its cost is outside the model's interval by at least ``cost_anomaly_min_usd``.
  The likely driver is the (``service`` tag, usage type) whose cost moved most against its trailing
  week.
"""

from __future__ import annotations

import logging
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

from aiops.account.permissions import permissions
from aiops.core import aws

PERMISSIONS = permissions(
    "daily spend from Cost Explorer",
    reader=(
        "ce:GetCostAndUsage",
    ),
)

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger(__name__)
METRIC = "UnblendedCost"
UNTAGGED = "(untagged)"


def _group(by: str) -> dict[str, str]:
    if by.startswith("tag:"):
        return {"Type": "TAG", "Key": by[4:]}
    return {"Type": "DIMENSION", "Key": by}


def _key(raw: str) -> str:
    if "$" in raw:  # tag groups come back as "team$storefront"; "team$" is untagged
        return raw.split("$", 1)[1] or UNTAGGED
    return raw or UNTAGGED


def cost_and_usage(start: date, end: date, group_by: list[str], filter_: dict[str, Any] | None = None) -> list[dict]:
    """Rows ``{"day", "keys", "cost"}`` for [start, end), all pages."""
    ce = aws.client("ce")
    kwargs: dict[str, Any] = {"TimePeriod": {"Start": start.isoformat(), "End": end.isoformat()},
                              "Granularity": "DAILY", "Metrics": [METRIC]}
    if group_by:
        kwargs["GroupBy"] = [_group(g) for g in group_by]
    if filter_:
        kwargs["Filter"] = filter_
    rows: list[dict[str, Any]] = []
    while True:
        resp = ce.get_cost_and_usage(**kwargs)
        for period in resp["ResultsByTime"]:
            day = period["TimePeriod"]["Start"]
            if group_by:
                for g in period.get("Groups", []):
                    rows.append({"day": day, "keys": [_key(k) for k in g["Keys"]],
                                 "cost": float(g["Metrics"][METRIC]["Amount"])})
            else:
                rows.append({"day": day, "keys": [], "cost": float(period["Total"][METRIC]["Amount"])})
        token = resp.get("NextPageToken")
        if not token:
            return rows
        kwargs["NextPageToken"] = token


def daily_costs(start: date, end: date, by: str, *also: str) -> dict[str, pd.DataFrame]:
    """Per grouping (a dimension or ``tag:<key>``): ``day`` (datetime64), ``key``, ``cost`` for
    [start, end). Up to two groupings share one request (GetCostAndUsage takes two GroupBy keys)."""
    import pandas as pd

    groups = [by, *also]
    rows = cost_and_usage(start, end, groups)
    out = {}
    for i, name in enumerate(groups):
        frame = pd.DataFrame([{"day": r["day"], "key": r["keys"][i], "cost": r["cost"]} for r in rows],
                             columns=["day", "key", "cost"])
        frame["day"] = pd.to_datetime(frame["day"])
        out[name] = frame.groupby(["day", "key"], as_index=False)["cost"].sum()
    return out


def _quiet_prophet() -> None:
    for name in ("cmdstanpy", "prophet", "prophet.plot"):
        logging.getLogger(name).setLevel(logging.WARNING)


def _prophet(interval_width: float, samples: int) -> Any:
    from prophet import Prophet

    _quiet_prophet()
    return Prophet(interval_width=interval_width, uncertainty_samples=samples, daily_seasonality=False,
                   yearly_seasonality=False, weekly_seasonality=True, changepoint_prior_scale=0.05)


def _seed(day: date, salt: str = "") -> int:
    """A seed from the report day (and a salt): Prophet's uncertainty samples are drawn from numpy's
    global generator, so seeding it before each predict makes a re-run byte-identical."""
    import hashlib

    return int.from_bytes(hashlib.sha256(f"{day.isoformat()}|{salt}".encode()).digest()[:4], "big")


def without_spikes(history: pd.DataFrame, k: float = 5.0) -> pd.DataFrame:
    """``history`` (``ds, y``) with one-off spikes blanked (y = NaN, which Prophet skips): days more
    than ``k`` robust deviations from the centred 7-day median. A spike still counts in the
    month-to-date; it just does not bend the trend of the forecast."""
    median = history["y"].rolling(7, center=True, min_periods=3).median()
    resid = history["y"] - median
    mad = (resid.abs().rolling(15, center=True, min_periods=5).median() * 1.4826).clip(lower=1e-9)
    spikes = (resid.abs() > k * mad) & (resid.abs() > 0.05 * median.abs())
    return history.assign(y=history["y"].mask(spikes))


def month_end_forecast(total: pd.DataFrame, day: date, *, interval_width: float = 0.8,
                       samples: int = 500) -> dict[str, Any]:
    """``total``: ``day, cost`` up to and including ``day``. Returns MTD, the month-end forecast with
    its interval, and the fitted/forecast band (``band``: ``ds, yhat, yhat_lower, yhat_upper``)."""
    import numpy as np
    import pandas as pd

    history = total[total["day"] <= pd.Timestamp(day)].rename(columns={"day": "ds", "cost": "y"})
    month_start = pd.Timestamp(day.replace(day=1))
    next_month = (month_start + pd.offsets.MonthBegin(1))
    mtd = float(history[history["ds"] >= month_start]["y"].sum())
    remaining = pd.date_range(pd.Timestamp(day) + pd.Timedelta(days=1), next_month - pd.Timedelta(days=1))
    model = _prophet(interval_width, samples)
    model.fit(without_spikes(history)[["ds", "y"]])
    future = pd.DataFrame({"ds": pd.concat([history["ds"], pd.Series(remaining)], ignore_index=True)})
    np.random.seed(_seed(day))  # the band's uncertainty samples: same report (same chart bytes) on a re-run
    band = model.predict(future)[["ds", "yhat", "yhat_lower", "yhat_upper"]]
    if len(remaining):
        np.random.seed(_seed(day))  # same report on a re-run
        paths = model.predictive_samples(pd.DataFrame({"ds": remaining}))["yhat"]  # (days, samples)
        totals = mtd + paths.sum(axis=0)
        lo_q, hi_q = (1 - interval_width) / 2, 1 - (1 - interval_width) / 2
        forecast, lower, upper = float(np.median(totals)), float(np.quantile(totals, lo_q)), \
            float(np.quantile(totals, hi_q))
    else:
        forecast = lower = upper = mtd
    return {"month": month_start.strftime("%Y-%m"), "mtd_usd": round(mtd, 2), "forecast_usd": round(forecast, 2),
            "lower_usd": round(lower, 2), "upper_usd": round(upper, 2), "interval": interval_width,
            "days_remaining": len(remaining), "band": band}


def spend_anomalies(by_service: pd.DataFrame, day: date, *, min_usd: float, interval_width: float = 0.99,
                    min_history: int = 14) -> list[dict[str, Any]]:
    """Services whose cost on ``day`` is outside the band a Prophet model of the days before predicts."""
    import numpy as np
    import pandas as pd

    target = pd.Timestamp(day)
    out: list[dict[str, Any]] = []
    for service, rows in by_service.groupby("key"):
        rows = rows.sort_values("day")
        history = rows[rows["day"] < target].rename(columns={"day": "ds", "cost": "y"})
        today = rows[rows["day"] == target]
        if len(history) < min_history or today.empty:
            continue
        actual = float(today["cost"].iloc[0])
        if abs(actual - float(history["y"].tail(14).median())) < min_usd / 2:
            continue  # cheap pre-check: too close to its recent days to be min_usd off any band
        model = _prophet(interval_width, 300)
        model.fit(history[["ds", "y"]])
        np.random.seed(_seed(day, str(service)))  # the band's samples: a re-run finds the same anomalies
        pred = model.predict(pd.DataFrame({"ds": [target]})).iloc[0]
        lower, upper, expected = float(pred["yhat_lower"]), float(pred["yhat_upper"]), float(pred["yhat"])
        outside = actual > upper or actual < lower
        if outside and abs(actual - expected) >= min_usd:
            out.append({"service": str(service), "day": day.isoformat(), "actual_usd": round(actual, 2),
                        "expected_usd": round(expected, 2), "lower_usd": round(lower, 2),
                        "upper_usd": round(upper, 2), "excess_usd": round(actual - expected, 2),
                        "direction": "up" if actual > upper else "down"})
    out.sort(key=lambda a: -abs(a["excess_usd"]))
    return out


def likely_driver(service: str, day: date) -> dict[str, Any] | None:
    """The (``service`` tag, usage type) of ``service`` that moved most on ``day`` vs the week before."""
    import pandas as pd

    rows = cost_and_usage(day - timedelta(days=7), day + timedelta(days=1), ["tag:service", "USAGE_TYPE"],
                          filter_={"Dimensions": {"Key": "SERVICE", "Values": [service]}})
    if not rows:
        return None
    frame = pd.DataFrame([{"day": r["day"], "tag_service": r["keys"][0], "usage_type": r["keys"][1],
                           "cost": r["cost"]} for r in rows])
    today = frame[frame["day"] == day.isoformat()].groupby(["tag_service", "usage_type"])["cost"].sum()
    before = frame[frame["day"] != day.isoformat()].groupby(["tag_service", "usage_type"])["cost"].sum() / 7
    delta = today.subtract(before, fill_value=0.0)
    if delta.empty:
        return None
    (tag_service, usage_type) = delta.abs().idxmax()
    base = float(before.get((tag_service, usage_type), 0.0))
    now = float(today.get((tag_service, usage_type), 0.0))
    return {"tag_service": tag_service, "usage_type": usage_type, "day_usd": round(now, 2),
            "trailing_week_avg_usd": round(base, 2), "change_usd": round(now - base, 2),
            "factor": round(now / base, 1) if base > 0 else None}
