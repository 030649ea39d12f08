"""What the remediation path hands on: the plan a person approves and the executor runs.

The plan crosses every boundary of the change path — ``make_plan`` builds it, the state store keeps
it, the approval page shows it, ``gate``/``execute`` re-read it, incidents, compliance and the
console read its outcome — so its shape is one model, validated where it is made and again where the
change happens (:func:`aiops.remediation.pipeline.stored_plan`). Unknown keys are an error: a plan
rewritten with an extra field fails loudly rather than being half-read.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

#: How many distinct people approve a runbook of each approval policy (its metadata's ``approval``).
APPROVAL_ROUNDS = {"pre-approved": 0, "requires-approval": 1, "requires-two-approvals": 2}


class PlanTarget(BaseModel):
    """One target as the executor found it before acting (``aiops.remediation.guards.TargetInfo``)."""

    model_config = ConfigDict(extra="forbid")

    id: str
    kind: str
    tags: dict[str, str] = Field(default_factory=dict)
    exists: bool
    state: str | None = None
    detail: dict[str, Any] = Field(default_factory=dict)


class BlastRadius(BaseModel):
    model_config = ConfigDict(extra="forbid")

    targets: int = Field(ge=0)
    limit: int = Field(ge=0)


class RemediationPlan(BaseModel):
    """The dry-run plan of one ``remediate`` request (see docs/change-path.md).

    ``plan_hash`` covers the executable part (:data:`aiops.remediation.approvals.EXECUTABLE_KEYS`);
    approvals are recorded against it and ``gate``/``execute`` refuse a plan whose content no longer
    matches it."""

    model_config = ConfigDict(extra="forbid")

    request_id: str
    run_id: str
    runbook: str
    title: str
    document_name: str
    document_version: str
    document_sha256: str
    assume_role: str
    risk: Literal["low", "medium", "high"]
    approval: str
    approval_rounds: int = Field(ge=0, le=2)
    extra_approval_reasons: list[str] = Field(default_factory=list)
    preapproval: dict[str, Any] = Field(default_factory=dict, description="PreapprovalDecision as JSON")
    approvers: list[str] = Field(default_factory=list)
    parameters: dict[str, Any] = Field(default_factory=dict)
    targets: list[PlanTarget] = Field(default_factory=list)
    targets_executable: list[str] = Field(default_factory=list)
    blast_radius: BlastRadius
    changes: str
    permissions: list[str] = Field(default_factory=list)
    rollback: str
    requested_by: str
    origin: str
    note: str = ""
    reason: str = ""
    incident_id: str | None = None
    dry_run: bool = False
    planned_at: str
    approval_timeout_minutes: int | float
    # added once the executable part is fixed
    plan_hash: str | None = None
    markdown: str | None = None
    supersedes: list[str] = Field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """The plan as the JSON object stored and passed on (what XCom and the state store carry)."""
        return self.model_dump(mode="json")


class Approval(BaseModel):
    """One approval round of a remediation request, as the state store keeps it between the approval
    task and the execute task: first *asked* (who may answer, for which plan hash), then *answered*
    (the HITL response Airflow resumed the approval task with, ``source="hitl"``). Written by
    :func:`aiops.remediation.pipeline.record_asked` / ``record_approval``, validated where the
    change happens (:func:`aiops.remediation.approvals.verify_approvals`): a malformed entry is no
    approval."""

    model_config = ConfigDict(extra="forbid")

    round: int = Field(ge=1)
    status: Literal["asked"] | None = None
    assigned: list[str] = Field(default_factory=list)
    plan_hash: str | None = None
    asked_at: str | None = None
    user: str | None = None
    decision: str | None = None  # Approve | Reject | timeout | superseded | error:...
    source: Literal["hitl"] | None = None
    responded_at: str | None = None
