"""The Prophet-backed detector on small synthetic series: what it flags, what it leaves alone, and the
contract (causality, chunking, JSON round trips, spec loading)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from aiops.anomaly import SCORE_COLUMNS
from aiops.anomaly.detector import INSUFFICIENT, MISSING, Detector, DetectorState, FittedModel
from aiops.anomaly.spec import ModelSpec, load_specs
from aiops.core.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]
STEP = pd.Timedelta(minutes=5)


def daily(days: float = 4, noise: float = 1.0, seed: int = 1, start: str = "2026-03-02") -> pd.Series:
    """A CPU-like series: 40% +- 10% daily cycle plus Gaussian noise, 5-minute points, UTC."""
    idx = pd.date_range(start, periods=int(days * 288), freq=STEP, tz="UTC")
    rng = np.random.default_rng(seed)
    hours = (idx.hour + idx.minute / 60).to_numpy()
    return pd.Series(40 + 10 * np.sin(2 * np.pi * hours / 24) + rng.normal(0, noise, len(idx)), index=idx)


@pytest.fixture(scope="module")
def spec() -> ModelSpec:
    specs = load_specs(REPO / "include" / "models")
    assert not specs.errors
    return specs["cpu"]


@pytest.fixture(scope="module")
def detector(spec: ModelSpec) -> Detector:
    return Detector(spec)


@pytest.fixture(scope="module")
def base() -> pd.Series:
    return daily()


@pytest.fixture(scope="module")
def base_scored(detector: Detector, base: pd.Series) -> pd.DataFrame:
    return detector.score_series(base)


def alarms(scored: pd.DataFrame) -> list[int]:
    return np.flatnonzero(scored["is_anomaly"].to_numpy()).tolist()


# -- behaviour --------------------------------------------------------------------------------------


def test_columns_and_score_range(base_scored: pd.DataFrame, base: pd.Series) -> None:
    assert list(base_scored.columns) == SCORE_COLUMNS
    assert len(base_scored) == len(base)
    assert base_scored["anomaly_score"].between(0, 1).all()


def test_clean_series_raises_few_alarms_once_seasonality_is_fitted(base_scored: pd.DataFrame) -> None:
    # from day 2 the model has its daily seasonality (Prophet's rule: two cycles of history); before
    # that a strong daily cycle is followed by the adaptation alone and costs a few alarms
    assert len([i for i in alarms(base_scored) if i >= 2 * 288]) <= 1


@pytest.mark.parametrize(
    ("offset", "size"),
    [pytest.param(3 * 288 + 100, 15.0, id="spike-up"), pytest.param(3 * 288 + 200, -15.0, id="spike-down")],
)
def test_spike_is_detected_at_onset(detector: Detector, base: pd.Series, offset: int, size: float) -> None:
    s = base.copy()
    s.iloc[offset] += size
    scored = detector.score_series(s)
    assert offset in alarms(scored)
    reason = scored["reason"].iloc[offset]
    assert reason.startswith("CPU ")
    assert "% vs expected " in reason


def test_level_shift_alarms_once_then_readapts(detector: Detector, base: pd.Series) -> None:
    s = base.copy()
    at = 2 * 288 + 150
    s.iloc[at:] += 20.0
    scored = detector.score_series(s)
    fired = alarms(scored)
    assert any(at <= i <= at + 3 for i in fired)
    later = [i for i in fired if i > at + 3]
    assert len(later) <= 1  # the new level is the new normal: no endless alarms


@pytest.mark.parametrize("value", [pytest.param(0.0, id="all-zero"), pytest.param(42.0, id="flat-line")])
def test_constant_series_stay_quiet(detector: Detector, value: float) -> None:
    idx = pd.date_range("2026-03-02", periods=3 * 288, freq=STEP, tz="UTC")
    scored = detector.score_series(pd.Series(value, index=idx))
    assert not scored["is_anomaly"].any()
    assert (scored["anomaly_score"] == 0).all()


def test_gap_and_irregular_timestamps_are_handled(detector: Detector, base: pd.Series) -> None:
    s = base.drop(base.index[400:480])  # a 6.7 h gap
    jitter = pd.to_timedelta(np.random.default_rng(3).integers(-60, 60, len(s)), unit="s")
    s.index = s.index + jitter
    scored = detector.score_series(s)
    assert len(scored) == len(s)
    assert scored["timestamp"].is_monotonic_increasing
    assert scored["forecast"].iloc[200:].notna().all()
    after = scored["timestamp"] >= s.index[0] + pd.Timedelta(days=2.5)
    assert scored.loc[after, "is_anomaly"].sum() <= 1


def test_cold_start_says_insufficient_history_and_never_alarms(detector: Detector) -> None:
    s = daily(days=0.4)  # under the 12 h of min_history_hours
    s.iloc[50] += 100.0
    scored = detector.score_series(s)
    assert (scored["reason"] == INSUFFICIENT).all()
    assert not scored["is_anomaly"].any()
    assert scored["forecast"].isna().all()


def test_first_hours_of_a_longer_series_are_cold(base_scored: pd.DataFrame) -> None:
    assert (base_scored["reason"].iloc[:144] == INSUFFICIENT).all()
    assert base_scored["forecast"].iloc[144:].notna().all()


def test_nan_values_are_reported_missing_and_skipped(detector: Detector, base: pd.Series) -> None:
    s = base.copy()
    s.iloc[[500, 501, 700]] = np.nan
    scored = detector.score_series(s)
    assert (scored["reason"].iloc[[500, 501, 700]] == MISSING).all()
    assert not scored["is_anomaly"].iloc[[500, 501, 700]].any()
    assert scored["forecast"].iloc[502:700].notna().all()


def test_daily_recurring_spike_is_explained_by_the_seasonal_envelope(
    detector: Detector, base: pd.Series
) -> None:
    s = base.copy()
    for day in range(4):  # a nightly job at ~03:00 (+- 20 min), same size each day
        s.iloc[day * 288 + 36 + (day % 3) * 2] += 30.0
    fired = alarms(detector.score_series(s))
    later_jobs = [d * 288 + 36 + (d % 3) * 2 for d in (2, 3)]
    assert not set(later_jobs) & set(fired)


# -- contract -----------------------------------------------------------------------------------------


def test_prefix_scores_do_not_change_when_data_is_appended(detector: Detector, base: pd.Series) -> None:
    s = base.copy()
    s.iloc[2 * 288 + 100] += 15.0
    cut = 3 * 288 + 37  # mid-day, not on a refit boundary
    full = detector.score_series(s)
    prefix = detector.score_series(s.iloc[:cut])
    pd.testing.assert_frame_equal(prefix, full.iloc[:cut].reset_index(drop=True))


def test_score_series_equals_fit_and_step_chunk_by_chunk(detector: Detector, base: pd.Series) -> None:
    s = base.copy()
    s.iloc[2 * 288 + 100] += 15.0
    expected = detector.score_series(s)
    bounds = detector.refit_boundaries(s)
    state = detector.new_state()
    parts = []
    out, state = detector.step(s[s.index < bounds[0]], None, state)
    parts.append(out)
    for i, b in enumerate(bounds):
        end = bounds[i + 1] if i + 1 < len(bounds) else s.index[-1] + STEP
        model = detector.fit(s[s.index < b], fitted_at=b)
        chunk = s[(s.index >= b) & (s.index < end)]
        for piece in np.array_split(np.arange(len(chunk)), 3):  # and in smaller steps inside the day
            out, state = detector.step(chunk.iloc[piece], model, state)
            parts.append(out)
    pd.testing.assert_frame_equal(pd.concat(parts, ignore_index=True), expected)


@pytest.fixture(scope="module")
def fitted(detector: Detector, base: pd.Series) -> FittedModel:
    return detector.fit(base.iloc[: 2 * 288], fitted_at=base.index[2 * 288])


@pytest.mark.parametrize(
    "sizes", [pytest.param([1] * 5 + [50, 94], id="singles"), pytest.param([33, 67], id="halves")]
)
def test_step_in_chunks_equals_one_call(
    detector: Detector, base: pd.Series, fitted: FittedModel, sizes: list[int]
) -> None:
    warm, new = base.iloc[: 2 * 288], base.iloc[2 * 288 : 2 * 288 + 100].copy()
    new.iloc[40] += 15.0
    _, state0 = detector.step(warm, fitted, detector.new_state())
    one, end_one = detector.step(new, fitted, state0)
    parts, state = [], state0
    start = 0
    for n in sizes:
        out, state = detector.step(new.iloc[start : start + n], fitted, state)
        parts.append(out)
        start += n
    pd.testing.assert_frame_equal(pd.concat(parts, ignore_index=True), one)
    assert state.to_json() == end_one.to_json()


def test_step_ignores_points_already_scored(detector: Detector, base: pd.Series, fitted: FittedModel) -> None:
    _, state = detector.step(base.iloc[: 2 * 288 + 10], fitted, detector.new_state())
    out, _ = detector.step(base.iloc[2 * 288 : 2 * 288 + 20], fitted, state)
    assert len(out) == 10


def test_fitted_model_json_round_trip(detector: Detector, fitted: FittedModel, base: pd.Series) -> None:
    back = FittedModel.from_json(fitted.to_json())
    assert back.to_json() == fitted.to_json()
    t = base.index[2 * 288 : 2 * 288 + 50].as_unit("ns").asi8
    np.testing.assert_allclose(back.predict(t), fitted.predict(t), rtol=1e-9)


def test_state_json_round_trip_scores_identically(
    detector: Detector, base: pd.Series, fitted: FittedModel
) -> None:
    _, state = detector.step(base.iloc[: 2 * 288 + 30], fitted, detector.new_state())
    back = DetectorState.from_json(state.to_json())
    assert back == state
    nxt = base.iloc[2 * 288 + 30 : 2 * 288 + 60]
    a, _ = detector.step(nxt, fitted, state)
    b, _ = detector.step(nxt, FittedModel.from_json(fitted.to_json()), back)
    pd.testing.assert_frame_equal(a, b)


def test_constant_history_fits_a_constant_model(detector: Detector) -> None:
    idx = pd.date_range("2026-03-02", periods=300, freq=STEP, tz="UTC")
    model = detector.fit(pd.Series(0.0, index=idx))
    assert model.kind == "constant"
    assert FittedModel.from_json(model.to_json()).predict(idx.as_unit("ns").asi8[:3]).tolist() == [
        0.0,
        0.0,
        0.0,
    ]


# -- specs ----------------------------------------------------------------------------------------


def test_shipped_specs_load_and_route_series() -> None:
    specs = load_specs(REPO / "include" / "models")
    assert not specs.errors
    assert specs.for_series("AWS/EC2", "CPUUtilization").family == "cpu"
    assert specs.for_series("AWS/EC2", "NetworkIn").family == "bytes"
    assert specs.for_series("AWS/ApplicationELB", "HTTPCode_Target_5XX_Count").family == "count"
    assert specs.for_series("AWS/Lambda", "Duration").family == "default"
    assert specs["cpu"].components == specs["default"].components  # families inherit default.yaml


@pytest.mark.parametrize(
    ("text", "field"),
    [
        pytest.param("family: bad\nthreshold: 2\n", "threshold", id="out-of-range"),
        pytest.param(
            "family: bad\ncomponents: {adapt_window: many}\n", "components.adapt_window", id="wrong-type"
        ),
        pytest.param("family: bad\ncolour: red\n", "colour", id="unknown-field"),
        pytest.param("family: other\n", "family", id="family-not-file-name"),
        pytest.param("family: bad\nprophet: [1, 2\n", "", id="not-yaml"),
    ],
)
def test_malformed_spec_is_rejected_naming_file_and_field(tmp_path: Path, text: str, field: str) -> None:
    (tmp_path / "default.yaml").write_text("family: default\nlabel: Value\n")
    (tmp_path / "good.yaml").write_text("family: good\nlabel: Good\nunit: percent\n")
    (tmp_path / "bad.yaml").write_text(text)
    specs = load_specs(tmp_path)
    assert sorted(specs.specs) == ["default", "good"]
    assert len(specs.errors) == 1
    err = specs.errors[0]
    assert isinstance(err, ConfigError)
    assert err.path.name == "bad.yaml"
    assert err.field == field
    assert "bad.yaml" in str(err)


def test_missing_default_falls_back_to_built_in(tmp_path: Path) -> None:
    specs = load_specs(tmp_path)
    assert specs.for_series("AWS/EC2", "CPUUtilization").family == "default"


def test_percent_band_stays_within_0_and_100(detector: Detector) -> None:
    s = daily(days=3, noise=2.0) + 58.0  # CPU around 98% with a daily cycle: the band would pass 100
    scored = detector.score_series(s.clip(upper=100.0))
    band = scored[["forecast", "lower", "upper"]].dropna()
    assert ((band >= 0) & (band <= 100)).all().all()


@pytest.mark.parametrize(
    ("escalation", "realarms"),
    [pytest.param(0.0, False, id="off-by-default"), pytest.param(5.0, True, id="on")],
)
def test_suppression_escalation(spec: ModelSpec, base: pd.Series, escalation: float, realarms: bool) -> None:
    det = Detector(spec.with_components(suppress_escalation=escalation, suppress_rearm_points=0, suppress_points=72))
    s = base.copy()
    small, big = 3 * 288 + 50, 3 * 288 + 90  # a 6-sigma blip, then a far worse spike inside the quiet period
    s.iloc[small] += 6.0
    s.iloc[big] += 60.0
    fired = alarms(det.score_series(s))
    assert small in fired
    assert (big in fired) is realarms


@pytest.mark.parametrize(
    ("rearm", "realarms"),
    [pytest.param(0, False, id="off"), pytest.param(36, True, id="after-3h-calm")],
)
def test_quiet_period_ends_after_calm(spec: ModelSpec, base: pd.Series, rearm: int, realarms: bool) -> None:
    """A blip starts a 6-hour quiet period; a new, unrelated spike 4 hours later (after 3 calm hours)
    alarms again only when the re-arm rule is on."""
    det = Detector(spec.with_components(suppress_rearm_points=rearm, suppress_points=72))
    s = base.copy()
    first, second = 3 * 288 + 20, 3 * 288 + 20 + 48  # 48 points = 4 h apart, inside 72 points of quiet
    s.iloc[first] += 12.0
    s.iloc[second] += 30.0
    fired = alarms(det.score_series(s))
    assert first in fired
    assert (second in fired) is realarms


def test_shipped_quiet_period_lets_a_new_incident_alarm_after_3_hours(spec: ModelSpec, base: pd.Series) -> None:
    """The shipped 3 h quiet period (no separate re-arm rule): a spike 4 h after an unrelated blip alarms,
    the points right after the blip do not."""
    assert spec.components.suppress_points == 36
    assert spec.components.suppress_rearm_points == 0
    s = base.copy()
    first, second = 3 * 288 + 20, 3 * 288 + 20 + 48
    s.iloc[first : first + 3] += 30.0
    s.iloc[second] += 30.0
    fired = alarms(Detector(spec).score_series(s))
    assert first in fired
    assert first + 1 not in fired
    assert first + 2 not in fired
    assert second in fired


@pytest.mark.parametrize(
    ("min_score", "lone_alarms"),
    [pytest.param(0.0, True, id="off"), pytest.param(0.95, False, id="two-point-confirmation")],
)
def test_single_point_confirmation(spec: ModelSpec, base: pd.Series, min_score: float, lone_alarms: bool) -> None:
    det = Detector(spec.with_components(single_point_min_score=min_score))
    s = base.copy()
    lone, held = 3 * 288 + 20, 3 * 288 + 200
    s.iloc[lone] += 12.0  # one moderate point
    s.iloc[held:held + 3] += 12.0  # the same deviation held for 15 minutes
    scored = det.score_series(s)
    fired = alarms(scored)
    assert (lone in fired) is lone_alarms
    assert held in fired or held + 1 in fired  # a held deviation alarms either way (one point later at most)
    assert ((scored["anomaly_score"] >= spec.threshold) == scored["is_anomaly"]).all()


# -- tail calibration (a deviation judged against the series' own history) ---------------------------


def test_tail_factor_is_one_on_gaussian_and_large_on_heavy_tails() -> None:
    from aiops.anomaly.residuals import tail_factor

    rng = np.random.default_rng(5)
    gauss = rng.normal(size=3000)
    heavy = rng.standard_t(1.5, size=3000)
    assert tail_factor(gauss, 2016, 0.99, 288, 50)[-50:] == pytest.approx(1.0, abs=0.1)
    assert (tail_factor(heavy, 2016, 0.99, 288, 50)[-50:] > 2.0).all()
    # only the trailing window matters: asking for fewer rows gives the same values
    full = tail_factor(heavy, 2016, 0.99, 288, 3000)
    assert tail_factor(heavy, 2016, 0.99, 288, 7)[-7:] == pytest.approx(full[-7:])
    assert tail_factor(heavy[-2100:], 2016, 0.99, 288, 7)[-7:] == pytest.approx(full[-7:])
    assert (full[:288] == 1.0).all()  # too little history: no calibration


def _calibrated(spec: ModelSpec, window: int = 300) -> Detector:
    comps = spec.components.model_copy(update={"tail_calibration": True, "calibration_window": window,
                                               "calibration_min_points": 100})
    return Detector(spec.model_copy(update={"components": comps}))


def _chunked_equals_one_call(det: Detector, s: pd.Series, pieces: int) -> pd.DataFrame:
    """Score s[2 days:] in one step and in ``pieces`` steps from the same state; they must agree."""
    model = det.fit(s.iloc[: 2 * 288], fitted_at=s.index[2 * 288])
    _, state0 = det.step(s.iloc[: 2 * 288], model, det.new_state())
    one, _ = det.step(s.iloc[2 * 288 :], model, state0)
    parts, state = [], state0
    for piece in np.array_split(np.arange(2 * 288, len(s)), pieces):
        out, state = det.step(s.iloc[piece], model, state)
        parts.append(out)
    pd.testing.assert_frame_equal(pd.concat(parts, ignore_index=True), one)
    return one


def test_calibrated_detector_steps_in_chunks_like_one_call(spec: ModelSpec, base: pd.Series) -> None:
    s = base.copy()
    s.iloc[3 * 288 + 50] += 15.0
    one = _chunked_equals_one_call(_calibrated(spec), s, 7)
    assert one["is_anomaly"].iloc[288 + 50]  # the spike on a Gaussian series still alarms


def test_tail_calibration_quietens_a_bursty_series(spec: ModelSpec) -> None:
    s = daily(days=6, seed=3)
    rng = np.random.default_rng(9)
    bursts = rng.choice(np.arange(288, len(s)), size=60, replace=False)  # ~10 bursts a day, every day
    s.iloc[bursts] += rng.uniform(8, 14, size=len(bursts))
    last = s.index >= s.index[0] + pd.Timedelta(days=4)
    plain = Detector(spec).score_series(s)
    calibrated = _calibrated(spec, window=576).score_series(s)
    assert calibrated["is_anomaly"][last].sum() < plain["is_anomaly"][last].sum()


# -- repeat discount (issue 13): a deviation the series keeps producing is less surprising -----------


def _repeat(spec: ModelSpec, window: int = 576, episodes: bool = False) -> Detector:
    comps = spec.components.model_copy(
        update={"repeat_discount": True, "repeat_window": window, "repeat_episodes": episodes}
    )
    return Detector(spec.model_copy(update={"components": comps}))


def test_trailing_count_ge_counts_points_or_runs_before_each_row() -> None:
    from aiops.anomaly.residuals import trailing_count_ge

    x = np.array([5.0, 5.0, 1.0, 5.0, np.nan, 6.0, 4.0])
    assert trailing_count_ge(x, 6, len(x)).tolist() == [0, 1, 2, 2, 0, 0, 4]
    assert trailing_count_ge(x, 6, len(x), episodes=True).tolist() == [0, 1, 1, 1, 0, 0, 3]  # NaN ends a run
    assert trailing_count_ge(x, 2, 2).tolist() == [0, 0, 0, 0, 0, 0, 1]  # only the last rows, window of 2


@pytest.mark.parametrize("episodes", [False, True], ids=["points", "episodes"])
def test_repeat_discount_steps_in_chunks_like_one_call(spec: ModelSpec, base: pd.Series, episodes: bool) -> None:
    s = base.copy()
    s.iloc[[2 * 288 + 20, 2 * 288 + 200, 3 * 288 + 50]] += 15.0
    one = _chunked_equals_one_call(_repeat(spec, window=300, episodes=episodes), s, 9)
    assert one["is_anomaly"].iloc[20]  # the first spike of its size alarms at full strength


def test_repeat_discount_lowers_repeats_and_keeps_a_novel_spike(spec: ModelSpec) -> None:
    s = daily(days=6, seed=3)
    rng = np.random.default_rng(9)
    bursts = np.sort(rng.choice(np.arange(2 * 288, len(s) - 288), size=40, replace=False))
    s.iloc[bursts] += 8.0  # the same burst again and again, at random times of day
    novel = len(s) - 100
    s.iloc[novel] += 40.0  # larger than anything before it
    # suppression and the envelope off in both: the raw score of every burst is compared
    comps = spec.components.model_copy(
        update={"seasonal_envelope": False, "suppression": False, "repeat_discount": False}
    )
    plain_spec = spec.model_copy(update={"components": comps})
    plain = Detector(plain_spec).score_series(s)["anomaly_score"].to_numpy()
    discounted = _repeat(plain_spec, window=2016).score_series(s)["anomaly_score"].to_numpy()
    assert np.all(discounted <= plain + 1e-4)  # surprises are kept to 4 decimals
    assert discounted[bursts[0]] == pytest.approx(plain[bursts[0]], abs=1e-4)  # nothing as surprising before it
    later = bursts[len(bursts) // 2 :]
    half = spec.components.score_half
    surprise = lambda sc: half * sc / (1.0 - sc)  # noqa: E731  (anomaly_score -> -log10 p)
    # each later burst follows others at least as surprising: its p-value is at least doubled
    assert np.median(surprise(plain[later]) - surprise(discounted[later])) > np.log10(2.0)
    assert discounted[novel] == pytest.approx(plain[novel], abs=1e-4)
    assert discounted[novel] > spec.threshold


def test_repeat_normal_after_makes_a_recurring_burst_normal(spec: ModelSpec) -> None:
    s = daily(days=6, seed=3)
    bursts = [2 * 288 + 40, 2 * 288 + 200, 3 * 288 + 90, 4 * 288 + 10, 5 * 288 + 100]  # random times of day
    s.iloc[bursts] += [14.0, 14.0, 14.0, 10.0, 10.0]  # the later ones no bigger than the first three
    comps = spec.components.model_copy(update={"seasonal_envelope": False, "suppression": False})
    off = Detector(spec.model_copy(update={"components": comps}))
    on = Detector(spec.model_copy(update={"components": comps.model_copy(update={"repeat_normal_after": 3})}))
    plain, normal = off.score_series(s)["is_anomaly"], on.score_series(s)["is_anomaly"]
    assert plain.iloc[bursts].all()  # the discount alone: (1 + k) x cannot tame a 10-sigma burst
    assert normal.iloc[bursts[:3]].all()
    assert not normal.iloc[bursts[3:]].any()


def test_alert_evidence_names_the_repeat_discount(spec: ModelSpec) -> None:
    assert spec.components.repeat_discount  # shipped on
    assert "repeat_discount" in Detector(spec).evidence(90.0, 40.0, 30.0, 50.0, 0.8)["pipeline"]
    off = spec.model_copy(update={"components": spec.components.model_copy(update={"repeat_discount": False})})
    assert "repeat_discount" not in Detector(off).evidence(90.0, 40.0, 30.0, 50.0, 0.8)["pipeline"]
