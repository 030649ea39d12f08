"""No network ACL allows admin ports from the internet."""

from __future__ import annotations

from collections.abc import Iterator

from aiops.compliance.model import CheckMeta, Inventory, Result, verdict

METADATA = CheckMeta(
    id="nacl_admin_ports_open_to_world",
    title="No network ACL allows admin ports from the internet",
    severity="MEDIUM",
    service="ec2",
    resource_type="AwsEc2NetworkAcl",
    cis=("5.1",),
    runbook=None,
    requires=("network_acls",),
    risk=(
        "A permissive NACL removes a layer of defence in depth for SSH and RDP."
    ),
    remediation=(
        "Add deny entries (or narrower allows) for ports 22 and 3389 from 0.0.0.0/0 and ::/0."
    ),
)


def evaluate(inv: Inventory) -> Iterator[Result]:
    for acl in inv.of("network_acls"):
        yield verdict(METADATA, acl, not admin_ports_allowed(acl["entries"]), "admin ports not allowed from the world",
                      "allows admin ports from the world: rule " + ", ".join(admin_ports_allowed(acl["entries"])))


def admin_ports_allowed(entries: list[dict]) -> list[str]:
    """Ingress entries that decide ports 22/3389 from the world as allow (NACLs: first match wins)."""
    bad = []
    for port in (22, 3389):
        for entry in sorted((e for e in entries if not e.get("Egress")), key=lambda e: e.get("RuleNumber", 0)):
            if entry.get("CidrBlock") != "0.0.0.0/0" and entry.get("Ipv6CidrBlock") != "::/0":
                continue
            proto = str(entry.get("Protocol", "-1"))
            span = entry.get("PortRange") or {}
            if proto == "-1" or (proto == "6" and span.get("From", 0) <= port <= span.get("To", 65535)):
                if entry.get("RuleAction") == "allow":
                    bad.append(str(entry.get("RuleNumber")))
                break
    return sorted(set(bad))
