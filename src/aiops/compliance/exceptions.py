"""Accepted-risk exceptions: a FAILED result they cover is reported SUPPRESSED with the reason.

Two sources, both audited in the summary:

- ``include/compliance/exceptions.yaml``: ``exceptions: [{id, check, resource, reason, owner,
  approved_by, expires}]`` where ``check`` may be ``"*"`` and ``resource`` is the id or ARN (or
  ``"*"`` for an entry that tags name). Expired entries stop applying. An entry without ``id``
  applies to its resource directly; an entry with an ``id`` applies only where a resource's tag
  names it.
- the resource tag ``aiops:accepted-risk`` = ``<exception id>`` (optional ``aiops:accepted-risk-checks``
  = comma-separated check ids it is limited to). A tag suppresses only when it names a recorded
  exception with an approver (``approved_by``) and an expiry (``expires``) that is still live and
  covers the check and the resource: anyone who can tag a resource could otherwise silence its
  findings. A tag that does not qualify leaves the result FAILED, and the result says why
  (``Result.risk_tag_ignored``, shown in the summary).

A malformed file raises :class:`~aiops.core.errors.ConfigError` naming the file and the field.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from datetime import date, datetime
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from aiops.compliance.model import Result
from aiops.core.config import load_yaml_model
from aiops.core.errors import ConfigError
from aiops.core.settings import get_settings

ACCEPTED_RISK_TAG = "aiops:accepted-risk"
ACCEPTED_RISK_CHECKS_TAG = "aiops:accepted-risk-checks"


class RiskException(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str | None = Field(None, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]{1,99}$",
                           description="Name a resource's aiops:accepted-risk tag may carry.")
    check: str = Field(min_length=1, description='Check id, or "*" for every check.')
    resource: str = Field(min_length=1, description='Resource id or ARN; "*" only for an entry tags name.')
    reason: str = Field(min_length=3)
    owner: str | None = None
    approved_by: str | None = Field(None, description="Who accepted the risk (required for tags to use it).")
    expires: date | None = None

    @model_validator(mode="after")
    def _wildcard_needs_approval(self) -> RiskException:
        if self.resource == "*" and not (self.id and self.approved_by and self.expires):
            raise ValueError('resource "*" is only for an entry with an id, approved_by and expires '
                             "(resources opt in by tagging aiops:accepted-risk=<id>)")
        return self


class ExceptionsFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    exceptions: list[RiskException] = Field(default_factory=list)


def default_path() -> Path:
    return get_settings().include_dir / "compliance" / "exceptions.yaml"


def load_exceptions(path: Path | None = None, known_checks: Iterable[str] | None = None) -> list[RiskException]:
    path = path or default_path()
    if not path.exists():
        return []

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


def tag_exception(tag: str, result: Result, exceptions: Iterable[RiskException],
                  as_of: datetime) -> tuple[RiskException | None, str]:
    """The recorded exception an ``aiops:accepted-risk`` tag value names, or why it does not qualify."""
    name = tag.strip()
    entry = next((e for e in exceptions if e.id and e.id == name), None)
    where = "include/compliance/exceptions.yaml"
    if entry is None:
        return None, (f"tag {ACCEPTED_RISK_TAG}={name!r} ignored: it names no exception recorded in {where} "
                      "(a tag must name an entry's id; the entry records approved_by and expires)")
    missing = [f for f in ("approved_by", "expires") if not getattr(entry, f)]
    if missing:
        return None, f"tag {ACCEPTED_RISK_TAG}={name!r} ignored: exception {name} records no {' or '.join(missing)}"
    if entry.expires and entry.expires < as_of.date():
        return None, f"tag {ACCEPTED_RISK_TAG}={name!r} ignored: exception {name} expired on {entry.expires}"
    if entry.check not in ("*", result.check_id):
        return None, f"tag {ACCEPTED_RISK_TAG}={name!r} ignored: exception {name} is for check {entry.check}"
    if entry.resource not in ("*", result.resource_id, result.resource_arn):
        return None, f"tag {ACCEPTED_RISK_TAG}={name!r} ignored: exception {name} is for resource {entry.resource}"
    return entry, ""


def apply_exceptions(results: Iterable[Result], exceptions: Iterable[RiskException],
                     as_of: datetime) -> list[Result]:
    """``results`` with ``suppressed`` set on FAILED results covered by a recorded exception (directly,
    or through a tag naming it); ``risk_tag_ignored`` says why a tag that did not qualify was ignored."""
    exceptions = list(exceptions)
    # entries with an id are opted into by tagging (aiops:accepted-risk=<id>); the others name their resource
    live = [e for e in exceptions if (e.expires is None or e.expires >= as_of.date()) and not e.id]
    out = []
    for r in results:
        reason = ignored = None
        if r.status == "FAILED":
            for e in live:
                if e.check in ("*", r.check_id) and e.resource in (r.resource_id, r.resource_arn):
                    owner = f", owner {e.owner}" if e.owner else ""
                    approved = f", approved by {e.approved_by}" if e.approved_by else ""
                    until = f", until {e.expires}" if e.expires else ""
                    reason = f"accepted risk (exceptions.yaml{owner}{approved}{until}): {e.reason}"
                    break
            tag = r.tags.get(ACCEPTED_RISK_TAG)
            limited = {c.strip() for c in r.tags.get(ACCEPTED_RISK_CHECKS_TAG, "").split(",") if c.strip()}
            if reason is None and tag and (not limited or r.check_id in limited):
                entry, ignored = tag_exception(tag, r, exceptions, as_of)
                if entry is not None:
                    reason = (f"accepted risk (tag {ACCEPTED_RISK_TAG} -> exception {entry.id}, approved by "
                              f"{entry.approved_by}, until {entry.expires}): {entry.reason}")
                    ignored = None
        if reason or ignored:
            r = dataclasses.replace(r, suppressed=reason, risk_tag_ignored=ignored or None)
        out.append(r)
    return out
