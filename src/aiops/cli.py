"""``aiops``: the command line of MatCarv AIOps.

    aiops sandbox up [--port 5055] [--seed 7]     run the emulator with the simulated account
    aiops sandbox seed --endpoint URL --seed N   seed a running emulator
    aiops sandbox describe                        what the simulated account holds (ground truth)
    aiops sandbox connection                      the emulator's aws_default connection (JSON) for the CLI
    aiops sandbox incident SCENARIO               game day: inject a live incident (cpu-pinned,
                                                  rds-connection-storm, 5xx-surge) into the running emulator
    aiops incidents list | show ID                incidents, their timeline and links
    aiops incidents resolve ID --by U --reason R  close an incident by hand (recorded in its timeline)
    aiops alerting replay [--days 7] [--json]     noise-reduction report: the simulated account's event
                                                  stream through the alerting rules (raw -> notifications)
    aiops compliance checks                       the compliance check registry (id, severity, CIS, runbook)
    aiops compliance sweep [--no-securityhub]     run a compliance sweep now and print its summary
    aiops security scan --start T --end T [--alert]  CloudTrail detections over a time range
    aiops cost report [--day D] [--send|--resend] the daily cost report for a day (default yesterday);
                                                  a day is emailed once unless --resend
    aiops cost recommend [--at T]                 right-sizing recommendations now (what FinOps reviews)
    aiops cost decisions                          FinOps decisions and realised savings
    aiops approvals list [--all] [--json]         remediation approvals waiting: resource, incident, age,
                                                  deadline (expired / superseded ones only with --all)
    aiops approvals reject [ID ...] [--older-than 12h] [--superseded] [--expired]
                                                  answer several prompts Reject through Airflow's HITL API
    aiops ops policies                            validate and list the routine-operations policies
    aiops ops plan WORKFLOW [--at T] [--dry-run]  what ops_snapshots / ops_log_retention / ops_scheduling /
                                                  ops_patching would do at T, each policy in its own mode
                                                  (a preview: changes and stores nothing)
    aiops config                                  effective settings
    aiops config validate                         check every file under include/ (file, line, field)
    aiops config schema [--out schemas]           write JSON Schemas of include/ files for editors
    aiops state migrate                           create / upgrade the state store schema
    aiops metrics partitions                      day partitions in the metrics store
    aiops anomaly score --input IN.csv --output OUT.csv   score one series offline
    aiops dev run                                 what `make run` does
    aiops account policies|template|bootstrap|check   connect an account: generated IAM, bootstrap stack,
                                                  preflight (docs/connect-account.md)
"""

from __future__ import annotations

import argparse
import logging
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

# Keep module-level imports to the standard library: ``aiops --help`` and read-only commands must
# answer in well under a second; each command imports what it needs (Airflow only where it must).


def _print(msg: str) -> None:
    print(msg, flush=True)


def _anchor(value: str | None) -> datetime | None:
    if not value:
        return None
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)












def cmd_ops_policies(args: argparse.Namespace) -> int:
    from aiops.ops.policy import KINDS, load_policies

    errors = 0
    for kind in KINDS:
        loaded = load_policies(kind)
        for policy in loaded.policies:
            _print(f"{kind:<14} {policy.id:<28} {policy.mode:<8} {loaded.sources[policy.id]}")
        for error in loaded.errors:
            _print(f"{kind:<14} ERROR {error}")
        errors += len(loaded.errors)
    return 1 if errors else 0


def cmd_ops_plan(args: argparse.Namespace) -> int:
    from datetime import timedelta

    from aiops.ops.pipeline import as_utc, make_plan

    at = as_utc(args.at) if args.at else datetime.now(UTC)
    start = as_utc(args.start) if args.start else at - timedelta(minutes=15)
    # What the scheduled run would plan: each policy's own mode (an `enforce` policy's changes are
    # changes to make). Nothing is executed or stored either way; --dry-run shows every change dry-run.
    plan = make_plan(args.workflow, at, start=start, conf={"dry_run": bool(args.dry_run)}, store=False)
    _print(plan["markdown"])
    _print("\n(a preview: nothing was changed or stored"
           + ("; every change shown dry-run as asked)" if args.dry_run else "; modes are the policies' own)"))
    return 0


