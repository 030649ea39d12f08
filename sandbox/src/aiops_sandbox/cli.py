"""Sandbox commands of the ``aiops`` CLI (registered through the ``aiops.cli`` entry point).

    aiops sandbox up [--port 5055] [--seed 7]     run the emulator with the simulated account
    aiops sandbox seed --endpoint URL --seed N   seed a running emulator
    aiops sandbox describe                        what the simulated account holds (ground truth)
    aiops sandbox connection                      the emulator's aws_default connection (JSON) for the CLI
    aiops sandbox incident SCENARIO               game day: inject a live incident
    aiops alerting replay [--days 7] [--json]     noise-reduction report over the simulated event stream
    aiops dev run                                 what `make run` does
"""

from __future__ import annotations

import argparse
import json
import logging
from datetime import datetime
from pathlib import Path
from typing import Any

from aiops.cli import _anchor, _print  # the product CLI's output and time parsing
from aiops.core.settings import get_settings


def cmd_sandbox_up(args: argparse.Namespace) -> int:
    from aiops_sandbox.emulator import SandboxServer
    from aiops_sandbox.live import LiveFeeder
    from aiops_sandbox.seed import boto_factory, seed_account

    server = SandboxServer(args.host, args.port)
    try:
        server.start()
    except OSError as exc:
        _print(f"error: cannot listen on {args.host}:{args.port}: {exc}. Is another emulator running? "
               "Choose another port with --port or AIOPS_SANDBOX_PORT.")
        return 2
    _print(f"AWS emulator (moto + sandbox extensions) listening on {server.endpoint}")
    feeder = None
    if not args.no_seed:
        _print(f"Seeding the simulated account (seed {args.seed})...")
        result = seed_account(server.endpoint, seed=args.seed, anchor=_anchor(args.anchor),
                              metric_days=args.days, manifest_path=Path(args.manifest), progress=_print)
        _print(f"Seeded in {result.seconds:.1f}s; ground truth: {args.manifest}")
        if not args.no_live:
            start = datetime.fromisoformat(result.manifest["anchor"].replace("Z", "+00:00")).timestamp()
            from aiops_sandbox.traces import services as trace_services

            feeder = LiveFeeder(boto_factory(server.endpoint)("cloudwatch"), result.series, start,
                                trace_services=trace_services(result.manifest))
            feeder.start()
            _print("Publishing a new datapoint per series every 5 minutes (PutMetricData) and sampled "
                   "X-Ray traces (PutTraceSegments).")
    _print("Ctrl-C stops the emulator.")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        if feeder:
            feeder.stop()
        server.stop()
    return 0
def cmd_sandbox_seed(args: argparse.Namespace) -> int:
    from aiops_sandbox.seed import seed_account

    result = seed_account(args.endpoint, seed=args.seed, anchor=_anchor(args.anchor), metric_days=args.days,
                          manifest_path=Path(args.manifest), progress=_print)
    _print(f"Seeded {args.endpoint} in {result.seconds:.1f}s; ground truth written to {args.manifest}")
    return 0
def sandbox_connection(endpoint: str, region: str) -> str:
    """The ``aws_default`` connection (JSON) of the local emulator; what ``make run`` gives Airflow."""
    return json.dumps({"conn_type": "aws", "login": "testing", "password": "testing",
                       "extra": {"region_name": region, "endpoint_url": endpoint}})
def cmd_sandbox_connection(args: argparse.Namespace) -> int:
    s = get_settings()
    print(sandbox_connection(args.endpoint or s.sandbox_endpoint, s.regions[0]))
    return 0
def cmd_sandbox_describe(args: argparse.Namespace) -> int:
    path = Path(args.manifest)
    if not path.exists():
        _print(f"error: no manifest at {path}; seed an emulator first (`aiops sandbox up`).")
        return 2
    m = json.loads(path.read_text())
    res = m["resources"]
    _print(f"Simulated account {m['account_id']} ({m['region']}), seed {m['seed']}, anchor {m['anchor']}")
    _print(f"  {len(res['instances'])} EC2 instances, {len(res['load_balancers'])} load balancers, "
           f"{len(res['databases'])} RDS instances, {len(res['volumes'])} volumes, {len(res['buckets'])} buckets")
    _print(f"  {m['metrics']['series_count']} metric series, {m['metrics']['days']} days at 5-minute resolution")
    _print("Injected anomalies:")
    for a in m["anomalies"]:
        _print(f"  - {a['start']}  {a['kind']:<11} {a['description']}")
    _print("Waste:")
    for k, v in m["waste"].items():
        _print(f"  - {k}: {len(v)}")
    _print("Misconfigurations:")
    for item in m["misconfigurations"]:
        _print(f"  - {item['id']}: {item['resource']}")
    _print(f"Security events in CloudTrail: {len(m['security_events'])}")
    _print(f"SLO: page {m['slo']['page']}, ticket {m['slo']['ticket']}, quiet {m['slo']['quiet']}")
    return 0
def cmd_dev_run(args: argparse.Namespace) -> int:
    from aiops_sandbox.devrun import run

    return run(sandbox=not args.no_sandbox, seed=args.seed, port=args.port)
