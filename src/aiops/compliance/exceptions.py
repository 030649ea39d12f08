"""Accepted-risk exceptions: a FAILED result they cover is reported SUPPRESSED with the reason.

Two sources, both audited in the summary:

- the resource tag ``aiops:accepted-risk`` (value: the reason; optional ``aiops:accepted-risk-checks``
  = comma-separated check ids it is limited to, default all checks);
- ``include/compliance/exceptions.yaml``: ``exceptions: [{check, resource, reason, owner, expires}]``
  where ``check`` may be ``"*"`` and ``resource`` is the id or ARN. Expired entries stop applying.

A malformed file raises :class:`~aiops.core.errors.ConfigError` naming the file and the field.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from datetime import date, datetime
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from aiops.compliance.model import Result
from aiops.core.errors import ConfigError

ACCEPTED_RISK_TAG = "aiops:accepted-risk"
ACCEPTED_RISK_CHECKS_TAG = "aiops:accepted-risk-checks"


class RiskException(BaseModel):
    model_config = ConfigDict(extra="forbid")

    check: str = Field(min_length=1, description='Check id, or "*" for every check.')
    resource: str = Field(min_length=1, description="Resource id or ARN.")
    reason: str = Field(min_length=3)
    owner: str | None = None
    expires: date | None = None


class ExceptionsFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    exceptions: list[RiskException] = Field(default_factory=list)


def default_path() -> Path:
    from aiops.core.settings import get_settings

    return get_settings().include_dir / "compliance" / "exceptions.yaml"


def load_exceptions(path: Path | None = None, known_checks: Iterable[str] | None = None) -> list[RiskException]:
    path = path or default_path()
    if not path.exists():
        return []
    from aiops.core.config import load_yaml_model

    doc = load_yaml_model(path, ExceptionsFile)
    if known_checks is not None:
        known = set(known_checks)
        for i, e in enumerate(doc.exceptions):
            if e.check != "*" and e.check not in known:
                raise ConfigError(path, f"exceptions.{i}.check", f"unknown check id {e.check!r}")
    return doc.exceptions


def load_exceptions_lenient(path: Path | None = None,
                            known_checks: Iterable[str] | None = None) -> tuple[list[RiskException], list[str]]:
    """Like :func:`load_exceptions`, but a bad entry is left out (and reported) while the valid ones
    apply: one typo must not turn every accepted risk back into a failure."""
    path = path or default_path()
    try:
        return load_exceptions(path, known_checks), []
    except ConfigError as whole:
        try:
            raw = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError:
            return [], [str(whole)]
        entries = raw.get("exceptions") if isinstance(raw, dict) else None
        if not isinstance(entries, list):
            return [], [str(whole)]
        known = set(known_checks) if known_checks is not None else None
        good: list[RiskException] = []
        errors: list[str] = []
        for i, entry in enumerate(entries):
            try:
                e = RiskException.model_validate(entry)
            except ValidationError as exc:
                err = exc.errors()[0]
                loc = ".".join(str(p) for p in err["loc"])
                errors.append(str(ConfigError(path, f"exceptions.{i}.{loc}", err["msg"])))
                continue
            if known is not None and e.check != "*" and e.check not in known:
                errors.append(str(ConfigError(path, f"exceptions.{i}.check", f"unknown check id {e.check!r}")))
                continue
            good.append(e)
        return good, errors


def apply_exceptions(results: Iterable[Result], exceptions: Iterable[RiskException],
                     as_of: datetime) -> list[Result]:
    """``results`` with ``suppressed`` set on FAILED results covered by a tag or a live exception."""
    live = [e for e in exceptions if e.expires is None or e.expires >= as_of.date()]
    out = []
    for r in results:
        reason = None
        if r.status == "FAILED":
            tag = r.tags.get(ACCEPTED_RISK_TAG)
            limited = {c.strip() for c in r.tags.get(ACCEPTED_RISK_CHECKS_TAG, "").split(",") if c.strip()}
            if tag and (not limited or r.check_id in limited):
                reason = f"accepted risk (tag {ACCEPTED_RISK_TAG}): {tag}"
            for e in live:
                if e.check in ("*", r.check_id) and e.resource in (r.resource_id, r.resource_arn):
                    owner = f", owner {e.owner}" if e.owner else ""
                    until = f", until {e.expires}" if e.expires else ""
                    reason = f"accepted risk (exceptions.yaml{owner}{until}): {e.reason}"
                    break
        out.append(dataclasses.replace(r, suppressed=reason) if reason else r)
    return out