def cmd_config(args: argparse.Namespace) -> int:
    from aiops.core.redact import mask_setting
    from aiops.core.settings import get_settings

    settings = get_settings()
    for name, info in type(settings).model_fields.items():
        value = mask_setting(name, getattr(settings, name))
        _print(f"AIOPS_{name.upper():<28} = {value:<40} # {info.description or ''}")
    return 0


def cmd_config_validate(args: argparse.Namespace) -> int:
    from pathlib import Path

    from aiops.config_files import validate_include
    from aiops.core.settings import get_settings

    root = Path(args.include_dir) if args.include_dir else get_settings().include_dir
    checked, problems = validate_include(root)
    for line in problems:
        _print(line)
    _print(f"{len(checked)} file(s) under {root} checked: "
           + ("all valid" if not problems else f"{len(problems)} problem(s)"))
    return 1 if problems else 0


def cmd_config_schema(args: argparse.Namespace) -> int:
    from pathlib import Path

    from aiops.config_files import write_schemas

    for path in write_schemas(Path(args.out)):
        _print(str(path))
    return 0


def cmd_state_migrate(args: argparse.Namespace) -> int:
    from aiops.core.redact import mask_url
    from aiops.core.state import StateStore

    store = StateStore()
    applied = store.migrate()
    _print(f"state store {mask_url(store.url)}: schema revision {store.schema_revision()}"
           + (f" (applied {', '.join(applied)})" if applied else " (up to date)"))
    return 0


def cmd_metrics_partitions(args: argparse.Namespace) -> int:
    from aiops.metrics.store import MetricsStore

    store = MetricsStore()
    days = store.days()
    _print(f"{store.artifacts.uri('metrics/cloudwatch/')}: {len(days)} day partition(s)")
    for d in days:
        _print(f"  dt={d}")
    return 0


def cmd_anomaly_score(args: argparse.Namespace) -> int:
    from aiops.anomaly.offline import CsvReport, score_csv
    from aiops.core.errors import ConfigError

    try:
        out = score_csv(Path(args.input), Path(args.output), spec_name=args.spec)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr, flush=True)
        return 2
    report = out.attrs.get("input_report") or {}
    for line in CsvReport(**report).lines() if report else []:
        _print(f"{args.input}: {line}")
    flagged = int(out["is_anomaly"].sum())
    _print(f"scored {len(out):,} points from {args.input} ({report.get('rows', len(out)):,} row(s) read): "
           f"{flagged} anomalous; wrote {args.output}")
    return 0






def cmd_incidents_list(args: argparse.Namespace) -> int:
    from aiops.incidents import store

    rows = store.list_all()
    if not rows:
        _print("no incidents")
    for r in rows:
        mttr = f"{r['mttr_seconds']:.0f}s" if r.get("mttr_seconds") is not None else "-"
        _print(f"{r['incident_id']}  {r['state']:11s} {r['severity']:8s} {r['first_seen']:%Y-%m-%d %H:%M}  "
               f"MTTR {mttr:>6s}  {r['title']}")
    return 0


