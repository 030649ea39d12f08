"""``aiops account ...``: connect an account (policies, template, bootstrap, check)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def cmd_policies(args: argparse.Namespace) -> int:
    from aiops.account import iam

    return iam.run(args)


def cmd_template(args: argparse.Namespace) -> int:
    from aiops.account.template import build_template, render_yaml, template_path
    from aiops.core.settings import get_settings

    text = render_yaml(build_template(teams=get_settings().account_teams))
    out = args.out or template_path()
    if str(out) == "-":
        print(text, end="")
        return 0
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    print(f"wrote {out} ({len(text):,} bytes)")
    return 0


def cmd_bootstrap(args: argparse.Namespace) -> int:
    from aiops.account.bootstrap import deploy

    params = dict(p.split("=", 1) for p in args.parameter or [])
    result = deploy(conn_id=args.conn_id, stack_name=args.stack_name, parameters=params, progress=print)
    print(f"stack {result.stack_name}: {result.action} ({result.status})")
    for key, value in sorted(result.outputs.items()):
        print(f"  {key:<26} {value}")
    print("next: create the two connections (docs/connect-account.md), then run `aiops account check`")
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    from aiops.account.check import missing, render, run_checks

    items = run_checks(args.capability or None, conn_id=args.conn_id, executor_conn_id=args.executor_conn_id)
    print(render(items, as_json=args.json))
    return 1 if missing(items) else 0


def register(sub: Any) -> None:
    """Add ``aiops account`` to the top-level parser's subcommands."""
    from aiops.account import iam
    from aiops.account.check import CAPABILITIES

    account = sub.add_parser("account", help="connect an AWS account: IAM policies, bootstrap stack, preflight"
                             ).add_subparsers(dest="account_command", required=True)
    pol = account.add_parser("policies", help="generate the least-privilege IAM policies (JSON)")
    iam.add_arguments(pol)
    pol.set_defaults(func=cmd_policies)
    tpl = account.add_parser("template", help="(re)generate infra/bootstrap.yaml")
    tpl.add_argument("--out", type=Path, help="output file ('-' = stdout; default infra/bootstrap.yaml)")
    tpl.set_defaults(func=cmd_template)
    boot = account.add_parser("bootstrap", help="deploy the bootstrap stack through a connection (admin rights)")
    boot.add_argument("--conn-id", help="connection of an identity that may create IAM roles (default aws_default)")
    boot.add_argument("--stack-name")
    boot.add_argument("--parameter", "-p", action="append", metavar="KEY=VALUE",
                      help="stack parameter override, e.g. -p EnableConfig=true -p TrailBucketName=my-trail")
    boot.set_defaults(func=cmd_bootstrap)
    chk = account.add_parser("check", help="preflight: what is ready and what is missing (exit 1 if missing)")
    chk.add_argument("--capability", action="append", choices=CAPABILITIES)
    chk.add_argument("--conn-id", help="reader connection (default aws_default)")
    chk.add_argument("--executor-conn-id", help="executor connection (default aws_executor)")
    chk.add_argument("--json", action="store_true")
    chk.set_defaults(func=cmd_check)
