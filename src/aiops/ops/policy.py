"""Routine-operations policies: the YAML users author under ``include/ops/`` (see its README).

Every ``*.yaml`` file there may hold any of four lists — ``snapshots``, ``log_retention``,
``patching``, ``schedules`` (plus ``asg_schedules``) — of policies. Each entry is validated on
its own: a malformed entry becomes a :class:`~aiops.core.errors.ConfigError` naming the file and the
field (``snapshots[1].retention_days``) and the other policies keep working. A new policy is
``mode: dry-run`` unless it says ``mode: enforce``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import time
from pathlib import Path
from typing import Any, Generic, Literal, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from aiops.core.errors import ConfigError
from aiops.core.settings import get_settings

Mode = Literal["dry-run", "enforce"]
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
#: The values CloudWatch Logs PutRetentionPolicy accepts.
LOG_RETENTION_DAYS = (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192,
                      2557, 2922, 3288, 3653)
_ID = r"^[a-z0-9][a-z0-9-]{0,62}$"
_HHMM = re.compile(r"^([01][0-9]|2[0-3]):[0-5][0-9]$")


def _parse_hhmm(value: str) -> time:
    if not isinstance(value, str) or not _HHMM.match(value):
        raise ValueError(f"expected HH:MM (24 h), got {value!r}")
    hours, minutes = value.split(":")
    return time(int(hours), int(minutes))


def _check_days(days: list[str]) -> list[str]:
    norm = [d.strip().lower()[:3] for d in days]
    bad = [d for d, n in zip(days, norm, strict=True) if n not in DAYS]
    if bad:
        raise ValueError(f"unknown day(s) {bad}; use {list(DAYS)}")
    if not norm:
        raise ValueError("at least one day is needed")
    return norm


def _check_tz(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {value!r}") from exc
    return value


class _Policy(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=_ID, description="Unique within its list; lowercase, digits and dashes.")
    description: str = ""
    mode: Mode = Field("dry-run", description="dry-run (default): plan and report only; enforce: act.")


class SnapshotPolicy(_Policy):
    """EBS snapshots of the volumes ``selector`` matches (on the volume's tags, or on the tags of
    the instance it is attached to), one per volume per day, kept ``retention_days`` (a volume's
    own ``aiops:retention-days`` tag overrides)."""

    selector: dict[str, str] = Field(min_length=1, description="Tags that must all match.")
    retention_days: int = Field(ge=1, le=3650)
    copy_tags: bool = True
    match_instance_tags: bool = True
    expire_scope: Literal["managed", "volume"] = Field(
        "managed", description="managed: only snapshots this policy created may expire; volume: every "
        "snapshot of a selected volume (still never one an AMI uses or one tagged aiops:keep=true).")


class LogRetentionPolicy(_Policy):
    """Retention for the log groups whose names match ``patterns`` (shell globs; first policy wins)."""

    patterns: list[str] = Field(min_length=1)
    retention_days: int
    allow_decrease: bool = Field(
        False, description="Shortening an existing retention deletes old logs: only when true.")

    @field_validator("retention_days")
    @classmethod
    def _allowed(cls, value: int) -> int:
        if value not in LOG_RETENTION_DAYS:
            raise ValueError(f"{value} is not a CloudWatch Logs retention; use one of {list(LOG_RETENTION_DAYS)}")
        return value


class MaintenanceWindow(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    days: list[str]
    start: str
    duration_minutes: int = Field(ge=15, le=24 * 60)
    timezone: str = "UTC"

    @field_validator("days")
    @classmethod
    def _days(cls, value: list[str]) -> list[str]:
        return _check_days(value)

    @field_validator("timezone")
    @classmethod
    def _tz(cls, value: str) -> str:
        return _check_tz(value)

    @field_validator("start")
    @classmethod
    def _start(cls, value: str) -> str:
        _parse_hhmm(value)
        return value


class PatchPolicy(_Policy):
    """``AWS-RunPatchBaseline`` over the instances ``selector`` matches: Scan on every run;
    Install batch by batch inside ``maintenance_window`` (prod, or ``approval: required``: after
    an approval in the Airflow UI by one of ``approvers``)."""

    selector: dict[str, str] = Field(min_length=1)
    maintenance_window: MaintenanceWindow
    batch_size: int | None = Field(None, ge=1, description="Instances per batch (default: settings).")
    approval: Literal["required", "prod-only"] = Field(
        "prod-only", description="prod-only: approval when a target is tagged env=prod; required: always.")
    approvers: list[str] = Field(default_factory=list)
    reboot: Literal["RebootIfNeeded", "NoReboot"] = "RebootIfNeeded"
    health_check: Literal["instance-status", "target-health", "both"] = "both"


class InstanceSchedule(_Policy):
    """Office hours for non-prod instances tagged ``aiops:schedule=<id>``: running from ``start``
    to ``stop`` on ``days`` in ``timezone``, stopped otherwise. ``enforce_state: false`` acts only
    when a start/stop time falls in the run's interval (a person may start an instance at night)."""

    days: list[str]
    start: str
    stop: str
    timezone: str = "UTC"
    enforce_state: bool = False

    @field_validator("days")
    @classmethod
    def _days(cls, value: list[str]) -> list[str]:
        return _check_days(value)

    @field_validator("timezone")
    @classmethod
    def _tz(cls, value: str) -> str:
        return _check_tz(value)

    @model_validator(mode="after")
    def _times(self) -> InstanceSchedule:
        if _parse_hhmm(self.start) >= _parse_hhmm(self.stop):
            raise ValueError("start must be before stop (same day)")
        return self


