"""``aiops ops policies``: lists valid policies, names the file and field of a bad one, exits 1."""

from __future__ import annotations


def test_ops_policies_lists_and_reports_errors(tmp_path, monkeypatch, capsys):
    from aiops.cli import main
    from aiops.core.settings import get_settings

    (tmp_path / "ops").mkdir()
    (tmp_path / "ops" / "mine.yaml").write_text(
        "log_retention:\n  - {id: good, patterns: ['/x/*'], retention_days: 30}\n"
        "  - {id: bad, patterns: ['/y/*'], retention_days: 31}\n")
    monkeypatch.setenv("AIOPS_INCLUDE_DIR", str(tmp_path))
    get_settings.cache_clear()
    try:
        assert main(["ops", "policies"]) == 1
    finally:
        get_settings.cache_clear()
    out = capsys.readouterr().out
    assert "good" in out
    assert "dry-run" in out  # no mode given: dry-run
    assert "mine.yaml: log_retention[1].retention_days" in out


def test_ops_plan_shows_an_enforce_policys_changes_as_changes(tmp_path, monkeypatch, capsys):
    """``aiops ops plan`` previews what the scheduled run would do: an `enforce` policy's changes are
    changes to make (not dry-run labels); --dry-run shows them all dry-run. Nothing is stored."""
    from aiops.cli import main
    from aiops.core.settings import get_settings
    from aiops.ops import log_retention

    (tmp_path / "ops").mkdir()
    (tmp_path / "ops" / "retention.yaml").write_text(
        "log_retention:\n  - {id: app, patterns: ['/app/*'], retention_days: 90, mode: enforce}\n")
    monkeypatch.setenv("AIOPS_INCLUDE_DIR", str(tmp_path))
    monkeypatch.setattr(log_retention, "collect", lambda region=None: [log_retention.LogGroup("/app/a/prod", None)])
    get_settings.cache_clear()
    try:
        assert main(["ops", "plan", "ops_log_retention"]) == 0
        enforced = capsys.readouterr().out
        assert main(["ops", "plan", "ops_log_retention", "--dry-run"]) == 0
        forced = capsys.readouterr().out
    finally:
        get_settings.cache_clear()
    assert "**1** change(s) to make, **0** dry-run only" in enforced
    assert "modes are the policies' own" in enforced
    assert "**0** change(s) to make, **1** dry-run only" in forced
