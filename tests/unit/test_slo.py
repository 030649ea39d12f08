"""SLO arithmetic on hand-computed cases, the YAML format, dashboard bodies and report escaping."""

from __future__ import annotations

import json
import math
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest

from aiops.remediation.policies import error_budget_policy, exhausted_reason
from aiops.slo import pipeline
from aiops.slo import rules as slo

T0 = pd.Timestamp("2026-11-20T00:00:00Z")
REPO = Path(__file__).resolve().parents[2]

AVAILABILITY = """
id: web-availability
service: web
indicator: {type: ratio, total: RequestCount, bad: HTTPCode_Target_5XX_Count}
selector: {tags: {service: web, env: prod}, dimensions: {TargetGroup: "*"}}
objective: 0.999
"""


def spec(text: str = AVAILABILITY) -> slo.SloSpec:
    import yaml

    return slo.SloSpec.model_validate(yaml.safe_load(text))


def events(bad_per_period: list[int], total: int = 1000) -> pd.DataFrame:
    """Consecutive 5-minute periods from T0 with ``total`` requests each; returns the period frame."""
    index = pd.date_range(T0, periods=len(bad_per_period), freq="5min", name="timestamp")
    return pd.DataFrame({"good": [total - b for b in bad_per_period], "total": total}, index=index)


# --- arithmetic ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("total", "bad", "objective", "expected"),
    [
        pytest.param(1_000_000, 14_400, 0.999, 14.4, id="14400_errors_in_1M_requests_at_999_is_14_4x"),
        pytest.param(1_000_000, 1_000, 0.999, 1.0, id="spending_exactly_the_budget_is_1x"),
        pytest.param(1_000, 60, 0.99, 6.0, id="6pct_errors_at_99_is_6x"),
        pytest.param(200, 10, 0.95, 1.0, id="5pct_errors_at_95_is_1x"),
        pytest.param(50_000, 0, 0.999, 0.0, id="no_errors_is_0x"),
    ],
)
def test_burn_rate_is_error_rate_over_budget(total, bad, objective, expected):
    assert slo.burn_rate(total - bad, total, objective) == expected


def test_error_budget_of_three_nines_is_exactly_a_thousandth():
    assert slo.error_budget(0.999) == 0.001  # not 0.0010000000000000009, so 14.4x is not 14.399999


def test_burn_rate_at_the_threshold_fires():
    assert bool(slo.rule_fires(14.4, 14.4, 14.4))


@pytest.mark.parametrize(
    ("good", "total", "expected"),
    [
        pytest.param(999_500, 1_000_000, 0.5, id="half_the_errors_allowed_leaves_half"),
        pytest.param(1_000_000, 1_000_000, 1.0, id="no_errors_leaves_all"),
        pytest.param(998_800, 1_000_000, -0.2, id="overspent_by_a_fifth_is_minus_20pct"),
    ],
)
def test_budget_remaining(good, total, expected):
    assert slo.budget_remaining(good, total, 0.999) == pytest.approx(expected, abs=1e-12)


def test_budget_remaining_without_events_is_unknown():
    assert math.isnan(slo.budget_remaining(0, 0, 0.999))


def test_window_totals_count_only_periods_before_the_point():
    frame = events([1, 2, 3, 4])  # periods 00:00 .. 00:15
    points = pd.DatetimeIndex([T0 + pd.Timedelta(minutes=15)])  # sees 00:00, 00:05, 00:10
    totals = slo.window_totals(frame, points, timedelta(minutes=10))
    assert (int(totals.total[0]), int(totals.total[0] - totals.good[0])) == (2000, 5)  # periods 00:05 and 00:10


def test_evaluation_points_are_the_interval_ends_of_the_range():
    points = slo.evaluation_points(T0, T0 + pd.Timedelta(minutes=20))
    assert list(points.strftime("%H:%M")) == ["00:05", "00:10", "00:15", "00:20"]


# --- which points a run evaluates ----------------------------------------------------------------
NOW = datetime(2026, 11, 20, 12, tzinfo=UTC)


