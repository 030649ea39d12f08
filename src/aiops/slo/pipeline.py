"""The slo_tracking and slo_weekly_report pipelines: evaluate SLOs, record history, alert, publish
custom metrics and dashboards, and write the weekly report.

**Which points a run evaluates** (:func:`plan`). A point ``t`` is the end of a 5-minute data
interval and its evaluation reads the metrics store's periods before ``t`` only
(:mod:`aiops.slo.rules`). A backfill (conf ``start``/``end``) evaluates every point in
``(start, end]`` in one run. A scheduled run evaluates the points since the last one it evaluated
(watermark ``slo_tracking``) up to its interval end, but never past the data that has *settled*:
the ``metrics_extract`` watermark minus ``metrics_settle_minutes`` (CloudWatch data arrives late
and each extraction re-reads that much). So a point is evaluated once its data is final, and a
backfill later reconstructs exactly the same row. Alerts therefore lag the data by the extraction
cadence (10-25 minutes with the default 15-minute extraction).

**History** goes to the state store table ``aiops_slo_history`` (migration 3), one row per
``(slo_id, evaluated_at)``, written as an upsert of the evaluated range (delete the range's rows,
insert, one transaction): re-running or backfilling a range rewrites, never duplicates. The SQL
table, not Parquet, because its readers ask for "the latest row of these SLOs" (the error-budget
approval policy) and "a week of rows" (the report), and both are indexed queries.

**Alerts** are sent only when an alert starts (:func:`aiops.slo.rules.alert_onsets`: the
severity rises above everything in the quiet period before it). Onsets are computed from the
data, evaluating ``quiet_period`` of extra points before the range, and are stored in the row's
``alert`` column, so a re-run finds the same onsets and re-sends the same fingerprints (the
intake de-duplicates on them). Backfills send nothing unless conf ``emit_alerts`` is true.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import re
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from aiops.account.permissions import permissions
from aiops.core import aws, identity, times
from aiops.core.artifacts import ArtifactStore
from aiops.core.readiness import DataNotReady, require_slo_history
from aiops.core.reporting import figure, figure_png, render_template, send_stored_report, store_report
from aiops.core.settings import get_settings
from aiops.core.state import StateStore, slo_history
from aiops.core.times import utc as _utc
from aiops.metrics import pipeline as metrics
from aiops.metrics.store import MetricsStore
from aiops.slo import rules as sl
from aiops.slo.rules import RatioIndicator, duration_label, error_budget, fingerprint, load_slos

PERMISSIONS = permissions(
    "SLO metrics (namespace MatCarv/SLO) and dashboards (MatCarv-SLO-*)",
    reader=(
        "cloudwatch:PutMetricData",
        "cloudwatch:PutDashboard @ arn:${AWS::Partition}:cloudwatch::${AWS::AccountId}:dashboard/MatCarv-SLO-*",
        "cloudwatch:DeleteDashboards @ arn:${AWS::Partition}:cloudwatch::${AWS::AccountId}:dashboard/MatCarv-SLO-*",
        "cloudwatch:GetMetricData",
    ),
    notifier=(
        "events:PutEvents @ arn:${AWS::Partition}:events:${AWS::Region}:${AWS::AccountId}:event-bus/${EventBusName}",
    ),
)

if TYPE_CHECKING:
    import pandas as pd

    from aiops.slo.rules import SloSet, SloSpec

log = logging.getLogger(__name__)

WATERMARK = "slo_tracking"
ALERT_SOURCE = "matcarv.aiops"
ALERT_DETAIL_TYPE = "AIOps SLO Burn Rate"
METRIC_NAMESPACE = "MatCarv/SLO"
DASHBOARD_PREFIX = "MatCarv-SLO-"
DASHBOARD_STATE_KEY = "slo/dashboards/latest/state.json"
DASHBOARD_REFRESH = timedelta(hours=1)
MAX_CATCH_UP = timedelta(days=1)  # a scheduled run after downtime evaluates at most this much
MAX_ALERT_AGE = timedelta(hours=1)  # a scheduled run catching up records older onsets but does not send them
CUSTOM_METRIC_MAX_AGE = timedelta(days=14)  # PutMetricData rejects older timestamps
HISTORY_COLUMNS = ("slo_id", "evaluated_at", "service", "env", "team", "objective", "window_days", "sli",
                   "budget_remaining", "coverage", "good", "total", "burn_rates", "firing", "severity", "alert",
                   "fingerprint")


def load() -> SloSet:
    slos = load_slos(get_settings().include_dir / "slos")
    for err in slos.errors:
        log.error("SLO definition skipped: %s", err)
    return slos


def _floor(value: datetime | str) -> datetime:
    return times.floor(value, get_settings().metric_period_seconds)


# --- plan ----------------------------------------------------------------------------------------
def plan(interval_end: datetime | str, conf: dict[str, Any] | None = None) -> dict[str, Any]:
    """The range ``(start, end]`` of points this run evaluates (``start == end``: nothing to do)."""
    s = get_settings()
    conf = conf or {}
    period = timedelta(seconds=s.metric_period_seconds)
    if conf.get("start") or conf.get("end"):
        if not (conf.get("start") and conf.get("end")):
            raise ValueError("conf needs both 'start' and 'end' (ISO 8601)")
        start, end = _floor(conf["start"]), _floor(conf["end"])
        if start >= end:
            raise ValueError(f"empty range [{start.isoformat()}, {end.isoformat()})")
        task: dict[str, Any] = {"start": start.isoformat(), "end": end.isoformat(), "mode": "backfill",
                                "emit_alerts": bool(conf.get("emit_alerts", False)),
                                "reason": "explicit range from conf"}
    else:
        store = StateStore()
        wanted = _floor(interval_end)
        data_until = metrics.data_until(store)  # the connected account's, when its data exists
        if data_until is None:
            log.info("SLO evaluation: nothing to do, metrics_extract has not run yet")
            return {"start": wanted.isoformat(), "end": wanted.isoformat(), "mode": "scheduled",
                    "emit_alerts": True, "reason": "metrics_extract has not run yet", "points": 0}
        settled = _floor(data_until - timedelta(minutes=s.metrics_settle_minutes))
        end = min(wanted, settled)
        last = evaluated_until(store)
        start = max(last if last is not None else end - period, end - MAX_CATCH_UP)
        start = min(start, end)
        task = {"start": start.isoformat(), "end": end.isoformat(), "mode": "scheduled", "emit_alerts": True,
                "reason": f"since the last evaluated point, up to settled data ({settled.isoformat()})"}
    points = int((_utc(task["end"]) - _utc(task["start"])) / period)
    log.info("SLO evaluation of (%s, %s]: %d point(s); %s", task["start"], task["end"], points, task["reason"])
    return {**task, "points": points}


# --- evaluate ------------------------------------------------------------------------------------
def evaluate_range(start: datetime, end: datetime, slos: SloSet,
                   metrics_frame: pd.DataFrame | None = None) -> tuple[pd.DataFrame, dict[str, list[dict]]]:
    """History rows for every SLO and point in ``(start, end]``, plus each SLO's matched series.

    Reads (unless given) the metrics store from the longest look-back before the first point; also
    evaluates ``quiet_period`` of points before ``start`` so alert onsets do not depend on where
    the range begins."""
    import pandas as pd

    start, end = _utc(start), _utc(end)
    period = timedelta(seconds=get_settings().metric_period_seconds)
    specs = list(slos)
    if not specs or start >= end:
        return pd.DataFrame(columns=list(HISTORY_COLUMNS)), {}
    reach = max(spec.lookback() + spec.alerting.quiet_period for spec in specs)
    if metrics_frame is None:
        metrics_frame = MetricsStore().read(start - reach, end)
    frames, series = [], {}
    for spec in specs:
        quiet = spec.alerting.quiet_period
        points = sl.evaluation_points(start - quiet, end, period)
        matched = sl.matched_series(metrics_frame, spec)
        series[spec.id] = matched
        events = sl.period_events(metrics_frame, spec)
        rows = sl.evaluate(events, spec, points, period)
        rows["alert"] = sl.alert_onsets(rows.set_index("evaluated_at")["severity"], quiet, period).to_numpy()
        rows = rows[rows["evaluated_at"] > pd.Timestamp(start)].reset_index(drop=True)
        frames.append(_history_rows(rows, spec, matched))
    history = pd.concat(frames, ignore_index=True)
    return history, series


def _history_rows(rows: pd.DataFrame, spec: SloSpec, matched: list[dict[str, Any]]) -> pd.DataFrame:
    teams = sorted({m["team"] for m in matched if m.get("team")})
    labels = [duration_label(w) for w in spec.alerting.windows()]
    out = rows[["evaluated_at", "sli", "budget_remaining", "coverage", "good", "total", "firing", "severity",
                "alert"]].copy()
    out.insert(0, "slo_id", spec.id)
    out["service"], out["env"] = spec.service, spec.env
    out["team"] = spec.team or (teams[0] if teams else "")
    out["objective"], out["window_days"] = spec.objective, spec.window.days
    burns = rows[[f"burn_{label}" for label in labels]].to_numpy(dtype=float)
    out["burn_rates"] = [{label: _num(v) for label, v in zip(labels, values, strict=True)} for values in burns]
    out["fingerprint"] = [fingerprint(spec.id, a, t) if a else None
                          for a, t in zip(out["alert"], out["evaluated_at"], strict=True)]
    return out[list(HISTORY_COLUMNS)]


def _num(x: Any) -> float | None:
    try:
        value = float(x)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(value) else value


def record(task: dict[str, Any], run_id: str | None = None, now: datetime | None = None) -> dict[str, Any]:
    """The evaluate task: evaluate the planned range, upsert the history, return alerts and series.

    A scheduled run sends only onsets within the freshness horizon of the wall clock
    (``AIOPS_FRESHNESS_HORIZON_MINUTES``) and after the platform began watching the account (the end
    of its first metrics extraction): on a first start or a catch-up the older ones are recorded in
    the history, not sent. A backfill sends only when asked (conf ``emit_alerts``), and the
    intake records what is older than the horizon as history ('stale': no incident, no page)."""
    slos = load()
    start, end = _utc(task["start"]), _utc(task["end"])
    summary: dict[str, Any] = {"start": task["start"], "end": task["end"], "rows": 0, "alerts": [],
                               "series": {}, "slo_fingerprint": slos.fingerprint(), "slos": sorted(slos.slos),
                               "config_errors": [str(e) for e in slos.errors], "latest": {}}
    if start >= end:
        return summary
    history, series = evaluate_range(start, end, slos)
    upsert_history(history, start, end, list(slos.slos))
    summary["rows"] = len(history)
    summary["series"] = series
    if task.get("emit_alerts"):
        onsets = history[history["alert"].notna()]
        clock = _utc(now) if now is not None else datetime.now(UTC)
        if task.get("mode") == "scheduled":  # first start / after downtime: do not page for what started long ago
            horizon = timedelta(minutes=get_settings().freshness_horizon_minutes)
            cutoff = max(end - MAX_ALERT_AGE, clock - horizon)
            # nor for what started before the platform began watching the account, however recent
            since = metrics.live_since()
            if since is not None and since > cutoff:
                cutoff = since
            stale = onsets[onsets["evaluated_at"] <= cutoff]
            if len(stale):
                log.warning("not sending %d alert(s) that started before %s (older than the freshness horizon, or "
                            "before the platform began watching the account: catch-up or first start): %s",
                            len(stale), cutoff.isoformat(), stale[["slo_id", "alert", "evaluated_at"]].to_dict("records"))
            onsets = onsets[onsets["evaluated_at"] > cutoff]
        summary["alerts"] = [alert_detail(row, slos.slos[row["slo_id"]], run_id, now=clock)
                             for row in onsets.to_dict("records")]
    latest = history.sort_values("evaluated_at").groupby("slo_id").tail(1)
    summary["latest"] = {r["slo_id"]: {"evaluated_at": r["evaluated_at"].isoformat(), "sli": _num(r["sli"]),
                                       "budget_remaining": _num(r["budget_remaining"]), "severity": r["severity"]}
                         for r in latest.to_dict("records")}
    log.info("SLO history: %d row(s) for %d SLO(s); %d alert(s) starting; latest %s", len(history), len(slos),
             len(summary["alerts"]), summary["latest"])
    return summary


def alert_detail(row: dict[str, Any], spec: SloSpec, run_id: str | None = None,
                 now: datetime | None = None) -> dict[str, Any]:
    """The EventBridge detail of an alert that starts at ``row`` (see the module docstring)."""
    burns = row["burn_rates"]
    windows = []
    for rule in spec.alerting.rules:
        long_label, short_label = duration_label(rule.long_window), duration_label(rule.short_window)
        windows.append({"rule": rule.name, "severity": rule.severity, "long_window": long_label,
                        "short_window": short_label, "burn_rate_threshold": rule.burn_rate,
                        "long_burn_rate": burns.get(long_label), "short_burn_rate": burns.get(short_label),
                        "firing": rule.name in row["firing"]})
    return {"alert_type": "slo_burn", "slo_id": row["slo_id"], "service": row["service"], "env": row["env"],
            "team": row["team"], "severity": row["alert"], "objective": row["objective"],
            "sli": _num(row["sli"]), "budget_remaining": _num(row["budget_remaining"]),
            "coverage": _num(row["coverage"]), "burn_rates": burns, "windows": windows,
            "fingerprint": row["fingerprint"], "evaluated_at": row["evaluated_at"].isoformat(),
            "description": spec.description, "run_id": run_id,
            "observed_at": row["evaluated_at"].isoformat(),
            "data_age_seconds": round(((_utc(now) if now else datetime.now(UTC))
                                       - row["evaluated_at"].to_pydatetime()).total_seconds(), 1)}


# --- history (state store) -----------------------------------------------------------------------
def upsert_history(history: pd.DataFrame, start: datetime, end: datetime, slo_ids: list[str]) -> int:
    """Replace the rows of ``slo_ids`` in ``(start, end]`` with ``history`` in one transaction."""
    from sqlalchemy import delete, insert

    store = StateStore()
    store.migrate()
    records = []
    for row in history.to_dict("records"):
        rec = {k: row[k] for k in HISTORY_COLUMNS}
        rec["evaluated_at"] = row["evaluated_at"].to_pydatetime()
        for k in ("sli", "budget_remaining", "coverage", "objective", "good", "total"):
            rec[k] = _num(rec[k])
        rec["firing"] = list(rec["firing"])
        rec["alert"] = rec["alert"] or None
        records.append(rec)
    with store.engine.begin() as conn:
        if slo_ids:
            conn.execute(delete(slo_history).where(slo_history.c.slo_id.in_(slo_ids),
                                                   slo_history.c.evaluated_at > _utc(start),
                                                   slo_history.c.evaluated_at <= _utc(end)))
        if records:
            conn.execute(insert(slo_history), records)
    return len(records)


def read_history(start: datetime, end: datetime, *, slo_ids: list[str] | None = None) -> pd.DataFrame:
    """History rows with ``start < evaluated_at <= end``, ordered by SLO and time."""
    import pandas as pd
    from sqlalchemy import select

    store = StateStore()
    store.migrate()
    query = select(slo_history).where(slo_history.c.evaluated_at > _utc(start),
                                      slo_history.c.evaluated_at <= _utc(end))
    if slo_ids is not None:
        query = query.where(slo_history.c.slo_id.in_(slo_ids))
    with store.engine.connect() as conn:
        rows = [dict(r._mapping) for r in conn.execute(query.order_by(slo_history.c.slo_id,
                                                                       slo_history.c.evaluated_at))]
    frame = pd.DataFrame(rows, columns=list(HISTORY_COLUMNS))
    if len(frame):
        stamps = pd.to_datetime(frame["evaluated_at"])
        frame["evaluated_at"] = stamps.dt.tz_localize("UTC") if stamps.dt.tz is None else stamps.dt.tz_convert("UTC")
    return frame


def evaluated_until(store: Any = None, *, account_id: str | None = None) -> datetime | None:
    """How far the connected account's SLOs are evaluated: its ``slo_tracking`` watermark, when the
    history it vouches for exists (rows at the watermark's point in ``aiops_slo_history``). Another
    account's watermark is never read (watermarks are per account); one whose history is gone is not
    trusted: None, so the next run starts as on a first start."""
    from sqlalchemy import select

    store = store or StateStore()
    account_id = account_id if account_id is not None else identity.current_account()
    watermark = store.get_watermark(WATERMARK, account_id=account_id)
    if watermark is None:
        return None
    with store.engine.connect() as conn:
        found = conn.execute(select(slo_history.c.slo_id).where(
            slo_history.c.evaluated_at == _utc(watermark)).limit(1)).first()
    if found is None:
        log.warning("The SLO watermark of account %s (%s) vouches for history rows that are not in the state "
                    "store: not trusted", account_id, watermark.isoformat())
        return None
    return watermark


def advance(end: str, run_id: str | None = None) -> None:
    StateStore().set_watermark(WATERMARK, _utc(end), run_id=run_id, account_id=identity.current_account())


# --- alerts --------------------------------------------------------------------------------------
def send_alerts(alerts: list[dict[str, Any]]) -> int:
    """PutEvents (10 per call) to the default bus; the ops-events rule routes ``matcarv.aiops`` to
    the queue the incident intake watches. Raises when EventBridge rejects any (the task retries)."""
    if not alerts:
        return 0
    events = aws.client("events")
    entries = [{"Source": ALERT_SOURCE, "DetailType": ALERT_DETAIL_TYPE, "Detail": json.dumps(a),
                "Resources": [], "Time": _utc(a["evaluated_at"])} for a in alerts]
    failed = 0
    for i in range(0, len(entries), 10):
        failed += int(events.put_events(Entries=entries[i:i + 10]).get("FailedEntryCount", 0))
    if failed:
        raise RuntimeError(f"EventBridge rejected {failed} of {len(alerts)} SLO alert events; the task will retry")
    log.info("sent %d SLO alert(s): %s", len(alerts), [(a["slo_id"], a["severity"], a["evaluated_at"])
                                                      for a in alerts])
    return len(alerts)


# --- custom metrics ------------------------------------------------------------------------------
def metric_data(history: pd.DataFrame, newest: datetime) -> list[dict[str, Any]]:
    """PutMetricData items (namespace MatCarv/SLO, dimensions SloId and Service) for history rows:
    ``SLI`` and ``ErrorBudgetRemaining`` in percent, ``BurnRate<window>`` per window."""
    items = []
    oldest = _utc(newest) - CUSTOM_METRIC_MAX_AGE
    for row in history.to_dict("records"):
        stamp = row["evaluated_at"].to_pydatetime()
        if stamp <= oldest:
            continue
        dims = [{"Name": "SloId", "Value": row["slo_id"]}, {"Name": "Service", "Value": row["service"]}]
        values = [("SLI", _num(row["sli"]), 100.0, "Percent"),
                  ("ErrorBudgetRemaining", _num(row["budget_remaining"]), 100.0, "Percent")]
        values += [(f"BurnRate{label}", _num(v), 1.0, "None") for label, v in sorted(row["burn_rates"].items())]
        items += [{"MetricName": name, "Dimensions": dims, "Timestamp": stamp, "Value": value * scale,
                   "Unit": unit} for name, value, scale, unit in values if value is not None]
    return items


def publish_metrics(start: str, end: str) -> int:
    items = metric_data(read_history(_utc(start), _utc(end)), _utc(end))
    cw = aws.client("cloudwatch")
    for i in range(0, len(items), 500):  # API limit 1,000 items / 1 MB per call
        cw.put_metric_data(Namespace=METRIC_NAMESPACE, MetricData=items[i:i + 500])
    log.info("published %d SLO datapoints to %s", len(items), METRIC_NAMESPACE)
    return len(items)


# --- dashboards ----------------------------------------------------------------------------------
def dashboard_name(service: str) -> str:
    return DASHBOARD_PREFIX + re.sub(r"[^A-Za-z0-9_-]", "-", service)


def _dims_list(dims: dict[str, str]) -> list[str]:
    return [x for k in sorted(dims) for x in (k, dims[k])]


def _sli_widget(spec: SloSpec, series: list[dict[str, Any]], region: str) -> dict[str, Any]:
    ns, ind = spec.selector.namespace, spec.indicator
    metrics: list[list[Any]] = []
    annotations = [{"value": spec.objective * 100, "label": f"objective {spec.objective * 100:g}%"}]
    y_axis: dict[str, Any] = {"left": {"label": "%", "showUnits": False}}
    if isinstance(ind, RatioIndicator):
        other = ind.bad or ind.good or ""
        dims = sorted({json.dumps(s["dimensions"], sort_keys=True) for s in series if s["metric"] == ind.total})
        if len(dims) == 1:
            d = _dims_list(json.loads(dims[0]))
            metrics += [[ns, ind.total, *d, {"id": "m1", "stat": "Sum", "visible": False}],
                        [ns, other, *d, {"id": "m2", "stat": "Sum", "visible": False}]]
            expr = "100*(1-FILL(m2,0)/m1)" if ind.bad else "100*FILL(m2,0)/m1"
        else:
            for i, text in enumerate(dims):
                d = _dims_list(json.loads(text))
                metrics += [[ns, ind.total, *d, {"id": f"t{i}", "stat": "Sum", "visible": False}],
                            [ns, other, *d, {"id": f"b{i}", "stat": "Sum", "visible": False}]]
            totals = ",".join(f"t{i}" for i in range(len(dims)))
            others = ",".join(f"FILL(b{i},0)" for i in range(len(dims)))
            expr = (f"100*(1-SUM([{others}])/SUM([{totals}]))" if ind.bad else f"100*SUM([{others}])/SUM([{totals}])")
        if dims:
            metrics.append([{"expression": expr, "label": "SLI per 5 min (%)", "id": "e1"}])
        metrics.append([METRIC_NAMESPACE, "SLI", "SloId", spec.id, "Service", spec.service,
                        {"label": f"SLI over {spec.window.days}d (%)", "stat": "Average"}])
        title = f"{spec.id}: SLI (%)"
    else:
        threshold = getattr(ind, "threshold_seconds", None)
        stat = "Average" if threshold is not None else "Maximum"
        for s in series:
            metrics.append([ns, s["metric"], *_dims_list(s["dimensions"]), {"stat": stat}])
        annotations = [{"value": threshold if threshold is not None else getattr(ind, "max_unhealthy", 0),
                        "label": "good below" if threshold is not None else "good at or below"}]
        y_axis = {"left": {"min": 0}}
        title = f"{spec.id}: {ind.metric} per 5 min"
    return {"type": "metric", "properties": {
        "title": title, "region": region, "view": "timeSeries", "stacked": False, "period": 300,
        "metrics": metrics, "annotations": {"horizontal": annotations}, "yAxis": y_axis}}


def dashboard_body(service: str, specs: list[SloSpec], series: dict[str, list[dict[str, Any]]],
                   region: str) -> dict[str, Any]:
    """A CloudWatch dashboard body for one service: per SLO a row of four widgets (objective text,
    SLI, error budget remaining, burn rates), 24 grid units wide, 6 high."""
    widgets: list[dict[str, Any]] = []
    for row, spec in enumerate(sorted(specs, key=lambda s: s.id)):
        y = row * 6
        rules = "; ".join(f"{r.severity} at {r.burn_rate:g}x over {duration_label(r.long_window)} and "
                          f"{duration_label(r.short_window)}" for r in spec.alerting.rules)
        text = (f"### {spec.id}\n**Objective** {spec.objective * 100:g}% over a rolling {spec.window.days} days "
                f"(error budget {spec.error_budget * 100:g}%)\n\n**SLI** {spec.describe_indicator()}\n\n"
                f"**Alerting** {rules}\n\n{spec.description}")
        windows = [duration_label(w) for w in spec.alerting.windows()]
        budget = {"type": "metric", "properties": {
            "title": f"{spec.id}: error budget remaining (%)", "region": region, "view": "timeSeries",
            "stacked": False, "period": 300, "stat": "Minimum",
            "metrics": [[METRIC_NAMESPACE, "ErrorBudgetRemaining", "SloId", spec.id, "Service", spec.service,
                         {"label": "budget remaining %"}]],
            "annotations": {"horizontal": [{"value": 0, "label": "exhausted"}]}}}
        burn = {"type": "metric", "properties": {
            "title": f"{spec.id}: burn rate (x budget)", "region": region, "view": "timeSeries",
            "stacked": False, "period": 300, "stat": "Maximum",
            "metrics": [[METRIC_NAMESPACE, f"BurnRate{w}", "SloId", spec.id, "Service", spec.service,
                         {"label": w}] for w in windows],
            "annotations": {"horizontal": [{"value": r.burn_rate, "label": f"{r.name} ({r.severity})"}
                                           for r in spec.alerting.rules]},
            "yAxis": {"left": {"min": 0}}}}
        cells = [{"type": "text", "properties": {"markdown": text}}, _sli_widget(spec, series.get(spec.id, []), region),
                 budget, burn]
        for col, widget in enumerate(cells):
            widgets.append({**widget, "x": col * 6, "y": y, "width": 6, "height": 6})
    return {"widgets": widgets}


def update_dashboards(series: dict[str, list[dict[str, Any]]], interval_end: datetime | str) -> dict[str, Any]:
    """PutDashboard per service when its body changed, or every ``DASHBOARD_REFRESH`` (console edits
    are overwritten then); dashboards of services that no longer have SLOs are deleted."""
    if not series:  # nothing was evaluated (no new settled data): the series are unknown this run
        return {"updated": [], "removed": [], "dashboards": [], "skipped": "no evaluation in this run"}
    slos = load()
    region = aws.region_of()
    now = _utc(interval_end)
    store = ArtifactStore()
    state = store.get_json(DASHBOARD_STATE_KEY) or {}
    published = state.get("bodies", {})
    stale = state.get("published_at") is None or now - _utc(state["published_at"]) >= DASHBOARD_REFRESH
    cw = aws.client("cloudwatch")
    bodies = {dashboard_name(svc): dashboard_body(svc, [s for s in slos if s.service == svc], series, region)
              for svc in slos.services()}
    updated = []
    for name, body in bodies.items():
        text = json.dumps(body, sort_keys=True)
        digest = hashlib.sha1(text.encode()).hexdigest()
        if stale or published.get(name) != digest:
            resp = cw.put_dashboard(DashboardName=name, DashboardBody=text)
            problems = resp.get("DashboardValidationMessages") or []
            if problems:
                log.warning("dashboard %s: %s", name, problems)
            updated.append(name)
        published[name] = digest
    removed = sorted(set(published) - set(bodies))
    if removed:
        cw.delete_dashboards(DashboardNames=removed)
        for name in removed:
            published.pop(name)
    if updated or removed:
        store.put_json(DASHBOARD_STATE_KEY, {"bodies": published, "slo_fingerprint": slos.fingerprint(),
                                             "published_at": now.isoformat() if stale else state["published_at"]})
    log.info("dashboards: updated %s, removed %s, unchanged %s", updated, removed,
             sorted(set(bodies) - set(updated)))
    return {"updated": updated, "removed": removed, "dashboards": sorted(bodies)}


# --- weekly report -------------------------------------------------------------------------------
def report_summary(history: pd.DataFrame) -> list[dict[str, Any]]:
    """One dict per SLO over the week: objective, SLI and budget at the end, the change of the budget
    over the week (negative: spent; positive: recovered, as old errors leave the rolling window),
    alerts started this week, coverage of the rolling window."""
    out = []
    for slo_id, rows in history.sort_values("evaluated_at").groupby("slo_id", sort=True):
        first, last = rows.iloc[0], rows.iloc[-1]
        change = (_num(last["budget_remaining"]) or 0.0) - (_num(first["budget_remaining"]) or 0.0)
        out.append({
            "slo_id": str(slo_id), "service": str(last["service"]), "env": str(last["env"] or ""),
            "team": str(last["team"] or ""), "objective": float(last["objective"]), "sli": _num(last["sli"]),
            "budget_remaining": _num(last["budget_remaining"]), "budget_change_week": change,
            "coverage": _num(last["coverage"]), "window_days": int(last["window_days"]),
            "pages": int((rows["alert"] == "page").sum()), "tickets": int((rows["alert"] == "ticket").sum()),
            "status": _status(_num(last["budget_remaining"])),
        })
    return out


def _status(remaining: float | None) -> str:
    if remaining is None:
        return "no data"
    if remaining <= 0:
        return "budget exhausted"
    return "at risk" if remaining < 0.25 else "healthy"


def plot_slo(rows: pd.DataFrame, objective: float) -> bytes:
    """PNG: the SLI over the week (rolling window and per hour) with the objective line, and the
    budget burn-down. Uses the Agg canvas directly (no pyplot state, safe in worker threads)."""
    import numpy as np

    rows = rows.sort_values("evaluated_at")
    t = rows["evaluated_at"].dt.tz_convert("UTC").dt.tz_localize(None)
    fig = figure(9, 2.8, 90)
    left, right = fig.subplots(1, 2)
    rolling = rows["sli"].astype(float) * 100
    hourly = [b.get("1h") for b in rows["burn_rates"]]
    if any(h is not None for h in hourly):
        per_hour = 100 * (1 - np.array([np.nan if h is None else h for h in hourly]) * error_budget(objective))
        left.plot(t, per_hour, color="#9bb7d4", linewidth=0.8, label="SLI, last hour")
    left.plot(t, rolling, color="#1f4e79", linewidth=1.6, label=f"SLI, {int(rows['window_days'].iloc[-1])}d window")
    left.axhline(objective * 100, color="#c0392b", linestyle="--", linewidth=1, label="objective")
    low = np.nanmin([objective * 100 - 5 * error_budget(objective) * 100, *rolling.dropna().tolist()])
    left.set_ylim(max(low, 0), 100.0 + error_budget(objective) * 100 * 0.5)
    left.set_title("SLI (%)", fontsize=9)
    left.legend(fontsize=7, loc="lower left")
    right.plot(t, rows["budget_remaining"].astype(float) * 100, color="#2e7d32", linewidth=1.6)
    right.axhline(0, color="#c0392b", linewidth=1)
    right.set_title("Error budget remaining (%)", fontsize=9)
    for ax in (left, right):
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
    fig.autofmt_xdate()
    return figure_png(fig)




def _pct(value: float | None, digits: int = 3) -> str:
    return "n/a" if value is None else f"{value * 100:.{digits}f}%"


def report_rows(summary: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rows = []
    for s in summary:
        coverage = s.get("coverage")
        sli_text = _pct(s["sli"])
        if coverage is not None and coverage < 0.999:
            sli_text += f" ({coverage * s['window_days']:.1f} of {s['window_days']} days)"
        rows.append({**s, "objective_text": f"{s['objective'] * 100:g}%", "sli_text": sli_text,
                     "budget_text": _pct(s["budget_remaining"], 1), "change_text": f"{s['budget_change_week'] * 100:+.1f} pts",
                     "status_class": s["status"].replace(" ", "-")})
    return rows


def render_report_html(summary: list[dict[str, Any]], start: datetime, end: datetime,
                       images: dict[str, str] | None = None) -> str:
    """The report as HTML; every value is escaped (jinja2 autoescape). ``images``: slo_id -> src."""
    rows = report_rows(summary)
    for row in rows:
        row["image"] = (images or {}).get(row["slo_id"])
    services: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        services.setdefault(row["service"], []).append(row)
    return render_template(
        "slo/report.html",
        title=f"SLO report, week ending {end:%Y-%m-%d}", start=f"{start:%Y-%m-%d %H:%M}",
        end=f"{end:%Y-%m-%d %H:%M}", services=sorted(services.items()), total=len(rows),
        healthy=sum(1 for r in rows if r["status"] in {"healthy", "at risk"}))


def render_report_text(summary: list[dict[str, Any]], start: datetime, end: datetime) -> str:
    lines = [f"SLO report, week {start:%Y-%m-%d %H:%M} - {end:%Y-%m-%d %H:%M} UTC", ""]
    for row in report_rows(summary):
        lines.append(f"{row['service']} / {row['slo_id']} ({row['env']}): objective {row['objective_text']}, "
                     f"SLI {row['sli_text']}, budget remaining {row['budget_text']} "
                     f"({row['change_text']} this week), {row['pages']} page(s), {row['tickets']} ticket(s)"
                     f" - {row['status']}")
    return "\n".join(lines) + "\n"


def build_report(start: datetime | str, end: datetime | str, run_id: str | None = None,
                 require_complete: bool = False) -> dict[str, Any]:
    """Render the week's report from the SLO history, store it at ``slo/reports/dt=<end date>/``
    (``report.html`` self-contained, ``report.txt``, ``email.eml`` — the message to send, with
    the plots as inline CID parts because mail clients block data: URIs).

    ``require_complete`` (the scheduled DAG): raise ``DataNotReady`` unless SLOs are defined and
    their history covers the week — never "0 of 0 SLOs within budget" from a fresh install."""
    s = get_settings()
    start, end = _utc(start), _utc(end)
    history = read_history(start, end)
    if require_complete:
        if not load().slos:
            raise DataNotReady("slo_weekly_report", "no SLOs are defined (include/slos/*.yaml)")
        require_slo_history("slo_weekly_report", start, end, history)
    summary = report_summary(history)
    pngs = {row["slo_id"]: plot_slo(history[history["slo_id"] == row["slo_id"]], row["objective"])
            for row in summary}
    healthy = sum(1 for r in summary if r["status"] in {"healthy", "at risk"})
    stored = store_report(
        "slo", "reports", end,
        subject=f"SLO report, week ending {end:%Y-%m-%d}: {healthy} of {len(summary)} SLOs within budget",
        text=render_report_text(summary, start, end),
        render_html=lambda src: render_report_html(summary, start, end, src),
        images=pngs, recipients=s.slo_report_recipients, run_id=run_id)
    log.info("SLO report for %d SLO(s) built", len(summary))
    return {**stored, "slos": len(summary), "healthy": healthy}


def send_report(report: dict[str, Any], resend: bool | None = None) -> dict[str, Any]:
    """Send the stored message with SES SendRawEmail (HTML + text, inline plots), once per report
    week (a rerun re-renders; ``resend`` sends again)."""
    return send_stored_report(report, resend=resend)
