"""Fixable failures -> ``remediate`` DAG confs (the runbook and its exact parameters).

Checks name their runbook in metadata; this module derives the runbook parameters from the
collected records (which rule, which port, which bucket). Approval and guards stay in
``remediate``: a conf here is a request, never a change.
"""

from __future__ import annotations

from typing import Any

from aiops.compliance.checks._common import world_sources
from aiops.compliance.model import Inventory, Result
from aiops.compliance.registry import checks

PORT_OF = {"sg_ssh_open_to_world": 22, "sg_rdp_open_to_world": 3389}


def _sg_params(result: Result, inv: Inventory) -> list[dict[str, str]]:
    port = PORT_OF[result.check_id]
    sg = next((g for g in inv.of("security_groups") if g["id"] == result.resource_id), None)
    out = []
    for perm in (sg or {}).get("ingress", []):
        # The runbook revokes an exact single-port rule; port ranges and all-traffic rules stay manual.
        if perm.get("IpProtocol") != "tcp" or perm.get("FromPort") != port or perm.get("ToPort") != port:
            continue
        for src in world_sources(perm):
            out.append({"GroupId": result.resource_id, "Port": str(port), "Protocol": "tcp", "SourceCidr": src})
    return out


def remediation_requests(results: list[Result], inv: Inventory, *, requested_by: str = "compliance_sweep",
                         only: set[tuple[str, str]] | None = None) -> list[dict[str, Any]]:
    """``{"conf", "check_id", "resource", "label"}`` with one ``remediate`` conf per distinct (runbook, parameters) fixing a FAILED (not suppressed)
    result; ``only`` limits to the given (check_id, resource key) pairs."""
    seen: set[tuple[str, tuple[tuple[str, str], ...]]] = set()
    out: list[dict[str, Any]] = []
    for r in sorted(results, key=lambda x: x.key):
        if r.effective != "FAILED" or (only is not None and r.key not in only):
            continue
        meta = checks()[r.check_id].meta
        if not meta.runbook:
            continue
        if r.check_id in PORT_OF:
            params_list = _sg_params(r, inv)
        elif meta.runbook == "block-public-s3-bucket":
            params_list = [{"BucketName": r.resource_id}]
        elif meta.runbook == "enable-ebs-default-encryption":
            params_list = [{"AccountId": inv.account_id}]
        else:
            params_list = []
        for params in params_list:
            token = (meta.runbook, tuple(sorted(params.items())))
            if token in seen:
                continue
            seen.add(token)
            conf = {"runbook": meta.runbook, "parameters": params, "requested_by": requested_by,
                    "reason": f"compliance {r.check_id} FAILED on {r.resource_name or r.resource_id}: {r.reason}",
                    "incident_id": None, "dry_run": False}
            out.append({"conf": conf, "check_id": r.check_id, "resource": r.key[1],
                        "label": f"{meta.runbook} on {r.resource_name or r.resource_id}"
                                 + (f" ({params['SourceCidr']})" if "SourceCidr" in params else "")})
    return out