@pytest.fixture
def metrics_until(isolated_stores, monkeypatch):
    """How far metrics_extract has run for the connected account (``metrics.data_until``; its account
    keying and trust check are tested in tests/emulator/test_metrics_pipeline.py), as the test sets it.
    The connected account is pinned: a unit test asks no STS (tests/emulator/test_account_keyed_state.py
    covers the account keying)."""
    from aiops.core import identity
    from aiops.metrics import pipeline as metrics

    monkeypatch.setattr(identity, "current_account", lambda **_: "123456789012")

    until: list[datetime | None] = [None]
    monkeypatch.setattr(metrics, "data_until", lambda store=None, **_: until[0])

    def set_metrics_watermark(value: datetime) -> None:
        until[0] = value

    return set_metrics_watermark


def _evaluated_until(at: datetime) -> None:
    """A previous run evaluated up to ``at``: its history row exists and the watermark vouches for it (a
    watermark without its rows is not trusted; tests/emulator/test_account_keyed_state.py)."""
    from sqlalchemy import insert

    from aiops.core.state import StateStore, slo_history

    store = StateStore()
    store.migrate()
    with store.transaction() as conn:
        conn.execute(insert(slo_history).values(
            slo_id="web-availability", evaluated_at=at, service="web", objective=0.999, window_days=28,
            coverage=1.0, good=1.0, total=1.0, burn_rates={}, firing=[], severity="none"))
    pipeline.advance(at.isoformat())


def _range(task: dict) -> tuple[str, str, int]:
    return task["start"][11:16], task["end"][11:16], task["points"]


def test_scheduled_run_stops_where_the_metrics_have_settled(metrics_until):
    metrics_until(NOW)  # extracted up to 12:00; the last 10 minutes may still change
    assert _range(pipeline.plan(NOW + timedelta(minutes=5))) == ("11:45", "11:50", 1)


def test_scheduled_run_catches_up_from_its_watermark(metrics_until):
    metrics_until(NOW)
    _evaluated_until(NOW - timedelta(minutes=40))
    assert _range(pipeline.plan(NOW + timedelta(minutes=5))) == ("11:20", "11:50", 6)


def test_scheduled_run_waits_when_nothing_new_has_settled(metrics_until):
    metrics_until(NOW)
    _evaluated_until(NOW - timedelta(minutes=10))
    assert pipeline.plan(NOW + timedelta(minutes=10))["points"] == 0


def test_scheduled_run_before_any_extraction_evaluates_nothing(metrics_until):
    assert pipeline.plan(NOW)["points"] == 0


def test_backfill_evaluates_every_point_of_the_conf_range(isolated_stores):
    task = pipeline.plan(NOW, {"start": "2026-11-19T10:00:00Z", "end": "2026-11-19T11:00:00Z"})
    assert (task["mode"], task["emit_alerts"], _range(task)) == ("backfill", False, ("10:00", "11:00", 12))


# --- multi-window, multi-burn-rate ---------------------------------------------------------------
def _six_hours_then(last_hour: list[int]) -> pd.DataFrame:
    return events([0] * 60 + last_hour)  # 5 clean hours, then the hour under test (12 periods)


@pytest.mark.parametrize(
    ("last_hour", "severity"),
    [
        pytest.param([20] * 12, "page", id="long_and_short_window_burning_pages"),
        pytest.param([20] * 11 + [0], "none", id="long_burning_but_short_recovered_no_page"),
        pytest.param([0] * 11 + [100], "none", id="short_blip_but_long_calm_no_page"),
    ],
)
def test_page_needs_both_windows_over_the_threshold(last_hour, severity):
    # 20/1000 = 2% errors = 20x a 99.9% budget; the 1h window of 11 such periods burns 18.3x.
    point = pd.DatetimeIndex([T0 + pd.Timedelta(hours=6)])
    row = slo.evaluate(_six_hours_then(last_hour), spec(), point).iloc[0]
    assert row["severity"] == severity


def test_rule_does_not_fire_on_a_long_window_mostly_without_data():
    # 1 hour of data burning at 20x: the 1h rule pages, the 6h rule (6x) lacks half its window.
    row = slo.evaluate(events([20] * 12), spec(), pd.DatetimeIndex([T0 + pd.Timedelta(hours=1)])).iloc[0]
    assert row["firing"] == ["page-1h"]