class CapacityStep(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    at: str
    days: list[str] = Field(default_factory=lambda: list(DAYS))
    min: int = Field(ge=0)
    max: int = Field(ge=0)
    desired: int = Field(ge=0)

    @field_validator("days")
    @classmethod
    def _days(cls, value: list[str]) -> list[str]:
        return _check_days(value)

    @model_validator(mode="after")
    def _bounds(self) -> CapacityStep:
        _parse_hhmm(self.at)
        if not self.min <= self.desired <= self.max:
            raise ValueError(f"need min <= desired <= max, got {self.min} / {self.desired} / {self.max}")
        return self


class AsgSchedule(_Policy):
    """Scheduled capacity changes of one Auto Scaling group: at each step's time (in ``timezone``)
    its min / max / desired become the step's."""

    asg: str = Field(min_length=1)
    timezone: str = "UTC"
    steps: list[CapacityStep] = Field(min_length=1)

    @field_validator("timezone")
    @classmethod
    def _tz(cls, value: str) -> str:
        return _check_tz(value)


P = TypeVar("P", bound=_Policy)

KINDS: dict[str, type[_Policy]] = {
    "snapshots": SnapshotPolicy,
    "log_retention": LogRetentionPolicy,
    "patching": PatchPolicy,
    "schedules": InstanceSchedule,
    "asg_schedules": AsgSchedule,
}


@dataclass
class PolicySet(Generic[P]):
    kind: str
    policies: list[P] = field(default_factory=list)
    sources: dict[str, str] = field(default_factory=dict)
    errors: list[ConfigError] = field(default_factory=list)

    def by_id(self) -> dict[str, P]:
        return {p.id: p for p in self.policies}

    def error_lines(self) -> list[str]:
        return [str(e) for e in self.errors]


def _location(exc: ValidationError, prefix: str) -> tuple[str, str]:
    err = exc.errors()[0]
    where = ".".join(str(p) for p in err["loc"])
    return (f"{prefix}.{where}" if where else prefix), err["msg"]


def load_policies(kind: str, directory: Path | None = None) -> PolicySet[Any]:
    """The ``kind`` policies of every ``*.yaml`` in ``directory`` (default ``include/ops``).

    A malformed entry (or file) lands in ``.errors`` with file and field; the rest load. Ids must be
    unique per kind across files.
    """
    model = KINDS[kind]
    directory = directory or get_settings().include_dir / "ops"
    result: PolicySet[Any] = PolicySet(kind)
    for path in sorted(Path(directory).glob("*.yaml")):
        try:
            raw = yaml.safe_load(path.read_text()) or {}
        except (OSError, yaml.YAMLError) as exc:
            result.errors.append(ConfigError(path, "", f"cannot read: {exc}"))
            continue
        if not isinstance(raw, dict):
            result.errors.append(ConfigError(path, "", f"expected a mapping with lists {sorted(KINDS)}"))
            continue
        unknown = sorted(set(raw) - set(KINDS))
        if unknown:
            result.errors.append(ConfigError(path, unknown[0], f"unknown section; use {sorted(KINDS)}"))
        entries = raw.get(kind)
        if entries is None:
            continue
        if not isinstance(entries, list):
            result.errors.append(ConfigError(path, kind, "expected a list of policies"))
            continue
        for i, entry in enumerate(entries):
            prefix = f"{kind}[{i}]"
            try:
                policy = model.model_validate(entry)
            except ValidationError as exc:
                result.errors.append(ConfigError(path, *_location(exc, prefix)))
                continue
            if policy.id in result.sources:
                result.errors.append(ConfigError(path, f"{prefix}.id",
                                                 f"{policy.id!r} is already defined in {result.sources[policy.id]}"))
                continue
            result.sources[policy.id] = path.name
            result.policies.append(policy)
    return result


def parse_hhmm(value: str) -> time:
    return _parse_hhmm(value)
