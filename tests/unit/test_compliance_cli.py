"""`aiops compliance checks` lists the registry; `aiops security scan` needs a time range."""

from __future__ import annotations

from aiops.cli import build_parser


def test_compliance_checks_lists_every_check(capsys):
    args = build_parser().parse_args(["compliance", "checks"])
    assert args.func(args) == 0
    out = capsys.readouterr().out
    assert "sg_ssh_open_to_world" in out
    assert "revoke-world-open-ingress" in out
    assert out.strip().endswith("40 checks")


def test_security_scan_refuses_a_bad_range(capsys):
    args = build_parser().parse_args(["security", "scan", "--start", "", "--end", "2026-11-20T00:00:00Z"])
    assert args.func(args) == 2
    assert "required" in capsys.readouterr().out
