"""Per-resource evidence from the metrics store (filled by ``metrics_extract``).

CPU follows Compute Optimizer: the Maximum statistic per 5-minute period where the store has it
(else the Average, which equals it at one sample per period), summarised as a high percentile.
Memory comes from the CloudWatch agent (``CWAgent mem_used_percent``) when it reports. Daily CPU
averages and daily network in+out feed Trusted Advisor's low-utilisation rule.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from aiops.metrics.store import MetricsStore

if TYPE_CHECKING:
    import pandas as pd

COLUMNS = ["timestamp", "value", "namespace", "metric", "stat", "dimensions", "resource_id"]


@dataclass
class InstanceUsage:
    instance_id: str
    cpu_stat: str
    cpu_percentile: float
    cpu_max: float
    cpu_samples: int
    days_with_data: int
    daily_cpu_avg: dict[str, float] = field(default_factory=dict)
    daily_network_mb: dict[str, float] = field(default_factory=dict)
    mem_percentile: float | None = None

    def low_utilisation_days(self, cpu_pct: float, network_mb: float) -> list[str]:
        """Days with daily average CPU <= cpu_pct and network in+out <= network_mb (Trusted Advisor)."""
        return sorted(d for d, cpu in self.daily_cpu_avg.items()
                      if cpu <= cpu_pct and self.daily_network_mb.get(d, float("inf")) <= network_mb)


@dataclass
class DatabaseUsage:
    db_id: str
    daily_max_connections: dict[str, float] = field(default_factory=dict)

    def days_without_connections(self) -> int:
        """Consecutive most-recent days with no connection at all."""
        n = 0
        for day in sorted(self.daily_max_connections, reverse=True):
            if self.daily_max_connections[day] > 0:
                break
            n += 1
        return n


@dataclass
class LoadBalancerUsage:
    dimension: str
    requests: float
    days_with_data: int


@dataclass
class Utilisation:
    instances: dict[str, InstanceUsage] = field(default_factory=dict)
    databases: dict[str, DatabaseUsage] = field(default_factory=dict)
    load_balancers: dict[str, LoadBalancerUsage] = field(default_factory=dict)
    rows: int = 0


def read_metrics(start: datetime, end: datetime) -> pd.DataFrame:
    frame = MetricsStore().read(start, end, columns=COLUMNS)
    wanted = {("AWS/EC2", "CPUUtilization"), ("AWS/EC2", "NetworkIn"), ("AWS/EC2", "NetworkOut"),
              ("CWAgent", "mem_used_percent"), ("AWS/RDS", "DatabaseConnections"),
              ("AWS/ApplicationELB", "RequestCount")}
    keep = [(ns, m) in wanted for ns, m in zip(frame["namespace"], frame["metric"], strict=True)]
    return frame[keep]


def summarise(frame: pd.DataFrame, percentile: float) -> Utilisation:
    """Evidence per instance, database and load balancer from store rows (see :data:`COLUMNS`)."""
    import numpy as np

    out = Utilisation(rows=len(frame))
    if not len(frame):
        return out
    frame = frame.assign(day=frame["timestamp"].dt.strftime("%Y-%m-%d"))
    ec2 = frame[frame["namespace"] == "AWS/EC2"]
    cpu = ec2[ec2["metric"] == "CPUUtilization"]
    net = ec2[ec2["metric"].isin(["NetworkIn", "NetworkOut"])]
    net_daily = net.groupby(["resource_id", "day"])["value"].sum() / 1e6
    mem = frame[(frame["namespace"] == "CWAgent") & (frame["metric"] == "mem_used_percent")]
    mem_pct = mem.groupby("resource_id")["value"].quantile(percentile / 100.0)
    for rid, rows in cpu.groupby("resource_id"):
        stats = set(rows["stat"])
        stat = "Maximum" if "Maximum" in stats else "Average"
        values = rows[rows["stat"] == stat]
        daily = values.groupby("day")["value"].mean()
        net_days = net_daily.loc[rid].to_dict() if rid in net_daily.index.get_level_values(0) else {}
        out.instances[str(rid)] = InstanceUsage(
            instance_id=str(rid), cpu_stat=stat,
            cpu_percentile=round(float(np.percentile(values["value"], percentile)), 2),
            cpu_max=round(float(values["value"].max()), 2), cpu_samples=len(values), days_with_data=len(daily),
            daily_cpu_avg={str(d): round(float(v), 3) for d, v in daily.items()},
            daily_network_mb={str(d): round(float(v), 3) for d, v in net_days.items()},
            mem_percentile=round(float(mem_pct[rid]), 2) if rid in mem_pct.index else None)
    rds = frame[(frame["namespace"] == "AWS/RDS") & (frame["metric"] == "DatabaseConnections")]
    for rid, rows in rds.groupby("resource_id"):
        out.databases[str(rid)] = DatabaseUsage(
            str(rid), {str(d): float(v) for d, v in rows.groupby("day")["value"].max().items()})
    elb = frame[(frame["namespace"] == "AWS/ApplicationELB") & (frame["metric"] == "RequestCount")]
    # Load-balancer-level series only (dimension LoadBalancer alone); target groups roll up into them.
    lb_rows = elb[~elb["dimensions"].str.contains("TargetGroup=", regex=False)]
    for dims, rows in lb_rows.groupby("dimensions"):
        dim = str(dims).split("LoadBalancer=", 1)[-1]
        out.load_balancers[dim] = LoadBalancerUsage(dim, float(rows["value"].sum()), int(rows["day"].nunique()))
    return out


def as_evidence(usage: InstanceUsage, percentile: float) -> dict[str, Any]:
    return {"cpu_statistic": usage.cpu_stat, f"cpu_p{percentile:g}": usage.cpu_percentile,
            "cpu_max": usage.cpu_max, "cpu_samples": usage.cpu_samples, "days_with_data": usage.days_with_data,
            **({f"mem_p{percentile:g}": usage.mem_percentile} if usage.mem_percentile is not None else {})}
