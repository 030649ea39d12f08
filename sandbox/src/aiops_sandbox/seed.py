"""Seed the simulated account into an emulator and write its ground-truth manifest.

``seed_account(endpoint, seed=7)`` is what ``aiops sandbox seed`` and ``make run`` call. It is
deterministic from (seed, anchor): the anchor defaults to "now" floored to 5 minutes so the
metric history always ends at the present.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from aiops_sandbox import emulator
from aiops_sandbox.fleet_metrics import STEP, SeriesDef, build_series
from aiops_sandbox.resources import (
    Created,
    create_buckets,
    create_cloudtrail_notifications,
    create_compute,
    create_databases,
    create_iam,
    create_load_balancers,
    create_log_groups,
    create_network,
    create_ops_fixtures,
    create_storage,
    create_trail,
    deploy_bootstrap_stack,
)
from aiops_sandbox.topology import Topology, default_topology

Progress = Callable[[str], None]


@dataclass
class SeedResult:
    manifest: dict[str, Any]
    series: list[SeriesDef] = field(repr=False)
    created: Created = field(repr=False)
    seconds: float = 0.0


def _iso(x: float | datetime) -> str:
    if not isinstance(x, datetime):
        x = datetime.fromtimestamp(x, UTC)
    return x.astimezone(UTC).isoformat().replace("+00:00", "Z")


def boto_factory(endpoint: str, region: str = "us-east-1") -> Callable[[str], Any]:
    import boto3
    from botocore.config import Config

    session = boto3.session.Session(aws_access_key_id="testing", aws_secret_access_key="testing",
                                    region_name=region)
    cfg = Config(retries={"max_attempts": 2}, parameter_validation=False)
    cache: dict[str, Any] = {}

    def get(service: str) -> Any:
        if service not in cache:
            cache[service] = session.client(service, endpoint_url=endpoint, config=cfg)
        return cache[service]

    return get


def default_anchor() -> datetime:
    now = time.time()
    return datetime.fromtimestamp(now // STEP * STEP, UTC)


def seed_account(
    endpoint: str,
    *,
    seed: int = 7,
    anchor: datetime | None = None,
    metric_days: int = 15,
    cost_days: int = 75,
    region: str = "us-east-1",
    manifest_path: Path | None = None,
    topology: Topology | None = None,
    progress: Progress = lambda msg: None,
) -> SeedResult:
    """Create the simulated account in the emulator at ``endpoint``; returns its ground truth."""
    if not emulator.is_sandbox(endpoint):
        raise RuntimeError(
            f"{endpoint} is not a MatCarv sandbox emulator (no /aiops-sandbox/ping). Start one with "
            "`aiops sandbox up`; a plain moto server lacks the metric index, cost data and back-dating "
            "the simulated account needs."
        )
    started = time.monotonic()
    topo = topology or default_topology()
    anchor = anchor or default_anchor()
    anchor_ts = anchor.timestamp() // STEP * STEP
    clients = boto_factory(endpoint, region)
    account_id = clients("sts").get_caller_identity()["Account"]
    if clients("ec2").describe_vpcs(Filters=[{"Name": "tag:Name", "Values": ["matcarv-main"]}])["Vpcs"]:
        raise RuntimeError(f"{endpoint} already holds a seeded account; restart the emulator to reseed.")
    out = Created(account_id=account_id, region=region)

    def days_ago(days: float) -> str:
        return _iso(anchor_ts - days * 86_400)

    steps: list[tuple[str, Callable[[], None]]] = [
        ("network and security groups", lambda: create_network(clients, topo, out)),
        ("EC2 instances and Auto Scaling group", lambda: create_compute(clients, topo, out)),
        ("load balancers and target groups", lambda: create_load_balancers(clients, topo, out)),
        ("RDS instances", lambda: create_databases(clients, topo, out)),
        ("EBS volumes, snapshots, Elastic IPs", lambda: create_storage(clients, topo, out, _iso(anchor_ts),
                                                                       days_ago)),
        ("routine-operations snapshot history and golden AMI", lambda: create_ops_fixtures(clients, out, days_ago)),
        ("S3 buckets", lambda: create_buckets(clients, out)),
        ("IAM users, roles, policies", lambda: create_iam(clients, out, days_ago)),
        ("bootstrap stack (infra/bootstrap.yaml): roles, queues, rule, topics, SES sender",
         lambda: deploy_bootstrap_stack(clients, topo, out)),
        ("CloudTrail trail", lambda: create_trail(clients, out)),
        ("CloudTrail file notifications (S3 -> SQS aiops-cloudtrail-files)",
         lambda: create_cloudtrail_notifications(clients, out)),
        ("CloudWatch Logs groups", lambda: create_log_groups(clients, topo, out)),
    ]
    for label, fn in steps:
        t0 = time.monotonic()
        fn()
        progress(f"  {label} ({time.monotonic() - t0:.1f}s)")

    emulator.post(endpoint, "backdate", {"account_id": account_id, "items": out.backdates})
    progress(f"  back-dated {len(out.backdates)} snapshots, volumes and access keys")

    series = build_series(topo, out, seed, anchor_ts)
    t0 = time.monotonic()
    n_points = push_history(endpoint, account_id, region, series, anchor_ts - metric_days * 86_400, anchor_ts)
    progress(f"  {len(series)} metric series, {n_points:,} datapoints over {metric_days} days "
             f"({time.monotonic() - t0:.1f}s)")

    from aiops_sandbox.costs import build_cost_items

    cost_items, cost_anomaly = build_cost_items(topo, seed, anchor.date(), cost_days)
    emulator.post(endpoint, "cost", {"account_id": account_id, "items": cost_items})
    progress(f"  {len(cost_items):,} Cost Explorer line items over {cost_days} days")

    security_events = seed_cloudtrail(clients, out, seed, anchor)
    progress(f"  CloudTrail log files with {len(security_events)} injected security events")
    log_truth = seed_app_logs(clients, topo, out, seed, anchor, series, endpoint)
    progress(f"  application logs in {len(out.log_groups)} log groups")

    manifest = build_manifest(topo, out, series, seed=seed, anchor_ts=anchor_ts, metric_days=metric_days,
                              cost_days=cost_days, cost_anomaly=cost_anomaly,
                              security_events=security_events, log_truth=log_truth, endpoint=endpoint)
    from aiops_sandbox.traces import seed_traces

    t0 = time.monotonic()
    n_traces = seed_traces(endpoint, manifest, anchor_ts - metric_days * 86_400, anchor_ts, seed=seed,
                           account_id=account_id, region=region)
    progress(f"  {n_traces:,} X-Ray traces ({time.monotonic() - t0:.1f}s)")
    if manifest_path is not None:
        manifest_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = manifest_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(manifest, indent=2, sort_keys=False))
        tmp.replace(manifest_path)
    return SeedResult(manifest, series, out, time.monotonic() - started)


def push_history(endpoint: str, account_id: str, region: str, series: list[SeriesDef], start: float,
                 end: float, batch: int = 16) -> int:
    """Bulk-load [start, end) of every series into the emulator's metric index."""
    import numpy as np

    t = np.arange(start, end, STEP, dtype=np.int64)
    total = 0
    for i in range(0, len(series), batch):
        payload = []
        for s in series[i:i + batch]:
            values = np.round(s.values(t), 6)
            payload.append({"namespace": s.namespace, "metric": s.metric,
                            "dimensions": [{"Name": k, "Value": v} for k, v in s.dimensions],
                            "unit": s.unit, "start": float(start), "step": STEP, "values": values.tolist()})
        total += emulator.post(endpoint, "metrics", {"account_id": account_id, "region": region,
                                                     "series": payload})["datapoints"]
    return total