@pytest.mark.parametrize(
    ("severities", "onsets"),
    [
        pytest.param(["none", "page", "page", "none", "page"], [1], id="flapping_within_the_quiet_period_pages_once"),
        pytest.param(["page"] + ["none"] * 12 + ["page"], [0, 13], id="a_new_burn_after_an_hour_of_quiet_pages_again"),
        pytest.param(["ticket", "ticket", "page", "ticket"], [0, 2], id="escalation_to_page_alerts"),
        pytest.param(["page", "ticket", "ticket"], [0], id="de_escalation_is_silent"),
    ],
)
def test_alerts_start_only_on_a_rise_above_the_quiet_period(severities, onsets):
    index = pd.date_range(T0, periods=len(severities), freq="5min")
    out = slo.alert_onsets(pd.Series(severities, index=index), timedelta(hours=1))
    assert [i for i, v in enumerate(out) if v] == onsets


def test_evaluating_a_point_again_from_a_different_range_start_gives_the_same_row():
    frame = events([i % 7 for i in range(400)])
    target = T0 + pd.Timedelta(hours=30)
    alone = slo.evaluate(frame, spec(), pd.DatetimeIndex([target]))
    within = slo.evaluate(frame, spec(), slo.evaluation_points(target - pd.Timedelta(hours=5), target))
    assert alone.iloc[0].drop("evaluated_at").to_dict() == within.iloc[-1].drop("evaluated_at").to_dict()


# --- from metrics-store rows to events -----------------------------------------------------------
def store_rows(rows: list[tuple]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=["timestamp", "metric", "value", "dimensions", "service", "env"])
    frame["timestamp"] = pd.to_datetime(frame["timestamp"], utc=True)
    frame["namespace"], frame["team"] = "AWS/ApplicationELB", "storefront"
    return frame


def test_missing_5xx_datapoint_means_no_errors():
    tg = "LoadBalancer=app/lb/1,TargetGroup=targetgroup/web/2"
    frame = store_rows([("2026-11-20T00:00Z", "RequestCount", 100.0, tg, "web", "prod"),
                        ("2026-11-20T00:00Z", "HTTPCode_Target_5XX_Count", 3.0, tg, "web", "prod"),
                        ("2026-11-20T00:05Z", "RequestCount", 50.0, tg, "web", "prod")])
    got = slo.period_events(frame, spec())
    assert got.to_dict("list") == {"good": [97, 50], "total": [100, 50]}


def test_load_balancer_level_and_other_service_series_are_not_counted():
    frame = store_rows([
        ("2026-11-20T00:00Z", "RequestCount", 100.0, "LoadBalancer=app/lb/1,TargetGroup=targetgroup/web/2", "web", "prod"),
        ("2026-11-20T00:00Z", "RequestCount", 900.0, "LoadBalancer=app/lb/1", "web", "prod"),
        ("2026-11-20T00:00Z", "RequestCount", 700.0, "LoadBalancer=app/lb/1,TargetGroup=targetgroup/x/3", "x", "prod"),
        ("2026-11-20T00:00Z", "RequestCount", 500.0, "LoadBalancer=app/lb/9,TargetGroup=targetgroup/web/4", "web",
         "staging"),
    ])
    assert slo.period_events(frame, spec())["total"].tolist() == [100]


def test_latency_time_slice_is_bad_when_the_worst_target_group_is_slow():
    latency = AVAILABILITY.replace("{type: ratio, total: RequestCount, bad: HTTPCode_Target_5XX_Count}",
                                   "{type: latency, threshold_seconds: 0.4}")
    frame = store_rows([("2026-11-20T00:00Z", "TargetResponseTime", 0.2, "TargetGroup=a", "web", "prod"),
                        ("2026-11-20T00:00Z", "TargetResponseTime", 0.5, "TargetGroup=b", "web", "prod"),
                        ("2026-11-20T00:05Z", "TargetResponseTime", 0.39, "TargetGroup=a", "web", "prod")])
    assert slo.period_events(frame, spec(latency)).to_dict("list") == {"good": [0, 1], "total": [1, 1]}


# --- YAML ----------------------------------------------------------------------------------------
def test_shipped_slos_load():
    loaded = slo.load_slos(REPO / "include" / "slos")
    assert loaded.errors == []
    assert sorted(loaded.slos) == ["catalog-availability", "catalog-latency", "checkout-availability",
                                   "payments-availability"]
    for sid in ("checkout-availability", "catalog-availability", "payments-availability"):
        assert (loaded.slos[sid].objective, loaded.slos[sid].window, loaded.slos[sid].env) == (
            0.999, timedelta(days=28), "prod")
    rules = [(r.severity, r.burn_rate, r.long_window, r.short_window)
             for r in loaded.slos["checkout-availability"].alerting.rules]
    assert rules == [("page", 14.4, timedelta(hours=1), timedelta(minutes=5)),
                     ("page", 6.0, timedelta(hours=6), timedelta(minutes=30)),
                     ("ticket", 1.0, timedelta(days=3), timedelta(hours=6))]


