"""The simulated account's CloudWatch series and the anomalies injected into them.

``build_series`` turns the created resources into a list of :class:`SeriesDef`, each with a
function of time; ``SeriesDef.values(t)`` is what the emulator holds at those timestamps, for the
seeded history and for live points alike.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aiops_sandbox import signals as sig
from aiops_sandbox.resources import Created
from aiops_sandbox.topology import DatabaseSpec, Topology

if TYPE_CHECKING:
    import numpy as np

DAY = sig.DAY
STEP = sig.STEP


@dataclass
class SeriesDef:
    namespace: str
    metric: str
    dimensions: tuple[tuple[str, str], ...]
    stat: str
    unit: str
    resource: str  # human name of the resource (spec name / identifier)
    fn: Callable[[np.ndarray], np.ndarray]
    anomalies: list[dict[str, Any]] = field(default_factory=list)

    @property
    def series_id(self) -> str:
        from aiops.metrics.model import series_id

        return series_id(self.namespace, self.metric, dict(self.dimensions), self.stat)

    def values(self, t: np.ndarray) -> np.ndarray:
        return self.fn(t)


@dataclass(frozen=True)
class Schedule:
    """Absolute times (epoch seconds) of the injected events, derived from the anchor."""

    anchor: float

    def day_at(self, days_ago: int, hh: int, mm: int) -> float:
        return (self.anchor // DAY - days_ago) * DAY + hh * 3600 + mm * 60

    def ago(self, hours: float) -> float:
        return (self.anchor - hours * 3600) // STEP * STEP


def _anomaly(kind: str, start: float, end: float, magnitude: float, description: str,
             detectable: bool = True) -> tuple[sig.Anomaly, dict[str, Any]]:
    from datetime import UTC, datetime

    def iso(x: float) -> str:
        return datetime.fromtimestamp(min(x, 4e9), UTC).isoformat().replace("+00:00", "Z")

    return sig.Anomaly(kind, start, end, magnitude), {
        "kind": kind, "start": iso(start), "end": iso(end) if end < 4e9 else None,
        "magnitude": magnitude, "description": description, "detectable": detectable}


FAR = 4.0e9  # "until further notice"


def build_series(topo: Topology, out: Created, seed: int, anchor: float) -> list[SeriesDef]:
    import numpy as np

    sch = Schedule(anchor)
    series: list[SeriesDef] = []
    traffic = {name: (lambda t, s=svc: s.traffic(seed, t)) for name, svc in topo.services.items()}
    staging_scale = 0.004  # staging sees test traffic only

    def load(service: str, env: str, t: np.ndarray) -> np.ndarray:
        svc = topo.services[service]
        base = traffic[service](t) / svc.traffic.peak_per_step
        return base * (staging_scale * 40 if env == "staging" else 1.0)

    # Injected anomalies, keyed by (resource, metric)
    inject: dict[tuple[str, str], list[tuple[sig.Anomaly, dict[str, Any]]]] = {
        ("checkout-prod-web-1", "CPUUtilization"): [_anomaly(
            "spike", sch.day_at(3, 14, 10), sch.day_at(3, 14, 35), 97.0,
            "checkout-prod-web-1 CPU pinned at ~97% for 25 minutes (runaway thread)")],
        ("catalog-prod-search", "mem_used_percent"): [_anomaly(
            "slow_leak", sch.day_at(4, 0, 0), sch.day_at(4, 0, 0) + 4 * DAY, 40.0,
            "catalog-prod-search memory leak: +40 points over four days")],
        ("payments-prod-api-2", "NetworkIn"): [_anomaly(
            "dropout", sch.day_at(2, 3, 20), sch.day_at(2, 4, 10), 1_500.0,
            "payments-prod-api-2 dropped off the network for 50 minutes (ENI failure)")],
        ("payments-prod-api-2", "NetworkOut"): [_anomaly(
            "dropout", sch.day_at(2, 3, 20), sch.day_at(2, 4, 10), 1_200.0,
            "payments-prod-api-2 dropped off the network for 50 minutes (ENI failure)")],
        ("payments-prod-api-2", "StatusCheckFailed"): [_anomaly(
            "spike", sch.day_at(2, 3, 20), sch.day_at(2, 4, 10), 1.0,
            "payments-prod-api-2 failed instance status checks")],
        ("checkout-prod-db", "DatabaseConnections"): [_anomaly(
            "spike", sch.day_at(4, 11, 40), sch.day_at(4, 12, 0), 870.0,
            "checkout-prod-db connection storm (pool misconfiguration in a deploy)")],
        ("checkout-prod-db", "CPUUtilization"): [_anomaly(
            "spike", sch.day_at(4, 11, 40), sch.day_at(4, 12, 0), 88.0,
            "checkout-prod-db CPU during the connection storm")],
        ("catalog/prod", "TargetResponseTime"): [_anomaly(
            "level_shift", sch.day_at(5, 10, 0), FAR, 2.6,
            "catalog latency stepped up 2.6x after the 10:00 deploy five days ago")],
        ("checkout/prod", "HTTPCode_Target_5XX_Count"): [_anomaly(
            "surge", sch.ago(6), sch.ago(6) + 45 * 60, 0.08,
            "checkout 5xx surge: 8% of requests failed for 45 minutes (SLO page)")],
        ("catalog/prod", "HTTPCode_Target_5XX_Count"): [_anomaly(
            "surge", sch.day_at(4, 0, 0), FAR, 0.004,
            "catalog slow burn: 0.4% errors since four days ago (SLO ticket, not a page)",
            detectable=False)],
    }

    def with_anomalies(resource: str, metric: str, fn: Callable[[np.ndarray], np.ndarray],
                       high: float | None = None) -> tuple[Callable[[np.ndarray], np.ndarray], list]:
        items = inject.get((resource, metric), [])

        def apply(t: np.ndarray) -> np.ndarray:
            v = fn(t)
            for a, _ in items:
                v = a.apply(t, v)
            return sig.clip(v, 0.0, high)

        return apply, [meta for _, meta in items]

    def add(namespace: str, metric: str, dims: dict[str, str], stat: str, unit: str, resource: str,
            fn: Callable[[np.ndarray], np.ndarray], high: float | None = None, key: str | None = None) -> None:
        wrapped, metas = with_anomalies(key or resource, metric, fn, high)
        series.append(SeriesDef(namespace, metric, tuple(sorted(dims.items())), stat, unit, resource, wrapped,
                                metas))

    # --- EC2 instances -------------------------------------------------------------------------
    for spec in topo.instances:
        iid = out.instances[spec.name]
        dims = {"InstanceId": iid}
        name = spec.name

        def cpu(t: np.ndarray, s=spec, n=name) -> np.ndarray:
            lv = load(s.service, s.env, t) if s.share > 0 or s.truth == "busy" else \
                sig.daily_shape(t, 15.0, 0.4) / 1.4
            level = s.cpu_idle + s.cpu_per_load * lv
            if s.schedule == "office-hours":
                hours = (np.asarray(t) % DAY) / 3600
                level = level * np.where((hours >= 7) & (hours < 19), 1.0, 0.6)
            jitter = 0.05 * level * sig.noise(seed, f"{n}/cpu", t) + 0.15 * sig.noise(seed, f"{n}/cpu0", t, 0.2)
            return level + jitter + sig.bursts(seed, f"{n}/cpu", t, s.bursts_per_day, s.burst_size)

        def net(t: np.ndarray, s=spec, n=name, direction: str = "in") -> np.ndarray:
            share = s.share * (topo.services[s.service].traffic(seed, t) if s.share > 0 else 0.0)
            if s.env == "staging":
                share = share * staging_scale
            per = s.bytes_per_request * (0.35 if direction == "in" else 1.0)
            base = s.net_idle * (1 + 0.3 * sig.noise(seed, f"{n}/net{direction}0", t, 0.3))
            return base + share * per * (1 + 0.04 * sig.noise(seed, f"{n}/net{direction}", t))

        def ebs(t: np.ndarray, s=spec, n=name) -> np.ndarray:
            return 2.0e6 + 3.0e7 * (s.cpu_idle + s.cpu_per_load * 0.5) / 50 * (
                1 + 0.5 * sig.noise(seed, f"{n}/ebs", t)) + sig.bursts(seed, f"{n}/ebs", t, 2, 4e8)

        def net_in(t: np.ndarray, f: Callable[..., np.ndarray] = net) -> np.ndarray:
            return f(t, direction="in")

        def net_out(t: np.ndarray, f: Callable[..., np.ndarray] = net) -> np.ndarray:
            return f(t, direction="out")

        add("AWS/EC2", "CPUUtilization", dims, "Average", "Percent", name, cpu, high=100.0)
        add("AWS/EC2", "NetworkIn", dims, "Sum", "Bytes", name, net_in)
        add("AWS/EC2", "NetworkOut", dims, "Sum", "Bytes", name, net_out)
        add("AWS/EC2", "EBSWriteBytes", dims, "Sum", "Bytes", name, ebs)
        add("AWS/EC2", "StatusCheckFailed", dims, "Maximum", "Count", name, lambda t: np.zeros(len(t)), high=1.0)
        if spec.cwagent:
            base_mem = {"catalog-prod-search": 45.0, "catalog-prod-api-2": 18.0}.get(spec.name, 62.0)

            def mem(t: np.ndarray, b=base_mem, n=name) -> np.ndarray:
                return b + 2.0 * sig.daily_shape(t, 16.0, 0.5) + 0.8 * sig.noise(seed, f"{n}/mem", t, 0.9)

            add("CWAgent", "mem_used_percent", {**dims, "InstanceType": spec.instance_type}, "Average",
                "Percent", name, mem, high=99.5)

    # --- Load balancers and target groups -----------------------------------------------------
    for lb in topo.load_balancers:
        lb_dim = out.load_balancers[lb.name]["dimension"]
        lb_parts: list[Callable[[np.ndarray], np.ndarray]] = []
        for svc_name in lb.services:
            svc = topo.services[svc_name]
            tg = out.target_groups[f"{svc_name}/{lb.env}"]
            dims = {"LoadBalancer": lb_dim, "TargetGroup": tg["dimension"]}
            key = f"{svc_name}/{lb.env}"

            def requests(t: np.ndarray, s=svc, idle=lb.idle, env=lb.env) -> np.ndarray:
                if idle:
                    return np.floor(sig.bursts(seed, f"{s.name}/{env}/probe", t, 0.2, 1.0))
                return np.round(s.traffic(seed, t))

            lb_parts.append(requests)
            surge_items = [a for a, _ in inject.get((key, "HTTPCode_Target_5XX_Count"), [])]

            def errors(t: np.ndarray, s=svc, req=requests, items=tuple(surge_items), k=key) -> np.ndarray:
                return sig.error_counts(seed, k, t, req(t), s.error_rate, items)

            def latency(t: np.ndarray, s=svc, k=key) -> np.ndarray:
                lv = load(s.name, "prod", t)
                return s.latency_s * (1 + 0.35 * lv**2) * (1 + 0.06 * sig.noise(seed, f"{k}/lat", t))

            add("AWS/ApplicationELB", "RequestCount", dims, "Sum", "Count", key, requests)
            # Surges change a rate, applied inside errors(); the manifest still lists them here.
            series.append(SeriesDef("AWS/ApplicationELB", "HTTPCode_Target_5XX_Count",
                                    tuple(sorted(dims.items())), "Sum", "Count", key, errors,
                                    [m for _, m in inject.get((key, "HTTPCode_Target_5XX_Count"), [])]))

            def ok_2xx(t: np.ndarray, r: Callable[[np.ndarray], np.ndarray] = requests,
                       e: Callable[[np.ndarray], np.ndarray] = errors) -> np.ndarray:
                return np.maximum(r(t) - e(t), 0)

            add("AWS/ApplicationELB", "HTTPCode_Target_2XX_Count", dims, "Sum", "Count", key, ok_2xx)
            # 2xx = requests - 5xx: a surge in errors shows here too (a consequence, not a separate truth)
            series[-1].anomalies = [{**m, "kind": "derived", "detectable": False,
                                     "description": f"consequence of: {m['description']}"}
                                    for _, m in inject.get((key, "HTTPCode_Target_5XX_Count"), [])]
            add("AWS/ApplicationELB", "TargetResponseTime", dims, "Average", "Seconds", key, latency)
            add("AWS/ApplicationELB", "UnHealthyHostCount", dims, "Maximum", "Count", key,
                lambda t: np.zeros(len(t)))

        def lb_requests(
            t: np.ndarray, parts: tuple[Callable[[np.ndarray], np.ndarray], ...] = tuple(lb_parts)
        ) -> np.ndarray:
            total = sum(p(t) for p in parts)  # an array: every load balancer has at least one service
            return np.asarray(total)

        def elb_5xx(t: np.ndarray, n: str = lb.name) -> np.ndarray:
            return np.maximum(np.round(0.3 * sig.noise(seed, f"{n}/elb5xx", t, 0.0)), 0)

        add("AWS/ApplicationELB", "RequestCount", {"LoadBalancer": lb_dim}, "Sum", "Count", lb.name,
            lb_requests)
        add("AWS/ApplicationELB", "HTTPCode_ELB_5XX_Count", {"LoadBalancer": lb_dim}, "Sum", "Count", lb.name,
            elb_5xx)

    # --- RDS -----------------------------------------------------------------------------------
    for db in topo.databases:
        dims = {"DBInstanceIdentifier": db.identifier}
        name = db.identifier

        def db_load(t: np.ndarray, d=db) -> np.ndarray:
            return np.zeros(len(t)) if d.idle else load(d.service, d.env, t)

        def rds_cpu(t: np.ndarray, f: Callable[[np.ndarray], np.ndarray] = db_load, n: str = name,
                    d: DatabaseSpec = db) -> np.ndarray:
            return ((1.2 if d.idle else 12) + (0 if d.idle else 38) * f(t)
                    + 0.6 * sig.noise(seed, f"{n}/cpu", t))

        def rds_connections(t: np.ndarray, f: Callable[[np.ndarray], np.ndarray] = db_load, n: str = name,
                            d: DatabaseSpec = db) -> np.ndarray:
            return (np.zeros(len(t)) if d.idle else
                    np.round(35 + 140 * f(t) + 4 * sig.noise(seed, f"{n}/conn", t)))

        def rds_free_storage(t: np.ndarray, n: str = name) -> np.ndarray:
            return (6.2e10 - 3.0e8 * (np.asarray(t) - 1.79e9) / DAY
                    + 5e7 * sig.noise(seed, f"{n}/free", t, 0.95))

        def rds_read_latency(t: np.ndarray, f: Callable[[np.ndarray], np.ndarray] = db_load,
                             n: str = name) -> np.ndarray:
            return 0.0009 * (1 + 0.6 * f(t)) * (1 + 0.1 * sig.noise(seed, f"{n}/rl", t))

        add("AWS/RDS", "CPUUtilization", dims, "Average", "Percent", name, rds_cpu, high=100.0)
        add("AWS/RDS", "DatabaseConnections", dims, "Average", "Count", name, rds_connections)
        add("AWS/RDS", "FreeStorageSpace", dims, "Average", "Bytes", name, rds_free_storage)
        add("AWS/RDS", "ReadLatency", dims, "Average", "Seconds", name, rds_read_latency)
    return series