def put_live_points(cloudwatch: Any, series: list[SeriesDef], start: float, end: float) -> int:
    """Publish [start, end) of every series through the real PutMetricData API (live feed)."""
    import numpy as np

    t = np.arange(start, end, STEP, dtype=np.int64)
    if len(t) == 0:
        return 0
    by_ns: dict[str, list[dict[str, Any]]] = {}
    for s in series:
        for ts, v in zip(t, s.values(t), strict=True):
            by_ns.setdefault(s.namespace, []).append({
                "MetricName": s.metric, "Dimensions": [{"Name": k, "Value": v2} for k, v2 in s.dimensions],
                "Timestamp": datetime.fromtimestamp(int(ts), UTC), "Value": float(v), "Unit": s.unit})
    n = 0
    for ns, data in by_ns.items():
        for i in range(0, len(data), 1000):
            cloudwatch.put_metric_data(Namespace=ns, MetricData=data[i:i + 1000])
            n += len(data[i:i + 1000])
    return n


def seed_cloudtrail(clients: Any, out: Created, seed: int, anchor: datetime) -> list[dict[str, Any]]:
    from aiops_sandbox.cloudtrail import TrailActor, build_cloudtrail_logs

    actors = [TrailActor("Root", "root", f"arn:aws:iam::{out.account_id}:root", None, False)]
    for name, info in out.users.items():
        actors.append(TrailActor("IAMUser", name, info["arn"], info.get("access_key_id"), bool(info["mfa"])))
    files, injected = build_cloudtrail_logs(
        account_id=out.account_id, region=out.region, anchor=anchor, seed=seed, users=actors,
        resources={"trail_name": out.trail_name, "bastion_sg_id": out.security_groups["bastion-ssh"],
                   "instance_ids": ",".join(out.instances.values())})
    s3 = clients("s3")
    for key, body in files:
        s3.put_object(Bucket=out.buckets["cloudtrail"], Key=key, Body=body)
    return [asdict(e) for e in injected]


