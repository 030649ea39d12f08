"""Daily Cost Explorer line items for the simulated account, derived from its resources.

Costs follow the resources (instance hours x price, volumes, load balancers, databases), grow
with traffic, carry the account's cost-allocation tags (service, team, env) and include one
injected spend anomaly: a data-transfer spike on catalog nine days before the anchor.
"""

from __future__ import annotations

import random
from datetime import date, timedelta
from typing import Any

import yaml

from aiops.core.settings import get_settings
from aiops_sandbox.topology import Topology

EC2 = "Amazon Elastic Compute Cloud - Compute"
EC2_OTHER = "EC2 - Other"
RDS = "Amazon Relational Database Service"
ELB = "Amazon Elastic Load Balancing"
S3 = "Amazon Simple Storage Service"
CW = "AmazonCloudWatch"
TRANSFER = "AWS Data Transfer"


def load_prices() -> dict[str, Any]:
    return yaml.safe_load((get_settings().include_dir / "pricing" / "aws_us_east_1.yaml").read_text())


def build_cost_items(topo: Topology, seed: int, end: date, days: int) -> tuple[list[dict[str, Any]], dict]:
    """Line items for the ``days`` before ``end`` (exclusive) and the injected spend anomaly."""
    prices = load_prices()
    rng = random.Random(seed * 7919 + 17)
    items: list[dict[str, Any]] = []
    spike_day = end - timedelta(days=9)

    def add(day: date, aws_service: str, usage_type: str, cost: float, usage: float, **tags: str) -> None:
        items.append({"date": day.isoformat(), "service": aws_service, "region": "us-east-1",
                      "usage_type": usage_type, "cost": round(cost, 6), "usage": round(usage, 4), "tags": tags})

    for i in range(days, 0, -1):
        day = end - timedelta(days=i)
        growth = 1 + 0.003 * (days - i)
        weekend = 0.92 if day.weekday() >= 5 else 1.0
        for spec in topo.instances:
            svc = topo.services[spec.service]
            price = prices["ec2"][spec.instance_type]["hourly"]
            hours = 24.0  # off-hours schedules are not enforced in the seeded history
            add(day, EC2, f"BoxUsage:{spec.instance_type}", price * hours * rng.uniform(0.995, 1.005), hours,
                service=spec.service, team=svc.team, env=spec.env)
        for db in topo.databases:
            svc = topo.services[db.service]
            price = prices["rds"][db.instance_class]["hourly"]
            add(day, RDS, f"InstanceUsage:{db.instance_class}", price * 24, 24, service=db.service,
                team=svc.team, env=db.env)
            add(day, RDS, "RDS:GP2-Storage", 100 * prices["rds_storage_gb_month"]["gp2"] / 30, 100 / 30,
                service=db.service, team=svc.team, env=db.env)
        for lb in topo.load_balancers:
            lcu = 0.2 if lb.idle else 6.0 * growth * weekend
            add(day, ELB, "LoadBalancerUsage", 24 * (prices["alb_hourly"] + lcu * prices["alb_lcu_hourly"]), 24,
                service=lb.services[0], team=lb.team, env=lb.env)
        ebs = {"catalog": (500 + 750 + 300) * 0.10, "checkout": 100 * 0.10, "payments": 200 * 0.08,
               "platform": 200 * 0.08}
        for svc_name, monthly in ebs.items():
            svc = topo.services[svc_name]
            add(day, EC2_OTHER, "EBS:VolumeUsage", monthly / 30, 0, service=svc_name, team=svc.team, env="prod")
        add(day, EC2_OTHER, "PublicIPv4:InUseAddress", 3 * 24 * prices["public_ipv4_hourly"], 72,
            service="platform", team="platform", env="prod")
        add(day, EC2_OTHER, "EBS:SnapshotUsage", 1750 * prices["snapshot_gb_month"] / 30, 0,
            service="platform", team="platform", env="prod")
        for svc_name, gb in (("checkout", 180), ("catalog", 420), ("payments", 60)):
            svc = topo.services[svc_name]
            transfer = gb * growth * weekend * rng.uniform(0.93, 1.07)
            if svc_name == "catalog" and day == spike_day:
                transfer *= 6.5  # injected: a misconfigured CDN origin pulled the image set
            add(day, TRANSFER, "DataTransfer-Out-Bytes", transfer * 0.09, transfer, service=svc_name,
                team=svc.team, env="prod")
            add(day, S3, "TimedStorage-ByteHrs", gb * 0.023 / 30 * 10, gb * 10, service=svc_name,
                team=svc.team, env="prod")
        add(day, CW, "CW:MetricMonitorUsage", 4.1 * growth, 120, service="platform", team="platform", env="prod")
    anomaly = {"kind": "spend_spike", "date": spike_day.isoformat(), "service": TRANSFER, "tag_service": "catalog",
               "factor": 6.5, "description": "catalog data transfer 6.5x on one day (CDN origin misconfiguration)"}
    return items, anomaly
