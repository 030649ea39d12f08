"""The detector against the simulated account's ground truth: every detectable injected anomaly is
found near its onset, and clean series stay (almost) quiet."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from aiops.anomaly.detector import Detector
from aiops.anomaly.spec import load_specs
from aiops.core.settings import get_settings

pytestmark = [pytest.mark.emulator, pytest.mark.slow]
ANCHOR = datetime(2026, 11, 20, 12, tzinfo=UTC)
DAYS = 8


def score(series_def) -> pd.DataFrame:
    t = np.arange((ANCHOR - timedelta(days=DAYS)).timestamp(), ANCHOR.timestamp(), 300).astype(np.int64)
    values = pd.Series(series_def.values(t), index=pd.to_datetime(t, unit="s", utc=True))
    spec = load_specs(get_settings().include_dir / "models").for_series(series_def.namespace, series_def.metric)
    return Detector(spec).score_series(values)


def _iso(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def detectable(seeded):
    out = []
    for s in seeded.series:
        for a in s.anomalies:
            if a["detectable"] and _iso(a["start"]) > ANCHOR - timedelta(days=DAYS - 2):
                out.append(pytest.param(s, a, id=f"{s.resource}:{s.metric}:{a['kind']}"))
    return out


@pytest.fixture(scope="module")
def cases(seeded):
    return detectable(seeded)


def test_every_detectable_anomaly_is_found_near_its_onset(cases):
    missed = []
    for case in cases:
        series_def, anomaly = case.values
        scored = score(series_def)
        onset = _iso(anomaly["start"])
        near = scored[(scored["timestamp"] >= onset - timedelta(minutes=10))
                      & (scored["timestamp"] <= onset + timedelta(hours=2))]
        if not near["is_anomaly"].any():
            missed.append(f"{case.id} at {anomaly['start']} (max score {near['anomaly_score'].max():.2f})")
    assert missed == [], "missed injected anomalies:\n" + "\n".join(missed)


@pytest.mark.xfail(strict=True, reason="issue 13 open: one sampled clean CPU series still gets 3 alerts in 3 days")
def test_clean_series_stay_quiet(seeded):
    clean_ids = set(seeded.manifest["clean_series"])
    rng = np.random.default_rng(7)
    candidates = [s for s in seeded.series if s.series_id in clean_ids and s.metric != "StatusCheckFailed"]
    sample = [candidates[i] for i in rng.choice(len(candidates), size=6, replace=False)]
    noisy = []
    for s in sample:
        scored = score(s)
        last_days = scored[scored["timestamp"] >= ANCHOR - timedelta(days=3)]
        flags = last_days["is_anomaly"].to_numpy()
        episodes = int(np.sum(flags[1:] & ~flags[:-1]) + (flags[0] if len(flags) else 0))
        if episodes > 1:  # at most one alert in three days on a healthy series
            noisy.append(f"{s.series_id}: {episodes} alerts in 3 days")
    assert noisy == [], "\n".join(noisy)