def seed_app_logs(clients: Any, topo: Topology, out: Created, seed: int, anchor: datetime,
                  series: list[SeriesDef], endpoint: str) -> list[dict[str, Any]]:
    """Application logs per service, with error bursts at the injected incidents' times."""
    from aiops_sandbox.applogs import LogBurst, build_app_log_events, chunk_log_events

    def window(resource: str, metric: str) -> tuple[datetime, datetime] | None:
        for s in series:
            if s.resource == resource and s.metric == metric and s.anomalies:
                a = s.anomalies[0]
                start = datetime.fromisoformat(a["start"].replace("Z", "+00:00"))
                end = datetime.fromisoformat(a["end"].replace("Z", "+00:00")) if a["end"] else anchor
                return start, min(end, anchor)
        return None

    bursts: dict[str, list[LogBurst]] = {"checkout": [], "catalog": [], "payments": []}
    truth = []
    for service, resource, metric, level, messages, rate in (
        ("checkout", "checkout/prod", "HTTPCode_Target_5XX_Count", "ERROR",
         ["upstream payment-gateway timeout after 3000ms", "HTTP 503 returned to client: circuit open"], 30.0),
        ("checkout", "checkout-prod-db", "DatabaseConnections", "ERROR",
         ["FATAL: remaining connection slots are reserved for non-replication superuser connections",
          "could not obtain connection from pool within 5000ms"], 25.0),
        ("catalog", "catalog/prod", "TargetResponseTime", "WARN",
         ["slow query: search_products took 1840ms", "cache miss storm on product-index"], 3.0),
        ("payments", "payments-prod-api-2", "NetworkIn", "ERROR",
         ["health check /healthz failed: connection reset", "instance unreachable from load balancer"], 12.0),
    ):
        w = window(resource, metric)
        if w is None:
            continue
        start, end = w
        if metric == "TargetResponseTime":  # an ongoing shift: a burst in its first hour only
            end = start + timedelta(hours=1)
        if end <= anchor - timedelta(hours=48) or start >= anchor:
            continue
        bursts[service].append(LogBurst(start=start, end=end, level=level, messages=messages,
                                        rate_per_min=rate, tag=f"{resource}:{metric}"))
        truth.append({"service": service, "log_group": f"/matcarv/{service}/prod/application",
                      "start": _iso(start), "end": _iso(end), "level": level, "messages": messages})
    logs = clients("logs")
    # PutLogEvents takes the last 14 days only (as on AWS): older history (an anchor further back,
    # e.g. the test suite's) goes through the emulator's log-history extension (docs/sandbox.md).
    accepted_from = (time.time() - 14 * 86_400 + 600) * 1000
    for service in ("checkout", "catalog", "payments"):
        group = f"/matcarv/{service}/prod/application"
        events = build_app_log_events(service=service, env="prod", anchor=anchor, seed=seed,
                                      bursts=bursts[service])
        logs.create_log_stream(logGroupName=group, logStreamName="app/i-main")
        old = [e for e in events if e["timestamp"] < accepted_from]
        if old:
            emulator.post(endpoint, "logs", {"account_id": out.account_id, "region": out.region, "group": group,
                                             "stream": "app/i-main", "events": old})
        for chunk in chunk_log_events(events[len(old):]):
            logs.put_log_events(logGroupName=group, logStreamName="app/i-main", logEvents=chunk)
    return truth


