"""The noise-reduction replay on the seeded account's manifest: every injected incident becomes an
incident candidate, raw events shrink to few notifications, and the report is deterministic."""

from __future__ import annotations

import json

import pytest

from aiops_sandbox.replay import STAGES, generate, replay

pytestmark = [pytest.mark.emulator]


@pytest.fixture(scope="module")
def result(seeded):
    return replay(seeded.manifest, 7)


def test_every_injected_incident_is_detected(result):
    assert result.detected, "the window holds injected incidents"
    assert [d["id"] for d in result.detected if d["candidates"] == 0] == []


def test_funnel_reduces_noise(result):
    f = result.funnel
    assert f["raw_events"] == f["alerts"] + f["dead_letters"]
    assert f["alerts"] == sum(f[s] for s in ("redeliveries", "duplicates", "resolved", "suppressed", "informational",
                                             "accepted"))
    assert f["redeliveries"] > 0
    assert f["dead_letters"] > 0
    assert f["notifications"] * 5 < f["raw_events"]
    assert f["incident_candidates"] < f["accepted"]
    assert {"flapping", "noisy", "maintenance"} <= {k.removeprefix("suppressed_") for k in result.decisions
                                                    if k.startswith("suppressed_")}


def test_stream_is_deterministic(seeded):
    a, b = generate(seeded.manifest, 3), generate(seeded.manifest, 3)
    assert [json.dumps(e, sort_keys=True, default=str) for _, e in a.events] == \
        [json.dumps(e, sort_keys=True, default=str) for _, e in b.events]


def test_cli_prints_the_funnel(seeded, tmp_path, capsys):
    from aiops.cli import main

    path = tmp_path / "truth.json"
    path.write_text(json.dumps(seeded.manifest))
    assert main(["alerting", "replay", "--days", "7", "--manifest", str(path), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert list(out["funnel"]) == list(STAGES)
    assert out["funnel"]["notifications"] > 0