def cmd_incidents_show(args: argparse.Namespace) -> int:
    from aiops.incidents import store

    try:
        r = store.get(args.incident_id)
    except store.IncidentNotFound as exc:
        _print(f"error: {exc}")
        return 2
    _print(f"{r['incident_id']}: {r['title']}  [{r['state']}, {r['severity']}] service={r['service']} env={r['env']}")
    for col in ("first_seen", "detected_at", "triaged_at", "remediation_started_at", "resolved_at", "escalated_at"):
        if r.get(col):
            _print(f"  {col:23s} {r[col]:%Y-%m-%d %H:%M:%S}")
    for col in ("time_to_detect_seconds", "mttr_seconds"):
        if r.get(col) is not None:
            _print(f"  {col:23s} {r[col]:.1f}")
    for name, link in (r.get("links") or {}).items():
        _print(f"  link {name}: {link}")
    _print(f"  {len(r['alerts'])} alert(s); timeline:")
    for e in store.timeline(r["incident_id"]):
        move = f"{e['from_state'] or ''} -> {e['to_state']}" if e["to_state"] else e["kind"]
        _print(f"    {e['at']:%H:%M:%S} {move:26s} {e['actor']:18s} {e['reason'] or ''} "
               f"{'(run ' + e['run_id'] + ')' if e['run_id'] else ''}")
    return 0


def cmd_incidents_resolve(args: argparse.Namespace) -> int:
    """A human closes an incident (typically an escalated one they fixed by hand)."""
    from aiops.incidents import store

    try:
        store.transition(args.incident_id, "resolved", actor=args.by, reason=args.reason)
    except (store.IncidentNotFound, store.IllegalTransition) as exc:
        _print(f"error: {exc}")
        return 2
    r = store.get(args.incident_id)
    mttr = f", MTTR {r['mttr_seconds']:.0f}s" if r.get("mttr_seconds") is not None else ""
    _print(f"{args.incident_id} resolved by {args.by}{mttr}")
    return 0




def cmd_compliance_checks(args: argparse.Namespace) -> int:
    from aiops.compliance.registry import checks

    for cid, check in checks().items():
        m = check.meta
        _print(f"{cid:34} {m.severity:9} CIS {', '.join(m.cis) or '-':9} {m.runbook or '-':30} {m.title}")
    _print(f"{len(checks())} checks")
    return 0


def cmd_compliance_sweep(args: argparse.Namespace) -> int:
    from aiops.compliance import pipeline

    evaluated = pipeline.evaluate_sweep(pipeline.collect_inventory(datetime.now(UTC)), run_id="cli")
    if not args.no_securityhub:
        pub = pipeline.publish_findings(evaluated)
        _print(f"Security Hub: {pub['imported']} finding(s) imported ({pub.get('archived', 0)} archived)")
    stored = pipeline.build_summary(evaluated, pipeline.gather_external())
    from aiops.core.artifacts import ArtifactStore

    _print((ArtifactStore().get_bytes(stored["text_key"]) or b"").decode())
    _print(f"report: {ArtifactStore().uri(stored['key'])}")
    return 0


def cmd_security_scan(args: argparse.Namespace) -> int:
    from aiops.security import pipeline

    start, end = _anchor(args.start), _anchor(args.end)
    if start is None or end is None:
        _print("error: --start and --end are required (ISO 8601)")
        return 2
    out = pipeline.analyse_files(pipeline.keys_for_range(start, end), run_id="cli", start=start, end=end)
    _print(f"{out['files']} file(s), {out['records']} record(s), {len(out['quarantined'])} quarantined")
    for q in out["quarantined"]:
        _print(f"  quarantined {q['key']}: {q['reason']}")
    for d in out["detections"]:
        _print(f"[{d['severity']:8}] {d['event_time']} {d['detection']}: {d['title']} "
               f"({len(d['event_ids'])} event(s))")
    if args.alert and out["detections"]:
        _print(f"alerts sent: {pipeline.raise_alerts(out['detections'])['sent']}")
    return 0


def cmd_cost_report(args: argparse.Namespace) -> int:
    from datetime import timedelta

    from aiops.core.artifacts import ArtifactStore
    from aiops.cost.report import build_report, send_report

    day = args.day or (datetime.now(UTC).date() - timedelta(days=1)).isoformat()
    report = build_report(day)
    _print((ArtifactStore().get_bytes(report["text_key"]) or b"").decode())
    _print(f"report: {ArtifactStore().uri(report['key'])}\ncsv:    {ArtifactStore().uri(report['csv_key'])}")
    if args.send or args.resend:
        sent = send_report(report, resend=True if args.resend else None)
        _print(f"not sent again: {sent['reason']} (--resend to send anyway)" if sent.get("skipped")
               else f"sent to {', '.join(sent['recipients'])}")
    return 0


