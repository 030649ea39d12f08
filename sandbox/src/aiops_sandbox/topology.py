"""The simulated account, as data: services, teams, instances, load balancers, databases.

Names and numbers are chosen to look like a small e-commerce company's AWS account. The injected
truths (anomalies, waste, misconfigurations, incidents) are part of this description, so the
seeder and the ground-truth manifest cannot drift apart.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from aiops_sandbox.signals import Traffic

PROTECTED_TAG = "aiops:protected"


@dataclass(frozen=True)
class ServiceSpec:
    name: str
    team: str
    owner: str
    traffic: Traffic
    error_rate: float  # baseline share of 5xx responses
    latency_s: float  # baseline TargetResponseTime


@dataclass(frozen=True)
class InstanceSpec:
    name: str
    service: str
    env: str
    instance_type: str
    cpu_idle: float  # % CPU with no traffic
    cpu_per_load: float  # % CPU added at the service's peak load
    net_idle: float = 120_000.0  # bytes / 5 min without traffic (agents, SSM, NTP)
    bytes_per_request: float = 9_000.0
    cwagent: bool = False
    protected: bool = False
    asg: str | None = None
    schedule: str | None = None  # aiops:schedule tag (off-hours scaling)
    backup: str | None = None  # aiops:backup tag (snapshot policy)
    patch_group: str | None = None
    bursts_per_day: float = 1.0
    burst_size: float = 12.0
    truth: str | None = None  # idle | overprovisioned | busy | protected_idle
    share: float = 1.0  # share of the service's traffic this instance serves


@dataclass(frozen=True)
class LoadBalancerSpec:
    name: str
    env: str
    services: tuple[str, ...]
    team: str
    idle: bool = False


@dataclass(frozen=True)
class DatabaseSpec:
    identifier: str
    service: str
    env: str
    instance_class: str
    encrypted: bool
    public: bool
    protected: bool = False
    idle: bool = False
    max_connections: int = 1000


@dataclass(frozen=True)
class Topology:
    services: dict[str, ServiceSpec]
    instances: tuple[InstanceSpec, ...]
    load_balancers: tuple[LoadBalancerSpec, ...]
    databases: tuple[DatabaseSpec, ...]
    teams: tuple[str, ...] = field(default=("storefront", "payments", "platform"))


def default_topology() -> Topology:
    services = {
        "checkout": ServiceSpec(
            "checkout", "storefront", "maria.lopez@matcarv.example",
            Traffic("checkout", peak_per_step=42_000, peak_hour=19.0), 0.0002, 0.085),
        "catalog": ServiceSpec(
            "catalog", "storefront", "devon.price@matcarv.example",
            Traffic("catalog", peak_per_step=95_000, peak_hour=18.5), 0.0003, 0.120),
        "payments": ServiceSpec(
            "payments", "payments", "amir.haddad@matcarv.example",
            Traffic("payments", peak_per_step=18_000, peak_hour=19.5, noise=0.05), 0.0001, 0.210),
        "platform": ServiceSpec(
            "platform", "platform", "sre@matcarv.example",
            Traffic("platform", peak_per_step=300, amplitude=0.8, weekend_dip=0.7), 0.0, 0.05),
    }
    instances = (
        # checkout: an Auto Scaling group of three web servers
        *(InstanceSpec(f"checkout-prod-web-{i}", "checkout", "prod", "m5.large", 8, 45, asg="checkout-prod-asg",
                       share=1 / 3, backup=None, patch_group="prod-web") for i in range(1, 4)),
        # catalog
        InstanceSpec("catalog-prod-api-1", "catalog", "prod", "c5.xlarge", 10, 42, share=0.55,
                     backup="daily", patch_group="prod-api"),
        InstanceSpec("catalog-prod-api-2", "catalog", "prod", "m5.4xlarge", 2.5, 6.5, share=0.45,
                     cwagent=True, truth="overprovisioned", patch_group="prod-api", burst_size=2.0),
        InstanceSpec("catalog-prod-search", "catalog", "prod", "r5.large", 12, 30, share=0.0,
                     cwagent=True, backup="daily", patch_group="prod-api"),
        # payments: protected, change-controlled
        InstanceSpec("payments-prod-api-1", "payments", "prod", "m5.xlarge", 10, 35, share=0.5,
                     protected=True, backup="daily"),
        InstanceSpec("payments-prod-api-2", "payments", "prod", "m5.xlarge", 10, 35, share=0.5,
                     protected=True, backup="daily"),
        InstanceSpec("payments-prod-worker", "payments", "prod", "c5.large", 45, 40, share=0.0,
                     cwagent=True, truth="busy", bursts_per_day=6, burst_size=8, patch_group="prod-worker"),
        InstanceSpec("payments-prod-hsm-proxy", "payments", "prod", "t3.large", 2.0, 0.5, share=0.0,
                     protected=True, truth="protected_idle", net_idle=9_000, bursts_per_day=0),
        # platform
        InstanceSpec("platform-prod-bastion", "platform", "prod", "t3.micro", 1.2, 2.0, share=0.0,
                     net_idle=60_000, bursts_per_day=0.3),
        # staging
        InstanceSpec("checkout-staging-web", "checkout", "staging", "t3.medium", 4, 18, share=1.0,
                     schedule="office-hours", patch_group="staging"),
        InstanceSpec("catalog-staging-batch", "catalog", "staging", "m5.large", 0.7, 0.0, share=0.0,
                     truth="idle", net_idle=8_000, bursts_per_day=0, patch_group="staging"),
        InstanceSpec("payments-staging-api", "payments", "staging", "t3.medium", 3.5, 14, share=1.0,
                     schedule="office-hours", patch_group="staging"),
        InstanceSpec("platform-staging-ci-runner", "platform", "staging", "c5.2xlarge", 3, 4, share=0.0,
                     bursts_per_day=9, burst_size=55, schedule="office-hours", patch_group="staging"),
    )
    load_balancers = (
        LoadBalancerSpec("storefront-prod-alb", "prod", ("checkout", "catalog"), "storefront"),
        LoadBalancerSpec("payments-prod-alb", "prod", ("payments",), "payments"),
        LoadBalancerSpec("storefront-staging-alb", "staging", ("checkout",), "storefront", idle=True),
    )
    databases = (
        DatabaseSpec("checkout-prod-db", "checkout", "prod", "db.r5.large", encrypted=True, public=False),
        DatabaseSpec("payments-prod-db", "payments", "prod", "db.m5.large", encrypted=True, public=False,
                     protected=True),
        DatabaseSpec("catalog-staging-db", "catalog", "staging", "db.t3.medium", encrypted=False, public=True,
                     idle=True, max_connections=400),
    )
    return Topology(services, instances, load_balancers, databases)