@pytest.mark.parametrize(
    ("text", "field", "message"),
    [
        pytest.param(AVAILABILITY + "objectve: 0.99\n", "objectve", "Extra inputs", id="misspelt_field"),
        pytest.param(AVAILABILITY.replace("0.999", "1.5"), "objective", "less than 1", id="objective_above_one"),
        pytest.param(AVAILABILITY.replace("bad: HTTPCode_Target_5XX_Count", "bad: A, good: B"), "indicator",
                     "exactly one of", id="ratio_with_good_and_bad"),
        pytest.param(AVAILABILITY.replace("type: ratio", "type: vibes"), "indicator", "tag", id="unknown_sli_type"),
        pytest.param(AVAILABILITY.replace("service: web, env", "owner: web, env"), "selector.tags", "owner",
                     id="tag_the_store_does_not_carry"),
        pytest.param(AVAILABILITY + "window: 12h\n", "window", "whole days", id="window_not_in_days"),
        pytest.param(AVAILABILITY + "alerting: {rules: [{name: fast, severity: page, long_window: 5m, "
                     "short_window: 1h, burn_rate: 10}]}\n", "alerting.rules.0", "shorter",
                     id="short_window_longer_than_long"),
        pytest.param("slos:\n  - " + AVAILABILITY.strip().replace("\n", "\n    ") + "\n    window: 7m\n",
                     "slos.0.window", "whole days", id="field_of_an_slo_in_a_list"),
        pytest.param("- just\n- a list\n", "", "expected a mapping", id="not_a_mapping"),
    ],
)
def test_invalid_file_names_file_and_field_while_others_load(tmp_path, text, field, message):
    (tmp_path / "a_good.yaml").write_text(AVAILABILITY)
    (tmp_path / "b_bad.yaml").write_text(text)
    loaded = slo.load_slos(tmp_path)
    assert list(loaded.slos) == ["web-availability"]
    [err] = loaded.errors
    assert (err.path.name, err.field) == ("b_bad.yaml", field)
    assert message in err.message
    assert str(err).startswith(str(tmp_path / "b_bad.yaml"))


def test_duplicate_slo_id_is_reported_on_the_second_file(tmp_path):
    (tmp_path / "a.yaml").write_text(AVAILABILITY)
    (tmp_path / "b.yaml").write_text(AVAILABILITY)
    loaded = slo.load_slos(tmp_path)
    assert [(e.path.name, e.field) for e in loaded.errors] == [("b.yaml", "id")]
    assert loaded.sources["web-availability"].name == "a.yaml"


# --- dashboards ----------------------------------------------------------------------------------
DIMS = {"LoadBalancer": "app/storefront-prod-alb/0d45", "TargetGroup": "targetgroup/catalog-prod-tg/f685"}


@pytest.fixture
def catalog_body():
    loaded = slo.load_slos(REPO / "include" / "slos")
    specs = [s for s in loaded if s.service == "catalog"]
    series = {s.id: [{"metric": m, "dimensions": DIMS, "team": "storefront"} for m in s.indicator.metrics]
              for s in specs}
    return pipeline.dashboard_body("catalog", specs, series, "us-east-1"), specs


def test_dashboard_widgets_have_the_documented_shape(catalog_body):
    body, specs = catalog_body
    assert json.loads(json.dumps(body)) == body
    assert len(body["widgets"]) == 4 * len(specs)
    cells = set()
    for w in body["widgets"]:
        assert {"type", "x", "y", "width", "height", "properties"} <= set(w)
        assert w["type"] in {"metric", "text"}
        assert w["x"] >= 0
        assert w["x"] + w["width"] <= 24
        cells |= {(x, y) for x in range(w["x"], w["x"] + w["width"]) for y in range(w["y"], w["y"] + w["height"])}
        if w["type"] == "metric":
            assert w["properties"]["region"] == "us-east-1"
            assert w["properties"]["metrics"]
    assert len(cells) == sum(w["width"] * w["height"] for w in body["widgets"])  # no overlaps