def cmd_sandbox_incident(args: argparse.Namespace) -> int:
    from aiops_sandbox import gameday
    from aiops_sandbox.seed import boto_factory

    if args.scenario == "list":
        for name, (description, _) in sorted(gameday.SCENARIOS.items()):
            _print(f"  {name:22s} {description}")
        return 0
    if args.scenario not in gameday.SCENARIOS:
        _print(f"error: unknown scenario {args.scenario!r}; one of: {', '.join(sorted(gameday.SCENARIOS))}")
        return 2
    try:
        injection = gameday.inject(args.scenario, boto_factory(args.endpoint))
    except Exception as exc:
        _print(f"error: could not inject {args.scenario} at {args.endpoint}: {exc} (is `make run` up?)")
        return 1
    _print(f"Game day '{injection.scenario}' started at {injection.started_at}: {injection.description}")
    for s in injection.series:
        _print(f"  metric {s.namespace} {s.metric} {s.dimensions} -> {s.value:g}/min "
               f"(baseline {s.baseline:.3g}); alarm {s.alarm} -> ALARM")
    _print(f"  {len(injection.events_sent)} event(s) sent to EventBridge (rule aiops-ops-events -> SQS "
           f"aiops-ops-events): {', '.join(injection.events_sent)}")
    _print(f"  The failure lasts until an SSM Automation of {' or '.join(injection.fixed_by)} succeeds on "
           f"{injection.target} (expected runbook: {injection.runbook_hint}); the live feeder then recovers it.")
    _print("Follow it in the Airflow UI (http://localhost:8080): DAG alert_intake (the events) -> "
           "incident_response (triage, remediation, post-mortem) -> remediate (plan, approval, execution);")
    _print("  approvals wait under Browse -> Required Actions (`aiops approvals list`); "
           "`aiops incidents list` / `aiops incidents show ID`.")
    return 0
def cmd_alerting_replay(args: argparse.Namespace) -> int:
    from aiops_sandbox.replay import replay

    path = args.manifest or get_settings().manifest_path
    if not path.exists():
        _print(f"error: no ground truth manifest at {path}; seed the sandbox first (make run, or aiops sandbox up)")
        return 2
    if not args.verbose:  # one log line per event otherwise
        logging.getLogger("aiops.alerting").setLevel(logging.ERROR)
    result = replay(json.loads(path.read_text()), args.days)
    if args.json:
        _print(json.dumps({"days": result.days, "anchor": result.anchor, "funnel": result.funnel,
                           "suppressed_by": {k.removeprefix("suppressed_"): v for k, v in result.decisions.items()
                                             if k.startswith("suppressed_")},
                           "injected_incidents": result.detected,
                           "notifications_by_topic": dict(result.notifications_by_topic)}, indent=2))
    else:
        _print(result.text())
    return 0

def register(sub: Any, groups: dict[str, Any]) -> None:
    """Entry point ``aiops.cli``: adds ``aiops sandbox ...``, ``aiops dev run`` and ``aiops alerting replay``."""
    s = get_settings()
    sandbox = sub.add_parser("sandbox", help="the embedded AWS emulator and simulated account")
    sb = sandbox.add_subparsers(dest="sandbox_command", required=True)
    up = sb.add_parser("up", help="run the emulator (foreground) and seed the simulated account")
    up.add_argument("--host", default=s.sandbox_host)
    up.add_argument("--port", type=int, default=s.sandbox_port)
    up.add_argument("--seed", type=int, default=s.sandbox_seed)
    up.add_argument("--days", type=int, default=s.sandbox_metric_days, help="days of metric history")
    up.add_argument("--anchor", help="end of the seeded history (ISO 8601); default: now")
    up.add_argument("--manifest", default=str(s.manifest_path))
    up.add_argument("--no-seed", action="store_true", help="start an empty emulator")
    up.add_argument("--no-live", action="store_true", help="do not publish new datapoints every 5 minutes")
    up.set_defaults(func=cmd_sandbox_up)
    seed = sb.add_parser("seed", help="seed a running emulator")
    seed.add_argument("--endpoint", default=s.sandbox_endpoint)
    seed.add_argument("--seed", type=int, default=s.sandbox_seed)
    seed.add_argument("--days", type=int, default=s.sandbox_metric_days)
    seed.add_argument("--anchor")
    seed.add_argument("--manifest", default=str(s.manifest_path))
    seed.set_defaults(func=cmd_sandbox_seed)
    describe = sb.add_parser("describe", help="print the simulated account's ground truth")
    describe.add_argument("--manifest", default=str(s.manifest_path))
    describe.set_defaults(func=cmd_sandbox_describe)
    conn = sb.add_parser("connection", help="print the emulator's aws_default connection, for "
                         "export AIRFLOW_CONN_AWS_DEFAULT=$(aiops sandbox connection)")
    conn.add_argument("--endpoint", default=None, help="default: the make run emulator")
    conn.set_defaults(func=cmd_sandbox_connection)
    incident = sb.add_parser("incident", help="game day: inject a live incident into the running emulator")
    incident.add_argument("scenario", help="cpu-pinned | rds-connection-storm | 5xx-surge (`list` to describe)")
    incident.add_argument("--endpoint", default=s.sandbox_endpoint)
    incident.set_defaults(func=cmd_sandbox_incident)
    alerting = groups["alerting"]
    replay = alerting.add_parser("replay", help="noise-reduction report: replay the simulated account's events "
                                               "through the alerting rules (nothing is sent)")
    replay.add_argument("--days", type=float, default=7.0, help="days before the manifest's anchor (default 7)")
    replay.add_argument("--manifest", type=Path, help="ground truth manifest (default: the sandbox's)")
    replay.add_argument("--json", action="store_true", help="print the funnel as JSON")
    replay.set_defaults(func=cmd_alerting_replay)
    dev = sub.add_parser("dev", help="developer workflow").add_subparsers(dest="dev_command", required=True)
    run = dev.add_parser("run", help="emulator + seeded account + airflow standalone (make run)")
    run.add_argument("--no-sandbox", action="store_true",
                     help="use the AWS connection already configured instead of the emulator")
    run.add_argument("--seed", type=int, default=s.sandbox_seed)
    run.add_argument("--port", type=int, default=s.sandbox_port)
    run.set_defaults(func=cmd_dev_run)