def cmd_cost_recommend(args: argparse.Namespace) -> int:
    from aiops.core.artifacts import ArtifactStore
    from aiops.cost.rightsizing import recommend

    summary = recommend(_anchor(args.at) or datetime.now(UTC))
    _print(summary["review_markdown"])
    _print(f"\n{ArtifactStore().uri(summary['key'])}")
    return 0


def cmd_cost_decisions(args: argparse.Namespace) -> int:
    from aiops.cost.decisions import history, realised_savings

    for d in history():
        until = f" until {d['until']:%Y-%m-%d}" if d["until"] else ""
        _print(f"{d['decided_at']:%Y-%m-%d %H:%M} {d['decided_by']:14} {d['decision']:8}{until:17} "
               f"${d['monthly_savings_usd']:>9,.2f}/mo  {d['recommendation_id']}")
    saved = realised_savings(datetime.now(UTC))
    _print(f"realised: {saved['completed']} of {saved['applied']} applied done, "
           f"${saved['monthly_run_rate_usd']:,.2f}/month, ${saved['accrued_usd']:,.2f} so far")
    return 0


def cmd_approvals_list(args: argparse.Namespace) -> int:
    import json

    from aiops.remediation.approval_queue import format_table, pending

    entries = pending(include_closed=args.all)
    if args.json:
        _print(json.dumps(entries, default=str, indent=2))
    else:
        _print(format_table(entries))
    return 0


def cmd_approvals_reject(args: argparse.Namespace) -> int:
    import getpass
    import os

    from aiops.remediation.approval_queue import (
        AirflowApi,
        format_table,
        parse_age,
        pending,
        reject,
        select_for_reject,
    )

    older = parse_age(args.older_than) if args.older_than else None
    if not (args.ids or older or args.superseded or args.expired):
        _print("name request ids, or --older-than AGE / --superseded / --expired")
        return 2
    chosen = select_for_reject(pending(include_closed=True), ids=args.ids, older_than=older,
                               superseded=args.superseded, expired=args.expired)
    if not chosen:
        _print("nothing to reject")
        return 0
    _print(format_table(chosen))
    if args.dry_run:
        _print(f"{len(chosen)} prompt(s) would be answered Reject (dry run)")
        return 0
    user = args.user or os.environ.get("AIOPS_AIRFLOW_USER")
    password = os.environ.get("AIOPS_AIRFLOW_PASSWORD")
    token = os.environ.get("AIOPS_AIRFLOW_TOKEN")
    if not token and user and not password and sys.stdin.isatty():
        password = getpass.getpass(f"Airflow password for {user}: ")
    api = AirflowApi(args.api or os.environ.get("AIOPS_AIRFLOW_API", "http://127.0.0.1:8080"), token=token,
                     username=user, password=password)
    results = reject(chosen, api)
    for r in results:
        _print(f"{r['request_id'][:12]} {r['task_id']}: {r['result']}")
    ok = sum(r["ok"] for r in results)
    _print(f"{ok} of {len(results)} rejected")
    return 0 if ok == len(results) else 1