def build_manifest(topo: Topology, out: Created, series: list[SeriesDef], *, seed: int, anchor_ts: float,
                   metric_days: int, cost_days: int, cost_anomaly: dict, security_events: list[dict],
                   log_truth: list[dict], endpoint: str) -> dict[str, Any]:
    inst = out.instances
    type_of = {s.name: s.instance_type for s in topo.instances}
    anomalies, clean = [], []
    for s in series:
        if not s.anomalies:
            clean.append(s.series_id)
        for i, a in enumerate(s.anomalies):
            anomalies.append({"id": f"{s.resource}:{s.metric}:{i}", "series_id": s.series_id,
                              "resource": s.resource, "metric": s.metric, **a})
    truth_of = {s.name: s.truth for s in topo.instances if s.truth}
    lbs = {lb.name: lb for lb in topo.load_balancers}
    surge = next(a for a in anomalies if a["metric"] == "HTTPCode_Target_5XX_Count" and a["detectable"])
    return {
        "seed": seed,
        "anchor": _iso(anchor_ts),
        "account_id": out.account_id,
        "region": out.region,
        "endpoint": endpoint,
        "metrics": {"period_seconds": STEP, "days": metric_days, "start": _iso(anchor_ts - metric_days * 86_400),
                    "end": _iso(anchor_ts), "series_count": len(series)},
        "series": [{"series_id": s.series_id, "namespace": s.namespace, "metric": s.metric,
                    "dimensions": dict(s.dimensions), "stat": s.stat, "unit": s.unit, "resource": s.resource}
                   for s in series],
        "anomalies": anomalies,
        "clean_series": clean,
        "resources": {
            "vpc_id": out.vpc_id, "instances": inst,
            "instance_types": {name: type_of[name] for name in inst},
            "asgs": out.asg_names, "load_balancers": out.load_balancers, "target_groups": out.target_groups,
            "databases": out.databases, "volumes": out.volumes, "snapshots": out.snapshots,
            "elastic_ips": out.elastic_ips, "buckets": out.buckets, "security_groups": out.security_groups,
            "users": out.users, "topics": out.topics, "queues": out.queues, "trail": out.trail_name,
            "log_groups": out.log_groups,
            "protected": sorted([inst[s.name] for s in topo.instances if s.protected]
                                + [d.identifier for d in topo.databases if d.protected]),
        },
        "waste": {
            "idle_instances": [inst[n] for n, t in truth_of.items() if t == "idle"],
            "overprovisioned_instances": [{"instance_id": inst[n], "instance_type": type_of[n],
                                           "note": "p99 CPU ~11% of 16 vCPU: 4 vCPU is enough"}
                                          for n, t in truth_of.items() if t == "overprovisioned"],
            "busy_instances": [inst[n] for n, t in truth_of.items() if t == "busy"],
            "protected_idle_instances": [inst[n] for n, t in truth_of.items() if t == "protected_idle"],
            "unattached_volumes": [out.volumes["catalog-old-index-2026q3"], out.volumes["ci-runner-scratch"]],
            "gp2_volumes": [out.volumes[v] for v in ("catalog-prod-search-data", "checkout-prod-web-1-cache",
                                                      "catalog-old-index-2026q3", "catalog-staging-batch-data")],
            "old_snapshots": [out.snapshots[s] for s in ("catalog-search-2025-migration", "checkout-cache-2025-q4")],
            "kept_snapshots": [out.snapshots["payments-ledger-audit-2025"]],
            "unassociated_eips": [out.elastic_ips["old-nat-eip"], out.elastic_ips["promo-landing-eip"]],
            "idle_rds": [d.identifier for d in topo.databases if d.idle],
            "idle_load_balancers": [out.load_balancers[n]["arn"] for n, lb in lbs.items() if lb.idle],
        },
        "misconfigurations": [
            {"id": "ssh_open_to_world", "resource": out.security_groups["bastion-ssh"], "port": 22},
            {"id": "rdp_open_to_world_ipv6", "resource": out.security_groups["staging-windows-rdp"], "port": 3389},
            {"id": "user_without_mfa", "resource": "bob.builder"},
            {"id": "old_access_key", "resource": out.users["ci-legacy"]["access_key_id"], "user": "ci-legacy",
             "age_days": 412},
            {"id": "admin_star_policy_attached_to_user", "resource": "legacy-full-admin", "user": "bob.builder"},
            {"id": "public_bucket", "resource": out.buckets["public_assets"]},
            {"id": "unencrypted_volume", "resource": out.volumes["catalog-staging-batch-data"]},
            {"id": "rds_unencrypted", "resource": "catalog-staging-db"},
            {"id": "rds_publicly_accessible", "resource": "catalog-staging-db"},
            {"id": "log_group_without_retention",
             "resource": sorted(g for g, r in out.log_groups.items() if r is None)},
        ],
        "security_events": security_events,
        "incidents": [{"id": "checkout-5xx-surge", "service": "checkout", "start": surge["start"],
                       "end": surge["end"], "series_id": surge["series_id"]}],
        "slo": {"page": ["checkout"], "ticket": ["catalog"], "quiet": ["payments"],
                "objective": 0.999},
        "logs": log_truth,
        "cost": {"days": cost_days, "anomaly": cost_anomaly},
        "ops": out.ops,
    }
