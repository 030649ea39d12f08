"""The daily cost report: Cost Explorer by service, account and tags (team, service, env),
day-over-day and week-over-week, month-to-date vs the month-end forecast, spend anomalies with their
likely driver, realised savings and open right-sizing recommendations.

Stored at ``cost/reports/dt=<day>/`` (``report.html`` with the charts embedded, ``report.txt``,
``cost.csv``, ``summary.json``, ``email.eml``) and sent with SES to ``cost_report_recipients``.
The report day is the run's logical date; a re-run or backfill rewrites that day's partition.
"""

from __future__ import annotations

import csv
import io
import json
import logging
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from aiops.core.artifacts import ArtifactStore
from aiops.core.readiness import DataNotReady
from aiops.core.reporting import figure, figure_png, render_template, send_stored_report, store_report
from aiops.core.settings import get_settings
from aiops.cost import decisions, spend
from aiops.cost.rightsizing import DATASET, DOMAIN, FILENAME

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger(__name__)
DIMENSIONS = {"service": "SERVICE", "account": "LINKED_ACCOUNT", "team": "tag:team", "service_tag": "tag:service",
              "env": "tag:env"}
CSV_FIELDS = ["dimension", "key", "day_usd", "prev_day_usd", "dod_usd", "dod_pct", "week_ago_usd", "wow_usd",
              "wow_pct", "mtd_usd"]


def _pct(now: float, before: float) -> float | None:
    return None if before == 0 else round((now - before) / before * 100.0, 1)


def breakdown(frame: pd.DataFrame, day: date) -> list[dict[str, Any]]:
    """Per key: the day, the day before, a week before, changes and month to date (sorted by cost)."""
    import pandas as pd

    d = pd.Timestamp(day)
    month_start = pd.Timestamp(day.replace(day=1))
    rows: list[dict[str, Any]] = []
    for key, g in frame.groupby("key"):
        by_day = g.set_index("day")["cost"]
        now, prev, week = (float(by_day.get(d, 0.0)), float(by_day.get(d - pd.Timedelta(days=1), 0.0)),
                           float(by_day.get(d - pd.Timedelta(days=7), 0.0)))
        mtd = float(by_day[(by_day.index >= month_start) & (by_day.index <= d)].sum())
        rows.append({"key": str(key), "day_usd": round(now, 2), "prev_day_usd": round(prev, 2),
                     "dod_usd": round(now - prev, 2), "dod_pct": _pct(now, prev), "week_ago_usd": round(week, 2),
                     "wow_usd": round(now - week, 2), "wow_pct": _pct(now, week), "mtd_usd": round(mtd, 2)})
    rows.sort(key=lambda r: -r["day_usd"])
    return rows


def _chart_trend(total: pd.DataFrame, band: pd.DataFrame, day: date) -> bytes:
    import pandas as pd

    fig = figure(9, 3.0)
    ax = fig.add_subplot(1, 1, 1)
    ax.fill_between(band["ds"], band["yhat_lower"].clip(lower=0), band["yhat_upper"], color="#9ecae1", alpha=0.5,
                    label="forecast band (80%)")
    ax.plot(band["ds"], band["yhat"], color="#3182bd", lw=1, ls="--", label="forecast")
    ax.plot(total["day"], total["cost"], color="#111111", lw=1.6, label="daily spend")
    ax.axvline(pd.Timestamp(day), color="#e6550d", lw=1, label="report day")
    ax.set_ylabel("USD / day")
    ax.set_title("Daily spend, forecast to month end")
    ax.legend(loc="upper left", fontsize=7, ncol=4)
    fig.autofmt_xdate()
    return figure_png(fig)


def _chart_movers(rows: list[dict[str, Any]]) -> bytes:
    top = sorted(rows, key=lambda r: -abs(r["dod_usd"]))[:8][::-1]
    fig = figure(9, 3.0)
    ax = fig.add_subplot(1, 1, 1)
    ax.barh([r["key"][:40] for r in top], [r["dod_usd"] for r in top],
            color=["#d62728" if r["dod_usd"] > 0 else "#2ca02c" for r in top])
    ax.axvline(0, color="#555555", lw=0.8)
    ax.set_xlabel("USD change vs the day before")
    ax.set_title("Top movers (day over day, by service)")
    ax.tick_params(axis="y", labelsize=7)
    return figure_png(fig)


