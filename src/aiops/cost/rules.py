"""The right-sizing and waste rules: a registry of pure functions over the inventory and the
utilisation evidence. Each rule yields :class:`RightsizingRecommendation`s; :func:`evaluate` runs
them in registration order and keeps one recommendation per resource (the first rule wins, so an
idle instance is stopped rather than resized, an unattached gp2 volume deleted rather than migrated).

Protected resources (``aiops:protected=true``) never get a recommendation, whatever the rule.

Methods follow AWS's published ones:

- *over-provisioned EC2* (Compute Optimizer): the CPU percentile (p99.5 by default) of the
  5-minute maxima over the lookback, scaled to each candidate's vCPUs, must stay under
  ``100 - headroom``; memory likewise when the CloudWatch agent reports it (without memory data a
  candidate never has less memory than today). Candidates are any cheaper type in the price table
  of the same processor architecture; burstable (t*) types only replace burstable ones.
- *idle EC2* (Trusted Advisor low utilisation): daily average CPU <= 10% and network in+out
  <= 5 MB on at least 4 of the last 14 days.
- *idle RDS*: no connection for ``cost_rds_idle_days`` days; *idle load balancer*: no request over
  the lookback; unattached EBS, gp2 volumes, snapshots past retention, unassociated Elastic IPs
  from the inventory alone.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aiops.core.settings import get_settings
from aiops.cost.collect import KEEP_TAG, Inventory, Resource, is_true
from aiops.cost.model import RightsizingRecommendation
from aiops.cost.pricing import PriceTable, family_of, is_burstable, is_graviton
from aiops.cost.utilisation import Utilisation, as_evidence


@dataclass(frozen=True)
class Thresholds:
    lookback_days: int = 14
    cpu_percentile: float = 99.5
    headroom_pct: float = 20.0
    idle_cpu_pct: float = 10.0
    idle_network_mb: float = 5.0
    idle_min_days: int = 4
    rds_idle_days: int = 7
    snapshot_retention_days: int = 90
    min_monthly_savings: float = 1.0

    @classmethod
    def from_settings(cls) -> Thresholds:
        s = get_settings()
        return cls(lookback_days=s.cost_lookback_days, cpu_percentile=s.cost_cpu_percentile,
                   headroom_pct=s.cost_headroom_pct, idle_cpu_pct=s.cost_idle_cpu_pct,
                   idle_network_mb=s.cost_idle_network_mb, idle_min_days=s.cost_idle_min_days,
                   rds_idle_days=s.cost_rds_idle_days, snapshot_retention_days=s.cost_snapshot_retention_days,
                   min_monthly_savings=s.cost_min_monthly_savings)


@dataclass(frozen=True)
class RuleContext:
    inventory: Inventory
    usage: Utilisation
    prices: PriceTable
    limits: Thresholds
    now: datetime


Rule = Callable[[RuleContext], Iterator[RightsizingRecommendation]]
RULES: dict[str, Rule] = {}


def rule(kind: str) -> Callable[[Rule], Rule]:
    def register(fn: Rule) -> Rule:
        if kind in RULES:
            raise ValueError(f"right-sizing rule {kind!r} registered twice")
        RULES[kind] = fn
        return fn
    return register


def _labels(r: Resource) -> dict[str, Any]:
    return {"name": r.name, "region": r.region, "service": r.tags.get("service", ""),
            "env": r.tags.get("env", ""), "team": r.tags.get("team", "")}


def _age_days(when: datetime | None, now: datetime) -> float | None:
    if when is None:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return round((now - when).total_seconds() / 86400, 1)


@rule("idle_instance")
def idle_instances(ctx: RuleContext) -> Iterator[RightsizingRecommendation]:
    lim = ctx.limits
    for inst in ctx.inventory.instances:
        usage = ctx.usage.instances.get(inst.id)
        if inst.state != "running" or usage is None or inst.auto_scaling_group:
            continue  # an ASG would replace a stopped member: resize the group instead
        days = usage.low_utilisation_days(lim.idle_cpu_pct, lim.idle_network_mb)
        if len(days) < lim.idle_min_days or inst.instance_type not in ctx.prices.ec2:
            continue
        current = ctx.prices.ec2_monthly(inst.instance_type)
        yield RightsizingRecommendation(
            kind="idle_instance", action="stop", resource_type="ec2:instance", resource_id=inst.id,
            current={"instance_type": inst.instance_type, "state": "running"}, recommended={"state": "stopped"},
            current_monthly_usd=current, recommended_monthly_usd=0.0,
            evidence={"low_utilisation_days": len(days), "days_with_data": usage.days_with_data,
                      "max_daily_cpu_avg": max(usage.daily_cpu_avg[d] for d in days),
                      "max_daily_network_mb": max(usage.daily_network_mb[d] for d in days),
                      "rule": f"daily CPU <= {lim.idle_cpu_pct:g}% and network <= {lim.idle_network_mb:g} MB "
                              f"on >= {lim.idle_min_days} of {lim.lookback_days} days (Trusted Advisor)",
                      "note": "attached EBS volumes are still billed while stopped"},
            confidence="high" if len(days) >= min(10, usage.days_with_data) else "medium",
            reason=f"idle on {len(days)} of the last {usage.days_with_data} days: stop it",
            runbook="stop-idle-instance", runbook_parameters={"InstanceId": inst.id}, **_labels(inst))


def pick_target(instance_type: str, cpu_pct: float, mem_pct: float | None, prices: PriceTable,
                headroom_pct: float) -> tuple[str, float, float | None] | None:
    """The cheapest type that keeps the percentile under ``100 - headroom`` (CPU, and memory when
    measured; unmeasured memory never shrinks): (type, projected CPU %, projected memory %)."""
    cur = prices.ec2_price(instance_type)
    limit = 100.0 - headroom_pct
    used_vcpu = cpu_pct / 100.0 * cur.vcpu
    used_mem = None if mem_pct is None else mem_pct / 100.0 * cur.memory_gib
    best: tuple[float, int, str, float, float | None] | None = None
    for cand, p in prices.ec2.items():
        if cand == instance_type or p.hourly >= cur.hourly:
            continue
        if is_graviton(cand) != is_graviton(instance_type) or (is_burstable(cand) and not is_burstable(instance_type)):
            continue
        proj_cpu = used_vcpu / p.vcpu * 100.0
        if proj_cpu > limit:
            continue
        if used_mem is None:
            if p.memory_gib < cur.memory_gib:
                continue
            proj_mem = None
        else:
            proj_mem = used_mem / p.memory_gib * 100.0
            if proj_mem > limit:
                continue
        key = (p.hourly, 0 if family_of(cand) == family_of(instance_type) else 1, cand,
               round(proj_cpu, 1), None if proj_mem is None else round(proj_mem, 1))
        if best is None or key[:3] < best[:3]:
            best = key
    return None if best is None else (best[2], best[3], best[4])


@rule("overprovisioned_instance")
def overprovisioned_instances(ctx: RuleContext) -> Iterator[RightsizingRecommendation]:
    lim = ctx.limits
    for inst in ctx.inventory.instances:
        usage = ctx.usage.instances.get(inst.id)
        if inst.state != "running" or usage is None or inst.auto_scaling_group:
            continue
        if inst.instance_type not in ctx.prices.ec2 or usage.days_with_data < min(lim.lookback_days, 7):
            continue  # too little history to size on
        target = pick_target(inst.instance_type, usage.cpu_percentile, usage.mem_percentile, ctx.prices,
                             lim.headroom_pct)
        if target is None:
            continue
        new_type, proj_cpu, proj_mem = target
        cur, new = ctx.prices.ec2_price(inst.instance_type), ctx.prices.ec2_price(new_type)
        measured = as_evidence(usage, lim.cpu_percentile)
        evidence = {f"cpu_p{lim.cpu_percentile:g}": usage.cpu_percentile, "projected_cpu_pct": proj_cpu,
                    "mem_measured": usage.mem_percentile is not None, "projected_mem_pct": proj_mem,
                    "headroom_pct": lim.headroom_pct, **measured,
                    "method": "Compute Optimizer: percentile of 5-minute maxima scaled to the target"}
        yield RightsizingRecommendation(
            kind="overprovisioned_instance", action="rightsize", resource_type="ec2:instance", resource_id=inst.id,
            current={"instance_type": inst.instance_type, "vcpu": cur.vcpu, "memory_gib": cur.memory_gib},
            recommended={"instance_type": new_type, "vcpu": new.vcpu, "memory_gib": new.memory_gib},
            current_monthly_usd=ctx.prices.ec2_monthly(inst.instance_type),
            recommended_monthly_usd=ctx.prices.ec2_monthly(new_type), evidence=evidence,
            confidence="high" if usage.mem_percentile is not None and usage.days_with_data >= lim.lookback_days
            else "medium",
            reason=(f"CPU p{lim.cpu_percentile:g} {usage.cpu_percentile:g}% of {cur.vcpu} vCPU; {new_type} "
                    f"runs it at {proj_cpu:g}%"
                    + (f", memory at {proj_mem:g}%" if proj_mem is not None else "")),
            runbook="rightsize-ec2-instance",
            runbook_parameters={"InstanceId": inst.id, "TargetInstanceType": new_type}, **_labels(inst))


@rule("unattached_volume")
def unattached_volumes(ctx: RuleContext) -> Iterator[RightsizingRecommendation]:
    for vol in ctx.inventory.volumes:
        if vol.state != "available" or vol.volume_type not in ctx.prices.ebs_gb_month:
            continue
        age = _age_days(vol.created, ctx.now)
        yield RightsizingRecommendation(
            kind="unattached_volume", action="snapshot_and_delete", resource_type="ec2:volume", resource_id=vol.id,
            current={"volume_type": vol.volume_type, "size_gib": vol.size_gib, "state": "available"},
            recommended={"state": "deleted", "snapshot_gib": vol.size_gib},
            current_monthly_usd=ctx.prices.volume_monthly(vol.volume_type, vol.size_gib),
            recommended_monthly_usd=ctx.prices.snapshot_monthly(vol.size_gib),
            evidence={"attached_to": [], "age_days": age,
                      "note": "the final snapshot is billed at most at the full volume size (incremental, "
                              "usually less)"},
            confidence="high" if age is not None and age >= 30 else "medium",
            reason=f"attached to nothing ({vol.size_gib} GiB {vol.volume_type}, created {age} days ago): "
                   "snapshot, then delete",
            runbook="delete-unattached-ebs-volume", runbook_parameters={"VolumeId": vol.id}, **_labels(vol))


@rule("gp2_volume")
def gp2_volumes(ctx: RuleContext) -> Iterator[RightsizingRecommendation]:
    for vol in ctx.inventory.volumes:
        if vol.volume_type != "gp2":
            continue
        # gp2 gives 3 IOPS/GiB (burst to 3,000); gp3's baseline is 3,000 IOPS and 125 MiB/s.
        gp2_iops = max(100, min(16000, 3 * vol.size_gib))
        yield RightsizingRecommendation(
            kind="gp2_volume", action="modify_to_gp3", resource_type="ec2:volume", resource_id=vol.id,
            current={"volume_type": "gp2", "size_gib": vol.size_gib, "baseline_iops": gp2_iops},
            recommended={"volume_type": "gp3", "size_gib": vol.size_gib, "iops": max(3000, gp2_iops),
                         "throughput_mibps": 125},
            current_monthly_usd=ctx.prices.volume_monthly("gp2", vol.size_gib),
            recommended_monthly_usd=ctx.prices.volume_monthly("gp3", vol.size_gib),
            evidence={"attached_to": vol.attached_to, "gp2_baseline_iops": gp2_iops,
                      "note": "online change (ModifyVolume), no downtime"},
            confidence="high" if gp2_iops <= 3000 else "medium",
            reason=f"{vol.size_gib} GiB gp2 -> gp3: same or better baseline performance, 20% cheaper per GiB",
            runbook="modify-ebs-volume-to-gp3", runbook_parameters={"VolumeId": vol.id}, **_labels(vol))


@rule("old_snapshot")
def old_snapshots(ctx: RuleContext) -> Iterator[RightsizingRecommendation]:
    keep_days = ctx.limits.snapshot_retention_days
    for snap in ctx.inventory.snapshots:
        age = _age_days(snap.started, ctx.now)
        if age is None or age <= keep_days or is_true(snap.tags, KEEP_TAG):
            continue
        yield RightsizingRecommendation(
            kind="old_snapshot", action="delete", resource_type="ec2:snapshot", resource_id=snap.id,
            current={"volume_size_gib": snap.volume_size_gib, "age_days": age},
            recommended={"state": "deleted"},
            current_monthly_usd=ctx.prices.snapshot_monthly(snap.volume_size_gib), recommended_monthly_usd=0.0,
            evidence={"age_days": age, "retention_days": keep_days, "volume_id": snap.volume_id,
                      "note": "savings are an upper bound: snapshots are incremental"},
            confidence="medium",
            reason=f"{age:g} days old, past the {keep_days}-day retention and not tagged {KEEP_TAG}=true",
            runbook="delete-ebs-snapshot", runbook_parameters={"SnapshotId": snap.id}, **_labels(snap))


@rule("unassociated_eip")
def unassociated_eips(ctx: RuleContext) -> Iterator[RightsizingRecommendation]:
    for eip in ctx.inventory.elastic_ips:
        if eip.association_id:
            continue
        yield RightsizingRecommendation(
            kind="unassociated_eip", action="release", resource_type="ec2:elastic-ip", resource_id=eip.id,
            current={"public_ip": eip.public_ip, "associated": False}, recommended={"state": "released"},
            current_monthly_usd=ctx.prices.eip_monthly(), recommended_monthly_usd=0.0,
            evidence={"association_id": None, "note": "a released address cannot be got back"},
            confidence="high", reason=f"Elastic IP {eip.public_ip} is associated with nothing",
            runbook="release-elastic-ip", runbook_parameters={"AllocationId": eip.id}, **_labels(eip))


@rule("idle_rds")
def idle_databases(ctx: RuleContext) -> Iterator[RightsizingRecommendation]:
    need = ctx.limits.rds_idle_days
    for db in ctx.inventory.databases:
        usage = ctx.usage.databases.get(db.id)
        if usage is None or db.status != "available" or db.instance_class not in ctx.prices.rds:
            continue
        idle_days = usage.days_without_connections()
        if idle_days < need:
            continue
        yield RightsizingRecommendation(
            kind="idle_rds", action="stop", resource_type="rds:db", resource_id=db.id,
            current={"instance_class": db.instance_class, "status": "available"}, recommended={"status": "stopped"},
            current_monthly_usd=ctx.prices.rds_monthly(db.instance_class), recommended_monthly_usd=0.0,
            evidence={"days_without_connections": idle_days, "required_days": need,
                      "note": "RDS starts a stopped instance again after 7 days; storage is still billed. "
                              "If nobody needs it, snapshot and delete it instead."},
            confidence="high", reason=f"no connection for {idle_days} days: stop it",
            runbook="stop-rds-instance", runbook_parameters={"DBInstanceIdentifier": db.id}, **_labels(db))


@rule("idle_load_balancer")
def idle_load_balancers(ctx: RuleContext) -> Iterator[RightsizingRecommendation]:
    for lb in ctx.inventory.load_balancers:
        usage = ctx.usage.load_balancers.get(lb.dimension)
        if usage is None or usage.requests > 0 or usage.days_with_data < min(ctx.limits.lookback_days, 7):
            continue
        yield RightsizingRecommendation(
            kind="idle_load_balancer", action="delete", resource_type="elbv2:load-balancer", resource_id=lb.id,
            current={"type": lb.lb_type, "name": lb.name_}, recommended={"state": "deleted"},
            current_monthly_usd=ctx.prices.alb_monthly(), recommended_monthly_usd=0.0,
            evidence={"requests": 0, "days_with_data": usage.days_with_data,
                      "note": "check DNS records and listeners before deleting (no runbook: manual)"},
            confidence="medium", reason=f"no request in {usage.days_with_data} days",
            runbook=None, name=lb.name_ or lb.name, region=lb.region, service=lb.tags.get("service", ""),
            env=lb.tags.get("env", ""), team=lb.tags.get("team", ""))


def _protected_ids(inv: Inventory) -> set[str]:
    protected = {r.id for group in (inv.instances, inv.volumes, inv.snapshots, inv.elastic_ips, inv.databases,
                                    inv.load_balancers) for r in group if r.protected}
    # A volume or snapshot of a protected instance/volume is protected too.
    for v in inv.volumes:
        if any(i in protected for i in v.attached_to):
            protected.add(v.id)
    for s in inv.snapshots:
        if s.volume_id in protected:
            protected.add(s.id)
    return protected


def evaluate(ctx: RuleContext) -> tuple[list[RightsizingRecommendation], dict[str, int]]:
    """Every rule, one recommendation per resource, protected resources and tiny savings left out."""
    protected = _protected_ids(ctx.inventory)
    seen: set[str] = set()
    out: list[RightsizingRecommendation] = []
    skipped = {"protected": 0, "below_min_savings": 0, "superseded": 0}
    for fn in RULES.values():
        for rec in fn(ctx):
            if rec.resource_id in protected:
                skipped["protected"] += 1
            elif rec.resource_id in seen:
                skipped["superseded"] += 1
            elif rec.monthly_savings_usd < ctx.limits.min_monthly_savings:
                skipped["below_min_savings"] += 1
            else:
                seen.add(rec.resource_id)
                out.append(rec)
    out.sort(key=lambda r: -r.monthly_savings_usd)
    return out, skipped
