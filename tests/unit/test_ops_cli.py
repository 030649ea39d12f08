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