def _chart_teams(frame: pd.DataFrame, day: date) -> bytes:
    import pandas as pd

    recent = frame[frame["day"] > pd.Timestamp(day) - pd.Timedelta(days=30)]
    pivot = recent.pivot_table(index="day", columns="key", values="cost", aggfunc="sum").fillna(0.0)
    fig = figure(9, 3.0)
    ax = fig.add_subplot(1, 1, 1)
    ax.stackplot(pivot.index, [pivot[c] for c in pivot.columns], labels=[str(c) for c in pivot.columns], alpha=0.85)
    ax.set_ylabel("USD / day")
    ax.set_title("Cost by team (last 30 days)")
    ax.legend(loc="upper left", fontsize=7, ncol=5)
    fig.autofmt_xdate()
    return figure_png(fig)


def _open_recommendations(day: date) -> dict[str, Any]:
    store = ArtifactStore()
    days = [d for d in store.partitions(DOMAIN, DATASET) if d <= (day + timedelta(days=1)).isoformat()]
    if not days:
        return {"day": None, "count": 0, "monthly_savings_usd": 0.0, "top": []}
    doc = store.get_json(store.key(DOMAIN, DATASET, days[-1], FILENAME)) or {}
    recs = doc.get("recommendations", [])
    return {"day": days[-1], "count": len(recs), "monthly_savings_usd": doc.get("monthly_savings_usd", 0.0),
            "top": [{k: r[k] for k in ("resource_id", "name", "action", "monthly_savings_usd", "confidence")}
                    for r in recs[:5]]}


def build_report(day: date | str, run_id: str | None = None) -> dict[str, Any]:
    """Query, analyse, render and store the report for ``day`` (the run's own copy and the day's
    latest pointer, :func:`aiops.core.reporting.store_report`); returns the stored keys and a summary."""
    import pandas as pd

    s = get_settings()
    day = date.fromisoformat(day) if isinstance(day, str) else day
    start, end = day - timedelta(days=s.cost_history_days - 1), day + timedelta(days=1)
    frames: dict[str, pd.DataFrame] = {}
    for pair in (("service", "account"), ("team", "env"), ("service_tag",)):  # three requests
        got = spend.daily_costs(start, end, *(DIMENSIONS[name] for name in pair))
        frames.update({name: got[DIMENSIONS[name]] for name in pair})
    log.info("Cost Explorer: %s rows", {k: len(v) for k, v in frames.items()})
    total = frames["service"].groupby("day", as_index=False)["cost"].sum()
    if total.empty or pd.Timestamp(day) not in set(total["day"]):
        raise DataNotReady(f"cost report {day}", f"Cost Explorer has no cost for {day} yet (is the day complete?)")
    tables = {name: breakdown(frame, day) for name, frame in frames.items()}
    overall = breakdown(total.assign(key="total"), day)[0]
    forecast = spend.month_end_forecast(total, day)
    band = forecast.pop("band")
    anomalies = spend.spend_anomalies(frames["service"], day, min_usd=s.cost_anomaly_min_usd)
    for a in anomalies:
        a["driver"] = spend.likely_driver(a["service"], day)
    log.info("Forecast %s: $%.0f (%.0f-%.0f); %d anomaly(ies)", forecast["month"], forecast["forecast_usd"],
             forecast["lower_usd"], forecast["upper_usd"], len(anomalies))
    savings = decisions.realised_savings(datetime(day.year, day.month, day.day, tzinfo=UTC))
    recs = _open_recommendations(day)
    images = {"trend": _chart_trend(total, band, day), "movers": _chart_movers(tables["service"]),
              "teams": _chart_teams(frames["team"], day)}
    summary = {"day": day.isoformat(), "total": overall, "forecast": forecast, "anomalies": anomalies,
               "tables": tables, "savings": savings, "recommendations": recs,
               "history_days": s.cost_history_days}
    text = render_text(summary)
    subject = (f"Cost report {day}: ${overall['day_usd']:,.2f} ({_signed(overall['dod_pct'])} d/d), "
               f"month-end forecast ${forecast['forecast_usd']:,.0f}"
               + (f", {len(anomalies)} anomaly" + ("ies" if len(anomalies) > 1 else "") if anomalies else ""))
    csv_bytes = render_csv(summary).encode()
    stored = store_report(
        "cost", "reports", day, subject=subject, text=text,
        render_html=lambda src: render_html(summary, src), images=images, recipients=s.cost_report_recipients,
        run_id=run_id,
        extra={"cost.csv": (csv_bytes, "text/csv; charset=utf-8"),
               "summary.json": (json.dumps(summary, default=str, indent=1).encode(), "application/json")})
    return {**stored, "day": day.isoformat(), "total_usd": overall["day_usd"], "anomalies": anomalies,
            "forecast": forecast, "csv_key": stored["prefix"] + "cost.csv"}