def _register_extensions(sub: Any, alerting: Any) -> None:
    """Commands contributed by other installed packages (entry point group ``aiops.cli``): the
    simulated account (``aiops sandbox``, ``aiops dev run``, ``aiops alerting replay``) lives in the
    separate ``aiops_sandbox`` package, which the product never imports."""
    from importlib.metadata import entry_points

    for ep in entry_points(group="aiops.cli"):
        ep.load()(sub, {"alerting": alerting})


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="aiops", description="MatCarv AIOps command line")
    parser.add_argument("-v", "--verbose", action="store_true")
    sub = parser.add_subparsers(dest="command", required=True)


    config = sub.add_parser("config", help="print effective settings; validate include/; JSON Schemas")
    config.set_defaults(func=cmd_config)
    config_sub = config.add_subparsers(dest="config_command")
    validate = config_sub.add_parser("validate", help="check every YAML file under include/ (file, line, field)")
    validate.add_argument("--include-dir", help="default: the include_dir setting")
    validate.set_defaults(func=cmd_config_validate)
    schema = config_sub.add_parser("schema", help="write the JSON Schemas of include/ files")
    schema.add_argument("--out", default="schemas", help="directory (default: schemas/)")
    schema.set_defaults(func=cmd_config_schema)
    state = sub.add_parser("state", help="the state store").add_subparsers(dest="state_command", required=True)
    state.add_parser("migrate", help="create or upgrade the schema").set_defaults(func=cmd_state_migrate)
    metrics = sub.add_parser("metrics", help="the metrics store").add_subparsers(dest="metrics_command",
                                                                                  required=True)
    metrics.add_parser("partitions", help="list day partitions").set_defaults(func=cmd_metrics_partitions)
    anomaly = sub.add_parser("anomaly", help="anomaly detection").add_subparsers(dest="anomaly_command",
                                                                                  required=True)
    score = anomaly.add_parser("score", help="score one series offline with the DAG's detector and config")
    score.add_argument("--input", required=True, help="CSV with columns timestamp,value")
    score.add_argument("--output", required=True, help="CSV: timestamp,value,anomaly_score,is_anomaly,...")
    score.add_argument("--spec", help="model family from include/models (default: matched/`default`)")
    score.set_defaults(func=cmd_anomaly_score)
    incidents = sub.add_parser("incidents", help="the incident lifecycle").add_subparsers(
        dest="incidents_command", required=True)
    incidents.add_parser("list", help="recent incidents").set_defaults(func=cmd_incidents_list)
    show = incidents.add_parser("show", help="one incident: state, times, links, timeline")
    show.add_argument("incident_id")
    show.set_defaults(func=cmd_incidents_show)
    resolve = incidents.add_parser("resolve", help="close an incident by hand (e.g. an escalated one you fixed)")
    resolve.add_argument("incident_id")
    resolve.add_argument("--by", required=True, help="who resolved it (recorded in the timeline)")
    resolve.add_argument("--reason", required=True, help="what was done (recorded in the timeline)")
    resolve.set_defaults(func=cmd_incidents_resolve)
    alerting = sub.add_parser("alerting", help="event intake and alerting").add_subparsers(
        dest="alerting_command", required=True)
    compliance = sub.add_parser("compliance", help="compliance sweeps").add_subparsers(
        dest="compliance_command", required=True)
    compliance.add_parser("checks", help="list the registered checks").set_defaults(func=cmd_compliance_checks)
    sweep = compliance.add_parser("sweep", help="run a sweep now (collect, check, diff, store) and print the summary")
    sweep.add_argument("--no-securityhub", action="store_true", help="do not import findings into Security Hub")
    sweep.set_defaults(func=cmd_compliance_sweep)
    security = sub.add_parser("security", help="CloudTrail security events").add_subparsers(
        dest="security_command", required=True)
    scan = security.add_parser("scan", help="run the detections over the trail's files of a time range")
    scan.add_argument("--start", required=True, help="ISO 8601 (UTC when no offset)")
    scan.add_argument("--end", required=True)
    scan.add_argument("--alert", action="store_true", help="also put the alerts on EventBridge")
    scan.set_defaults(func=cmd_security_scan)
    cost = sub.add_parser("cost", help="cost reports and right-sizing").add_subparsers(
        dest="cost_command", required=True)
    creport = cost.add_parser("report", help="build (and optionally email) the daily cost report for a day")
    creport.add_argument("--day", help="YYYY-MM-DD (default: yesterday, UTC)")
    creport.add_argument("--send", action="store_true",
                         help="also email it to the FinOps list (SES), unless that day was already emailed")
    creport.add_argument("--resend", action="store_true", help="email it even if that day was already emailed")
    creport.set_defaults(func=cmd_cost_report)
    crec = cost.add_parser("recommend", help="right-sizing recommendations as of now (or --at)")
    crec.add_argument("--at", help="evaluation time, ISO 8601 (default: now)")
    crec.set_defaults(func=cmd_cost_recommend)
    cost.add_parser("decisions", help="FinOps decisions and realised savings").set_defaults(func=cmd_cost_decisions)
    approvals = sub.add_parser("approvals", help="remediation approvals: list, reject several").add_subparsers(
        dest="approvals_command", required=True)
    alist = approvals.add_parser("list", help="what waits for approval (resource, incident, age, deadline)")
    alist.add_argument("--all", action="store_true", help="also expired and superseded prompts")
    alist.add_argument("--json", action="store_true")
    alist.set_defaults(func=cmd_approvals_list)
    arej = approvals.add_parser("reject", help="answer Reject to several prompts through Airflow's HITL API")
    arej.add_argument("ids", nargs="*", help="request ids (or unique prefixes) or remediate run ids")
    arej.add_argument("--older-than", help="every prompt older than this, e.g. 12h, 90m, 2d")
    arej.add_argument("--superseded", action="store_true", help="every prompt a newer request superseded")
    arej.add_argument("--expired", action="store_true", help="every prompt past its deadline")
    arej.add_argument("--dry-run", action="store_true", help="only show what would be rejected")
    arej.add_argument("--api", help="Airflow API base URL (default $AIOPS_AIRFLOW_API or http://127.0.0.1:8080)")
    arej.add_argument("--user", help="Airflow user who answers (default $AIOPS_AIRFLOW_USER; password from "
                      "$AIOPS_AIRFLOW_PASSWORD or a prompt; or a token in $AIOPS_AIRFLOW_TOKEN)")
    arej.set_defaults(func=cmd_approvals_reject)
    ops = sub.add_parser("ops", help="routine operations (snapshots, log retention, patching, scheduling)"
                         ).add_subparsers(dest="ops_command", required=True)
    ops.add_parser("policies", help="validate and list the policies in include/ops").set_defaults(
        func=cmd_ops_policies)
    oplan = ops.add_parser("plan", help="what a routine-ops workflow would do now (changes nothing)")
    oplan.add_argument("workflow", choices=["ops_snapshots", "ops_log_retention", "ops_scheduling", "ops_patching"])
    oplan.add_argument("--at", help="the run's time, ISO 8601 (default: now)")
    oplan.add_argument("--start", help="ops_scheduling: interval start (default: --at minus 15 minutes)")
    oplan.add_argument("--dry-run", action="store_true",
                       help="show every change as dry-run (as a run triggered with conf dry_run=true would)")
    oplan.set_defaults(func=cmd_ops_plan)
    _register_extensions(sub, alerting)
    from aiops.account.cli import register as register_account  # issue 16: aiops account ...

    register_account(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    import os

    project_root = Path(__file__).resolve().parents[2]  # = aiops.core.settings.PROJECT_ROOT, without importing it

    # Share the platform's Airflow home (config, connections) instead of creating ~/airflow.
    if (project_root / ".airflow").is_dir():
        os.environ.setdefault("AIRFLOW_HOME", str(project_root / ".airflow"))
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.verbose:  # Airflow (imported lazily, by commands that need it) logs at WARNING, on stderr
        os.environ.setdefault("AIRFLOW__LOGGING__LOGGING_LEVEL", "WARNING")
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("botocore", "urllib3", "werkzeug", "great_expectations", "cmdstanpy", "airflow", "alembic"):
        logging.getLogger(noisy).setLevel(logging.DEBUG if args.verbose and noisy == "airflow" else logging.WARNING)
    result: Any = args.func(args)
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())
