"""Pure helpers shared by checks: world-open ingress, policy statements, ages."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

WORLD_V4 = "0.0.0.0/0"
WORLD_V6 = "::/0"


def as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def world_sources(perm: dict[str, Any]) -> list[str]:
    out = [r["CidrIp"] for r in perm.get("IpRanges", []) if r.get("CidrIp") == WORLD_V4]
    out += [r["CidrIpv6"] for r in perm.get("Ipv6Ranges", []) if r.get("CidrIpv6") == WORLD_V6]
    return out


def covers_port(perm: dict[str, Any], port: int | None) -> bool:
    """Does the permission include ``port`` (None: all ports, i.e. protocol -1 or 0-65535)?"""
    proto = str(perm.get("IpProtocol", "-1"))
    if proto == "-1":
        return True
    if proto not in {"tcp", "6", "udp", "17"}:
        return False
    lo, hi = perm.get("FromPort", 0), perm.get("ToPort", 65535)
    if port is None:
        return lo <= 0 and hi >= 65535
    return lo <= port <= hi


def world_open(sg: dict[str, Any], port: int | None) -> list[str]:
    """Human-readable rules of ``sg`` that open ``port`` (None: all ports) to the world."""
    found = []
    for perm in sg.get("ingress", []):
        if covers_port(perm, port):
            for src in world_sources(perm):
                proto = perm.get("IpProtocol", "-1")
                ports = "all" if proto == "-1" else f"{perm.get('FromPort')}-{perm.get('ToPort')}"
                found.append(f"{proto}/{ports} from {src}")
    return found


def allow_statements(doc: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for st in as_list(doc.get("Statement")):
        if isinstance(st, dict) and st.get("Effect") == "Allow":
            yield st


def is_admin_star(doc: dict[str, Any]) -> bool:
    """An Allow of action ``*`` on resource ``*`` (full administrative privileges)."""
    return any("*" in as_list(st.get("Action")) and "*" in as_list(st.get("Resource"))
               for st in allow_statements(doc))


def parse_time(value: str | None) -> datetime | None:
    if not value or value in {"N/A", "no_information", "not_supported"}:
        return None
    ts = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return ts if ts.tzinfo else ts.replace(tzinfo=UTC)


def age_days(value: str | None, now: datetime) -> float | None:
    ts = parse_time(value)
    return None if ts is None else (now - ts).total_seconds() / 86_400
