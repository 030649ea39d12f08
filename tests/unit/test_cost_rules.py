"""Right-sizing rules as pure functions over synthetic inventory and evidence."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from aiops.cost.collect import Database, ElasticIp, Instance, Inventory, LoadBalancer, Snapshot, Volume
from aiops.cost.pricing import default_prices
from aiops.cost.rules import RuleContext, Thresholds, evaluate, pick_target
from aiops.cost.utilisation import DatabaseUsage, InstanceUsage, LoadBalancerUsage, Utilisation

NOW = datetime(2026, 11, 20, 12, tzinfo=UTC)
DAYS = [(NOW - timedelta(days=k)).strftime("%Y-%m-%d") for k in range(14, 0, -1)]


def usage(iid: str, *, p: float = 50.0, cpu_daily: float = 30.0, net_mb: float = 500.0, mem: float | None = None,
          low_days: int = 0) -> InstanceUsage:
    daily_cpu = {d: (2.0 if k < low_days else cpu_daily) for k, d in enumerate(DAYS)}
    daily_net = {d: (1.0 if k < low_days else net_mb) for k, d in enumerate(DAYS)}
    return InstanceUsage(iid, "Maximum", p, p, 4032, 14, daily_cpu, daily_net, mem)


def run(inv: Inventory, use: Utilisation, **limits):
    recs, skipped = evaluate(RuleContext(inv, use, default_prices(), Thresholds(**limits), NOW))
    return {r.resource_id: r for r in recs}, skipped


def instance(iid: str, itype: str = "m5.large", **tags: str) -> Instance:
    return Instance(id=iid, region="us-east-1", tags={"Name": iid, **tags}, instance_type=itype, state="running")


@pytest.mark.parametrize(("itype", "cpu", "mem", "expected"), [
    pytest.param("m5.4xlarge", 11.7, 22.1, "r5.xlarge", id="cpu_fits_4_vcpu_memory_needs_32GiB"),
    pytest.param("m5.4xlarge", 11.7, None, "r5.2xlarge", id="unmeasured_memory_never_shrinks"),
    pytest.param("m5.4xlarge", 11.7, 3.0, "c5.xlarge", id="cheaper_family_when_memory_allows"),
    pytest.param("m5.4xlarge", 11.7, 15.0, "m5.xlarge", id="same_family_when_c5_memory_is_short"),
    pytest.param("c5.large", 100.0, 66.0, None, id="busy_has_no_smaller_type"),
    pytest.param("c5.xlarge", 45.0, 30.0, None, id="would_run_above_80_percent"),
    pytest.param("m5.large", 5.0, 10.0, "c5.large", id="never_burstable_or_graviton_for_m5"),
])
def test_pick_target(itype, cpu, mem, expected):
    result = pick_target(itype, cpu, mem, default_prices(), headroom_pct=20)
    assert (result[0] if result else None) == expected


def test_headroom_is_configurable():
    assert pick_target("m5.4xlarge", 11.7, 15.0, default_prices(), headroom_pct=20)[0] == "m5.xlarge"
    # 11.7% of 16 vCPU = 1.87 vCPU: 46.8% of 4 vCPU; with 60% headroom it needs 8 vCPU
    assert pick_target("m5.4xlarge", 11.7, 15.0, default_prices(), headroom_pct=60)[0] == "m5.2xlarge"


@pytest.mark.parametrize(("low_days", "idle"), [
    pytest.param(3, False, id="3_of_14_days_is_not_idle"),
    pytest.param(4, True, id="4_of_14_days_is_idle_trusted_advisor"),
])
def test_trusted_advisor_idle_rule(low_days, idle):
    inv = Inventory(instances=[instance("i-1")])
    recs, _ = run(inv, Utilisation(instances={"i-1": usage("i-1", low_days=low_days)}))
    assert (recs.get("i-1") is not None and recs["i-1"].kind == "idle_instance") is idle


def test_idle_needs_low_network_too():
    inv = Inventory(instances=[instance("i-1")])
    u = usage("i-1", cpu_daily=2.0, net_mb=50.0)  # quiet CPU but serving traffic
    recs, _ = run(inv, Utilisation(instances={"i-1": u}))
    assert "i-1" not in recs


def test_idle_instance_savings_are_its_full_price():
    inv = Inventory(instances=[instance("i-1", "m5.large")])
    recs, _ = run(inv, Utilisation(instances={"i-1": usage("i-1", low_days=14)}))
    assert recs["i-1"].monthly_savings_usd == round(0.096 * 730, 2)
    assert recs["i-1"].runbook_parameters == {"InstanceId": "i-1"}


@pytest.mark.parametrize("tags", [
    pytest.param({"aiops:protected": "true"}, id="protected"),
    pytest.param({"aiops:protected": "TRUE "}, id="protected_case_insensitive"),
    pytest.param({"aws:autoscaling:groupName": "web"}, id="asg_member"),
])
def test_protected_and_asg_instances_are_never_proposed(tags):
    inv = Inventory(instances=[instance("i-1", "m5.4xlarge", **tags)])
    recs, _ = run(inv, Utilisation(instances={"i-1": usage("i-1", p=5.0, mem=5.0, low_days=14)}))
    assert recs == {}


def test_volumes_of_protected_instances_are_protected():
    inv = Inventory(instances=[instance("i-p", **{"aiops:protected": "true"})],
                    volumes=[Volume(id="vol-1", region="us-east-1", tags={}, volume_type="gp2", size_gib=100,
                                    state="in-use", attached_to=["i-p"])])
    recs, skipped = run(inv, Utilisation())
    assert recs == {}
    assert skipped["protected"] == 1


def test_unattached_gp2_volume_is_deleted_not_migrated():
    vol = Volume(id="vol-1", region="us-east-1", tags={}, volume_type="gp2", size_gib=750, state="available",
                 created=NOW - timedelta(days=64))
    recs, skipped = run(Inventory(volumes=[vol]), Utilisation())
    assert recs["vol-1"].action == "snapshot_and_delete"
    assert recs["vol-1"].monthly_savings_usd == 75.0 - 37.5  # gp2 price minus the kept snapshot
    assert recs["vol-1"].confidence == "high"
    assert skipped["superseded"] == 1


def test_gp2_to_gp3_saves_twenty_percent():
    vol = Volume(id="vol-2", region="us-east-1", tags={}, volume_type="gp2", size_gib=500, state="in-use",
                 attached_to=["i-1"])
    recs, _ = run(Inventory(volumes=[vol]), Utilisation())
    assert recs["vol-2"].monthly_savings_usd == 10.0
    assert recs["vol-2"].runbook == "modify-ebs-volume-to-gp3"


@pytest.mark.parametrize(("age", "tags", "proposed"), [
    pytest.param(91, {}, True, id="past_90_days"),
    pytest.param(89, {}, False, id="within_retention"),
    pytest.param(400, {"aiops:keep": "true"}, False, id="kept_by_tag"),
])
def test_snapshot_retention(age, tags, proposed):
    snap = Snapshot(id="snap-1", region="us-east-1", tags=tags, volume_size_gib=100,
                    started=NOW - timedelta(days=age))
    recs, _ = run(Inventory(snapshots=[snap]), Utilisation())
    assert ("snap-1" in recs) is proposed


def test_unassociated_eip_idle_rds_and_idle_lb():
    inv = Inventory(
        elastic_ips=[ElasticIp(id="eipalloc-1", region="us-east-1", tags={}, public_ip="1.2.3.4"),
                     ElasticIp(id="eipalloc-2", region="us-east-1", tags={}, public_ip="1.2.3.5",
                               association_id="eipassoc-1")],
        databases=[Database(id="db-idle", region="us-east-1", tags={}, instance_class="db.t3.medium",
                            status="available"),
                   Database(id="db-busy", region="us-east-1", tags={}, instance_class="db.t3.medium",
                            status="available")],
        load_balancers=[LoadBalancer(id="arn:lb/quiet", region="us-east-1", tags={}, name_="quiet",
                                     dimension="app/quiet/1")])
    use = Utilisation(databases={"db-idle": DatabaseUsage("db-idle", dict.fromkeys(DAYS, 0.0)),
                                 "db-busy": DatabaseUsage("db-busy", {**dict.fromkeys(DAYS, 0.0), DAYS[-3]: 4.0})},
                      load_balancers={"app/quiet/1": LoadBalancerUsage("app/quiet/1", 0.0, 14)})
    recs, _ = run(inv, use)
    assert set(recs) == {"eipalloc-1", "db-idle", "arn:lb/quiet"}
    assert recs["eipalloc-1"].monthly_savings_usd == 3.65
    assert recs["db-idle"].evidence["days_without_connections"] == 14
    assert recs["db-idle"].runbook == "stop-rds-instance"


def test_tiny_savings_are_not_proposed():
    vol = Volume(id="vol-3", region="us-east-1", tags={}, volume_type="gp2", size_gib=20, state="in-use")
    recs, skipped = run(Inventory(volumes=[vol]), Utilisation(), min_monthly_savings=1.0)
    assert recs == {}  # 20 GiB x $0.02 = $0.40
    assert skipped["below_min_savings"] == 1
