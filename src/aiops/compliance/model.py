"""The compliance domain's records: what was collected, what a check says about a resource.

Checks return :class:`Result` (a frozen dataclass). What crosses a task boundary — the sweep's
results file that ``publish_findings`` and ``build_summary`` read back, and the findings history
rows a later sweep diffs against — is its JSON as a :class:`Finding` (pydantic, unknown keys are an
error): :meth:`Result.to_dict` dumps one, :meth:`Result.from_dict` validates one."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Severity = Literal["CRITICAL", "HIGH", "MEDIUM", "LOW", "INFORMATIONAL"]
Status = Literal["PASSED", "FAILED"]
SEVERITY_ORDER: dict[str, int] = {"CRITICAL": 0, "HIGH": 1, "MEDIUM": 2, "LOW": 3, "INFORMATIONAL": 4}
CIS_STANDARD = "CIS AWS Foundations Benchmark v3.0.0"


@dataclass(frozen=True)
class CheckMeta:
    """A check's metadata (Prowler-style): shown in reports, ASFF findings and the registry test."""

    id: str
    title: str
    severity: Severity
    service: str
    resource_type: str  # ASFF Resources[].Type, e.g. AwsEc2SecurityGroup
    risk: str
    remediation: str
    cis: tuple[str, ...] = ()  # CIS AWS Foundations v3.0.0 control ids ("5.2"); () where none applies
    runbook: str | None = None  # include/runbooks/<id> that fixes a FAILED resource
    requires: tuple[str, ...] = ()  # inventory record kinds the check reads

    @property
    def cis_section(self) -> str:
        """The CIS section name of the first control ("1" -> Identity and Access Management)."""
        if not self.cis:
            return "Other"
        return CIS_SECTIONS.get(self.cis[0].split(".")[0], "Other")

    def related_requirements(self) -> list[str]:
        return [f"{CIS_STANDARD}/{c}" for c in self.cis]


CIS_SECTIONS = {
    "1": "1 Identity and Access Management",
    "2": "2 Storage",
    "3": "3 Logging",
    "4": "4 Monitoring",
    "5": "5 Networking",
}


@dataclass(frozen=True)
class Resource:
    """One AWS resource as collected: ``id`` is what people know it by, ``arn`` where AWS has one."""

    id: str
    type: str
    region: str
    arn: str | None = None
    name: str | None = None
    tags: dict[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, record: dict[str, Any]) -> Resource:
        return cls(id=record["id"], type=record["type"], region=record["region"], arn=record.get("arn"),
                   name=record.get("name"), tags=dict(record.get("tags") or {}))


@dataclass(frozen=True)
class Result:
    check_id: str
    resource_id: str
    resource_type: str
    region: str
    status: Status
    reason: str
    resource_arn: str | None = None
    resource_name: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    suppressed: str | None = None  # accepted-risk reason; the result still says what AWS says
    # Set when this sweep could not evaluate the check (its collector failed): the result is the
    # last evaluated one carried forward, and this says why it was not re-evaluated.
    not_evaluated: str | None = None
    risk_tag_ignored: str | None = None  # why an aiops:accepted-risk tag did not suppress this FAILED result

    @property
    def key(self) -> tuple[str, str]:
        return (self.check_id, self.resource_arn or self.resource_id)

    @property
    def effective(self) -> str:
        """FAILED / PASSED / SUPPRESSED (a FAILED result covered by an accepted-risk exception)."""
        return "SUPPRESSED" if self.status == "FAILED" and self.suppressed else self.status

    def to_dict(self) -> dict[str, Any]:
        """The hand-off JSON (:class:`Finding`)."""
        return Finding.of(self).model_dump(mode="json")

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Result:
        """A :class:`Finding`'s JSON read back, validated: a wrong or unknown field is an error."""
        return Finding.model_validate(d).to_result()


class Finding(BaseModel):
    """A :class:`Result` as it is handed on (results file, findings history). Rows written before
    ``not_evaluated`` / ``risk_tag_ignored`` existed load with them unset."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    check_id: str
    resource_id: str
    resource_type: str
    region: str
    status: Status
    reason: str
    resource_arn: str | None = None
    resource_name: str | None = None
    tags: dict[str, str] = Field(default_factory=dict)
    suppressed: str | None = None
    not_evaluated: str | None = None
    risk_tag_ignored: str | None = None

    @classmethod
    def of(cls, result: Result) -> Finding:
        return cls.model_validate(asdict(result))

    def to_result(self) -> Result:
        return Result(**self.model_dump())


def passed(meta: CheckMeta, record: dict[str, Any], reason: str) -> Result:
    return _result(meta, record, "PASSED", reason)


def failed(meta: CheckMeta, record: dict[str, Any], reason: str) -> Result:
    return _result(meta, record, "FAILED", reason)


def verdict(meta: CheckMeta, record: dict[str, Any], ok: bool, ok_reason: str, bad_reason: str) -> Result:
    return passed(meta, record, ok_reason) if ok else failed(meta, record, bad_reason)


def _result(meta: CheckMeta, record: dict[str, Any], status: Status, reason: str) -> Result:
    r = Resource.of(record)
    return Result(check_id=meta.id, resource_id=r.id, resource_type=r.type, region=r.region, status=status,
                  reason=reason, resource_arn=r.arn, resource_name=r.name, tags=r.tags)


@dataclass
class Inventory:
    """Everything the collectors read in one sweep: record kind -> records (JSON-able dicts, each
    with ``id``, ``type``, ``region``, ``arn``, ``name``, ``tags`` plus the AWS attributes)."""

    account_id: str
    collected_at: str = ""  # ISO time the sweep read AWS: checks measure ages against it
    partition: str = "aws"
    regions: list[str] = field(default_factory=list)
    records: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)  # kind -> why it could not be collected

    @property
    def now(self) -> datetime:
        return datetime.fromisoformat(self.collected_at) if self.collected_at else datetime.now(UTC)

    def of(self, kind: str) -> list[dict[str, Any]]:
        return self.records.get(kind, [])

    def add(self, kind: str, record: dict[str, Any]) -> None:
        self.records.setdefault(kind, []).append(record)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Inventory:
        return cls(**d)
