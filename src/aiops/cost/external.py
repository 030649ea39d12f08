"""AWS's own right-sizing, merged in on real AWS (``AIOPS_COST_EXTERNAL_RECOMMENDATIONS=true``).

- Compute Optimizer ``GetEC2InstanceRecommendations`` (findings ``Overprovisioned`` /
  ``Underprovisioned`` / ``Optimized``; options ranked, each with ``savingsOpportunity``).
- Cost Explorer ``GetRightsizingRecommendation`` (``Modify`` / ``Terminate``).

The emulator has neither API, so this path is tested with botocore ``Stubber`` responses of the
real shapes. Merging: where our own rules already recommend something for the instance, AWS's view
is attached as ``external`` evidence (and agreement raises confidence); where they do not, AWS's
recommendation is added with ``source`` set, unless the instance is protected or unknown.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

from aiops.account.permissions import permissions
from aiops.core import aws
from aiops.cost.collect import Inventory
from aiops.cost.model import RightsizingRecommendation
from aiops.cost.pricing import PriceTable

PERMISSIONS = permissions(
    "Compute Optimizer and Cost Explorer right-sizing",
    reader=(
        "ce:GetRightsizingRecommendation",
        "compute-optimizer:GetEC2InstanceRecommendations",
    ),
)

log = logging.getLogger(__name__)


def compute_optimizer_findings(region: str | None = None) -> Iterator[dict[str, Any]]:
    client = aws.client("compute-optimizer", region=region)
    token: str | None = None
    while True:
        resp = client.get_ec2_instance_recommendations(**({"nextToken": token} if token else {}))
        for rec in resp.get("instanceRecommendations", []):
            options = sorted(rec.get("recommendationOptions", []), key=lambda o: o.get("rank", 99))
            best = options[0] if options else {}
            saving = ((best.get("savingsOpportunity") or {}).get("estimatedMonthlySavings") or {}).get("value")
            yield {"source": "compute-optimizer", "instance_id": rec["instanceArn"].rsplit("/", 1)[-1],
                   "finding": str(rec.get("finding", "")).lower(), "current_type": rec.get("currentInstanceType"),
                   "recommended_type": best.get("instanceType"),
                   "monthly_savings_usd": None if saving is None else float(saving),
                   "utilization": {m["name"]: m["value"] for m in rec.get("utilizationMetrics", [])}}
        token = resp.get("nextToken")
        if not token:
            return


def cost_explorer_findings() -> Iterator[dict[str, Any]]:
    client = aws.client("ce")
    token: str | None = None
    while True:
        kwargs: dict[str, Any] = {"Service": "AmazonEC2",
                                  "Configuration": {"RecommendationTarget": "SAME_INSTANCE_FAMILY",
                                                    "BenefitsConsidered": False}}
        if token:
            kwargs["NextPageToken"] = token
        resp = client.get_rightsizing_recommendation(**kwargs)
        for rec in resp.get("RightsizingRecommendations", []):
            current = rec.get("CurrentInstance", {})
            cur_type = current.get("ResourceDetails", {}).get("EC2ResourceDetails", {}).get("InstanceType")
            if rec.get("RightsizingType") == "Terminate":
                saving = rec.get("TerminateRecommendationDetail", {}).get("EstimatedMonthlySavings")
                target = None
                finding = "idle"
            else:
                targets = rec.get("ModifyRecommendationDetail", {}).get("TargetInstances", [])
                chosen = next((t for t in targets if t.get("DefaultTargetInstance")), targets[0] if targets else {})
                saving = chosen.get("EstimatedMonthlySavings")
                target = chosen.get("ResourceDetails", {}).get("EC2ResourceDetails", {}).get("InstanceType")
                finding = "overprovisioned"
            yield {"source": "cost-explorer", "instance_id": current.get("ResourceId", ""), "finding": finding,
                   "current_type": cur_type, "recommended_type": target,
                   "monthly_savings_usd": None if saving in (None, "") else float(saving)}
        token = resp.get("NextPageToken")
        if not token:
            return


def merge(own: list[RightsizingRecommendation], findings: list[dict[str, Any]], inventory: Inventory,
          prices: PriceTable, mem_percentiles: dict[str, float] | None = None,
          headroom_pct: float = 20.0) -> list[RightsizingRecommendation]:
    """``mem_percentiles`` (instance id -> measured memory percentile): an AWS target that would run
    that memory above ``100 - headroom`` is kept for the reviewer but marked ``low`` confidence."""
    by_resource = {r.resource_id: r for r in own}
    instances = {i.id: i for i in inventory.instances}
    merged = list(own)
    for f in findings:
        if f["finding"] not in {"overprovisioned", "idle"}:
            # Not a saving; where we recommend a change AWS calls optimal, the reviewer sees both.
            if f["instance_id"] in by_resource:
                by_resource[f["instance_id"]].external.append(f)
            continue
        inst = instances.get(f["instance_id"])
        if inst is None or inst.protected:
            continue
        mine = by_resource.get(inst.id)
        if mine is not None:
            mine.external.append(f)
            agrees = (mine.action == "rightsize" and f["recommended_type"] == mine.recommended.get("instance_type")) \
                or (mine.action == "stop" and f["finding"] == "idle")
            if agrees and mine.confidence == "medium":
                mine.confidence = "high"
            continue
        target = f.get("recommended_type")
        if f["finding"] == "idle" or not target:
            action, kind, runbook, params = "stop", "idle_instance", "stop-idle-instance", {"InstanceId": inst.id}
            recommended: dict[str, Any] = {"state": "stopped"}
            new_cost = 0.0
        else:
            action, kind, runbook = "rightsize", "overprovisioned_instance", "rightsize-ec2-instance"
            params = {"InstanceId": inst.id, "TargetInstanceType": target}
            recommended = {"instance_type": target}
            new_cost = prices.ec2_monthly(target) if target in prices.ec2 else None  # type: ignore[assignment]
        current_cost = prices.ec2_monthly(inst.instance_type) if inst.instance_type in prices.ec2 else None
        if current_cost is None or new_cost is None:
            saving = f.get("monthly_savings_usd") or 0.0
            current_cost, new_cost = round(saving, 2), 0.0
        rec = RightsizingRecommendation(
            kind=kind, action=action, resource_type="ec2:instance", resource_id=inst.id,
            current={"instance_type": inst.instance_type}, recommended=recommended,
            current_monthly_usd=current_cost, recommended_monthly_usd=new_cost,
            evidence={"from": f["source"], "aws_monthly_savings_usd": f.get("monthly_savings_usd"),
                      **({"utilization": f["utilization"]} if f.get("utilization") else {})},
            confidence="medium", reason=f"{f['source']} finds it {f['finding']}", runbook=runbook,
            runbook_parameters=params, name=inst.name, region=inst.region, service=inst.tags.get("service", ""),
            env=inst.tags.get("env", ""), team=inst.tags.get("team", ""), source=f["source"], external=[f])
        mem = (mem_percentiles or {}).get(inst.id)
        if target and mem is not None and target in prices.ec2 and inst.instance_type in prices.ec2:
            projected = mem / 100 * prices.ec2[inst.instance_type].memory_gib / prices.ec2[target].memory_gib * 100
            rec.evidence["projected_mem_pct"] = round(projected, 1)
            if projected > 100 - headroom_pct:
                rec.confidence = "low"
                rec.reason += f"; but measured memory would run at {projected:.0f}% on {target}"
        by_resource[inst.id] = rec
        merged.append(rec)
    merged.sort(key=lambda r: -r.monthly_savings_usd)
    return merged


def external_findings(regions: list[str]) -> list[dict[str, Any]]:
    """Both sources; a source that fails (not opted in, no permission) is logged and skipped."""
    from botocore.exceptions import BotoCoreError, ClientError

    out: list[dict[str, Any]] = []
    for region in regions:
        try:
            out.extend(compute_optimizer_findings(region))
        except (ClientError, BotoCoreError) as exc:
            log.warning("Compute Optimizer unavailable in %s: %s", region, exc)
    try:
        out.extend(cost_explorer_findings())
    except (ClientError, BotoCoreError) as exc:
        log.warning("Cost Explorer right-sizing unavailable: %s", exc)
    return out
