"""``include/incidents/runbooks.yaml``: which runbook answers which incident signal.

Validated with pydantic; a malformed file or rule raises :class:`~aiops.core.errors.ConfigError` naming
the file and the field. A rule naming a runbook that is not in the catalog is reported by
:func:`check_against_catalog` (the DAG logs it and the rule never matches) rather than taking the
other rules down.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from aiops.core.config import load_yaml_model
from aiops.core.errors import ConfigError
from aiops.core.settings import get_settings

PLACEHOLDER = re.compile(r"^\{(dim|asg|instance):([A-Za-z0-9_]+)\}$")


class When(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    namespace: str | None = None
    metric: str | None = None
    source: str | None = None
    # above / below: the rule fixes a signal on that side of its threshold or band only (a CPU-pin
    # reboot never answers CPU *below* its band). Required for a pre-approved runbook to run unattended.
    direction: Literal["above", "below"] | None = None


class MatchRule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    id: str = Field(pattern=r"^[a-z0-9]+(-[a-z0-9]+)*$")
    when: When
    runbook: str
    parameters: dict[str, str] = Field(default_factory=dict)
    note: str = ""

    @field_validator("parameters")
    @classmethod
    def _placeholders(cls, value: dict[str, str]) -> dict[str, str]:
        for name, template in value.items():
            if template.startswith("{") and not PLACEHOLDER.match(template):
                raise ValueError(f"{name}: {template!r} is not one of {{dim:<Name>}}, {{asg:service}}, "
                                 "{instance:target_group}")
        return value

    def matches(self, signal: dict[str, Any], direction: str | None = None) -> bool:
        """Every given field matches; a rule with a direction never matches a signal known to go the
        other way (an unknown direction still matches, but cannot be pre-approved)."""
        if self.when.direction and direction and direction != self.when.direction:
            return False
        return all(expected is None or signal.get(field) == expected
                   for field, expected in (("namespace", self.when.namespace), ("metric", self.when.metric),
                                           ("source", self.when.source)))


class MatchConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    rules: list[MatchRule]


def default_path() -> Path:
    return get_settings().include_dir / "incidents" / "runbooks.yaml"


def load_rules(path: Path | None = None) -> MatchConfig:
    path = path or default_path()

    if not path.exists():
        raise ConfigError(path, "", "file not found")
    config = load_yaml_model(path, MatchConfig)
    seen: set[str] = set()
    for i, rule in enumerate(config.rules):
        if rule.id in seen:
            raise ConfigError(path, f"rules.{i}.id", f"duplicate rule id {rule.id!r}")
        seen.add(rule.id)
    return config


def check_against_catalog(config: MatchConfig, catalog_ids: list[str], path: Path | None = None) -> list[ConfigError]:
    """Rules whose runbook is unknown (those rules never match; the others keep working)."""
    path = path or default_path()
    return [ConfigError(path, f"rules.{i}.runbook", f"{rule.runbook!r} is not in the runbook catalog")
            for i, rule in enumerate(config.rules) if rule.runbook not in catalog_ids]