def _signed(pct: float | None) -> str:
    return "n/a" if pct is None else f"{pct:+.1f}%"


def render_csv(summary: dict[str, Any]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=CSV_FIELDS)
    writer.writeheader()
    writer.writerow({"dimension": "total", **summary["total"]})
    for name, rows in summary["tables"].items():
        for row in rows:
            writer.writerow({"dimension": name, **row})
    return buf.getvalue()


def render_text(summary: dict[str, Any]) -> str:
    t, f = summary["total"], summary["forecast"]
    lines = [f"MatCarv AWS cost report for {summary['day']}", "",
             f"Spend: ${t['day_usd']:,.2f} ({_signed(t['dod_pct'])} day over day, {_signed(t['wow_pct'])} week over week)",
             f"Month to date ({f['month']}): ${f['mtd_usd']:,.2f}; month-end forecast ${f['forecast_usd']:,.2f} "
             f"(80% interval ${f['lower_usd']:,.2f} - ${f['upper_usd']:,.2f})", ""]
    if summary["anomalies"]:
        lines.append("Spend anomalies:")
        for a in summary["anomalies"]:
            drv = a.get("driver") or {}
            lines.append(f"- {a['service']}: ${a['actual_usd']:,.2f} vs expected ${a['expected_usd']:,.2f} "
                         f"(band ${a['lower_usd']:,.2f}-${a['upper_usd']:,.2f})"
                         + (f"; likely driver {drv['tag_service']} {drv['usage_type']} {drv['change_usd']:+,.2f}"
                            if drv else ""))
    else:
        lines.append("No spend anomalies.")
    lines += ["", "By service:"]
    lines += [f"- {r['key']}: ${r['day_usd']:,.2f} ({r['dod_usd']:+,.2f} d/d, {r['wow_usd']:+,.2f} w/w)"
              for r in summary["tables"]["service"]]
    lines += ["", "By team:"]
    lines += [f"- {r['key']}: ${r['day_usd']:,.2f} (MTD ${r['mtd_usd']:,.2f})" for r in summary["tables"]["team"]]
    sv, rc = summary["savings"], summary["recommendations"]
    lines += ["", f"Realised savings: {sv['completed']} of {sv['applied']} applied recommendation(s) done, "
                  f"${sv['monthly_run_rate_usd']:,.2f}/month, ${sv['accrued_usd']:,.2f} saved so far",
              f"Open right-sizing recommendations: {rc['count']} worth ${rc['monthly_savings_usd']:,.2f}/month"]
    return "\n".join(lines) + "\n"




def render_html(summary: dict[str, Any], img: dict[str, str]) -> str:
    return render_template("cost/report.html", s=summary, img=img, money=lambda x: f"{x:,.2f}", signed=_signed,
                           delta=lambda x: f"{x:+,.2f}")


def send_report(report: dict[str, Any], resend: bool | None = None) -> dict[str, Any]:
    """Email the stored report once per day (a rerun re-renders; ``resend`` sends again)."""
    return send_stored_report(report, resend=resend)