def test_dashboard_metrics_reference_the_series_dimensions(catalog_body):
    body, _ = catalog_body
    rows = [m for w in body["widgets"] if w["type"] == "metric" for m in w["properties"]["metrics"]]
    ids = {m[-1]["id"] for m in rows if isinstance(m[-1], dict) and "id" in m[-1]}
    for m in rows:
        if isinstance(m[0], dict):  # metric math: every id it uses exists
            used = set(re.findall(r"\b[a-z]\d+\b", m[0]["expression"])) - {m[0]["id"]}
            assert used <= ids, m
            continue
        names = [x for x in m[2:] if not isinstance(x, dict)]
        pairs = dict(zip(names[::2], names[1::2], strict=True))
        if m[0] == pipeline.METRIC_NAMESPACE:
            assert set(pairs) == {"SloId", "Service"}
            assert pairs["Service"] == "catalog"
        else:
            assert pairs == DIMS


def test_dashboard_sli_is_metric_math_on_the_alb_counts(catalog_body):
    body, _ = catalog_body
    widget = next(w for w in body["widgets"] if w["properties"].get("title") == "catalog-availability: SLI (%)")
    expressions = [m[0]["expression"] for m in widget["properties"]["metrics"] if isinstance(m[0], dict)]
    assert expressions == ["100*(1-FILL(m2,0)/m1)"]
    assert widget["properties"]["annotations"]["horizontal"][0]["value"] == pytest.approx(99.9)


# --- custom metrics, report, policy --------------------------------------------------------------
def history_row(**overrides) -> dict:
    row = {"slo_id": "web-availability", "service": "web", "env": "prod", "team": "storefront",
           "evaluated_at": pd.Timestamp("2026-11-20T12:00Z"), "objective": 0.999, "window_days": 28,
           "sli": 0.9995, "budget_remaining": 0.5, "coverage": 0.5, "good": 9995.0, "total": 10000.0,
           "burn_rates": {"5m": 0.2, "1h": None}, "firing": [], "severity": "none", "alert": None,
           "fingerprint": None}
    return {**row, **overrides}


def test_custom_metrics_are_percent_and_per_window_and_skip_unknowns():
    items = pipeline.metric_data(pd.DataFrame([history_row()]), datetime(2026, 11, 20, 12, tzinfo=UTC))
    assert {i["MetricName"]: i["Value"] for i in items} == {"SLI": pytest.approx(99.95),
                                                           "ErrorBudgetRemaining": 50.0, "BurnRate5m": 0.2}
    assert all(i["Dimensions"] == [{"Name": "SloId", "Value": "web-availability"},
                                   {"Name": "Service", "Value": "web"}] for i in items)


def test_report_escapes_every_value():
    evil = "<script>alert(1)</script>"
    summary = pipeline.report_summary(pd.DataFrame([history_row(service=evil, team=evil, slo_id=f"x{evil}")]))
    html = pipeline.render_report_html(summary, datetime(2026, 11, 16, tzinfo=UTC), datetime(2026, 11, 23, tzinfo=UTC),
                                       {f"x{evil}": "data:image/png;base64,AAAA"})
    assert "<script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_report_table_counts_the_alerts_that_started_this_week():
    rows = [history_row(evaluated_at=T0 + pd.Timedelta(minutes=5 * i), alert=a, budget_remaining=r)
            for i, (a, r) in enumerate([(None, 0.6), ("page", 0.5), (None, 0.4), ("ticket", -0.1)])]
    [summary] = pipeline.report_summary(pd.DataFrame(rows))
    assert (summary["pages"], summary["tickets"], summary["status"]) == (1, 1, "budget exhausted")
    assert summary["budget_change_week"] == pytest.approx(-0.7)


def test_exhausted_budget_reason_names_the_slo_and_what_is_left():
    rows = [{"slo_id": "checkout-availability", "budget_remaining": -0.12},
            {"slo_id": "checkout-latency", "budget_remaining": 0.4}]
    assert exhausted_reason(rows) == "error budget of checkout-availability exhausted (-12% remaining)"


def test_low_risk_runbooks_are_not_held_by_the_budget():
    plan = {"risk": "low", "targets": [{"id": "i-1", "tags": {"service": "checkout", "env": "prod"}}]}
    assert error_budget_policy(plan) is None
