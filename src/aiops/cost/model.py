"""The right-sizing recommendation and its JSON schema (``cost/rightsizing/dt=.../recommendations.json``).

The file is ``{"generated_at", "day", "lookback_days", "price_table", "settings", "counts",
"suppressed", "recommendations": [...]}``; each recommendation is :class:`Recommendation`'s JSON —
the rules' :class:`RightsizingRecommendation` handed on (:meth:`RightsizingRecommendation.to_model`).
The same JSON is what ``recommend`` hands the review and ``decide`` (XCom; ``decide`` validates it),
and what a decision row keeps (:class:`RecommendationDecision`). Unknown keys are an error:

| field | meaning |
| --- | --- |
| ``id`` | stable across runs: ``<kind>:<resource_id>`` (decisions and dismissals key on it) |
| ``kind`` | ``idle_instance``, ``overprovisioned_instance``, ``unattached_volume``, ``gp2_volume``, ``old_snapshot``, ``unassociated_eip``, ``idle_rds``, ``idle_load_balancer`` |
| ``action`` | what to do: ``stop``, ``rightsize``, ``snapshot_and_delete``, ``modify_to_gp3``, ``delete``, ``release`` |
| ``resource_type``, ``resource_id``, ``name``, ``region`` | the resource (``ec2:instance``, ``ec2:volume``, ``ec2:snapshot``, ``ec2:elastic-ip``, ``rds:db``, ``elbv2:load-balancer``) |
| ``service``, ``env``, ``team`` | its cost-allocation tags |
| ``current``, ``recommended`` | configuration now and after (e.g. ``{"instance_type": "m5.4xlarge", "vcpu": 16, ...}``) |
| ``current_monthly_usd``, ``recommended_monthly_usd``, ``monthly_savings_usd`` | from the price table (on-demand) |
| ``evidence`` | the numbers behind it (percentiles, days idle, age, projected utilisation) |
| ``confidence`` | ``high`` / ``medium`` / ``low`` |
| ``runbook``, ``runbook_parameters`` | the runbook that applies it through ``remediate`` (``null``: manual) |
| ``source`` | ``aiops``, ``compute-optimizer`` or ``cost-explorer``; ``external`` holds what AWS said too |
| ``reason`` | one sentence for the reviewer |
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, model_validator

Kind = Literal["idle_instance", "overprovisioned_instance", "unattached_volume", "gp2_volume", "old_snapshot",
               "unassociated_eip", "idle_rds", "idle_load_balancer"]
KINDS: tuple[str, ...] = get_args(Kind)
Confidence = Literal["high", "medium", "low"]
DecisionKind = Literal["apply", "defer", "dismiss"]


@dataclass
class RightsizingRecommendation:
    kind: str
    action: str
    resource_type: str
    resource_id: str
    current: dict[str, Any]
    recommended: dict[str, Any]
    current_monthly_usd: float
    recommended_monthly_usd: float
    evidence: dict[str, Any]
    confidence: str
    reason: str
    runbook: str | None = None
    runbook_parameters: dict[str, Any] = field(default_factory=dict)
    name: str = ""
    region: str = ""
    service: str = ""
    env: str = ""
    team: str = ""
    source: str = "aiops"
    external: list[dict[str, Any]] = field(default_factory=list)

    @property
    def id(self) -> str:
        return f"{self.kind}:{self.resource_id}"

    @property
    def monthly_savings_usd(self) -> float:
        return round(self.current_monthly_usd - self.recommended_monthly_usd, 2)

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, **asdict(self), "monthly_savings_usd": self.monthly_savings_usd}

    def to_model(self) -> Recommendation:
        """The hand-off: the JSON this recommendation has always been stored as (``default=str``, as
        the artifact store writes it), validated."""
        return Recommendation.model_validate(json.loads(json.dumps(self.to_dict(), default=str)))


class Recommendation(BaseModel):
    """A right-sizing recommendation as it crosses a task boundary and lands in files and rows."""

    model_config = ConfigDict(extra="forbid")

    id: str  # <kind>:<resource_id>
    kind: Kind
    action: str
    resource_type: str
    resource_id: str
    current: dict[str, Any]
    recommended: dict[str, Any]
    current_monthly_usd: float
    recommended_monthly_usd: float
    evidence: dict[str, Any]
    confidence: Confidence
    reason: str
    runbook: str | None = None
    runbook_parameters: dict[str, Any] = Field(default_factory=dict)
    name: str = ""
    region: str = ""
    service: str = ""
    env: str = ""
    team: str = ""
    source: str = "aiops"
    external: list[dict[str, Any]] = Field(default_factory=list)
    monthly_savings_usd: float

    @model_validator(mode="after")
    def _id_names_the_kind_and_resource(self) -> Recommendation:
        if self.id != f"{self.kind}:{self.resource_id}":
            raise ValueError(f"id {self.id!r} is not '<kind>:<resource_id>' ({self.kind}:{self.resource_id})")
        return self


class RecommendationDecision(BaseModel):
    """The review's answer about one recommendation (a row of ``aiops_cost_decisions`` when recorded)."""

    model_config = ConfigDict(extra="forbid")

    decision: DecisionKind
    recommendation: Recommendation
    ref: str  # R1, R2 ... as the review listed it
    remediate_run_id: str | None = None  # apply with a runbook: the remediate run that applies it
