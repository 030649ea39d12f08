"""Alerting rules: user-authored YAML under ``include/alerting/``, validated with pydantic.

* ``severity.yaml``    ordered rules ``match -> severity`` (first match wins; reason recorded)
* ``routing.yaml``     ordered rules ``match -> topics`` (SNS topic names, ``{team}`` substituted)
* ``suppression.yaml`` maintenance windows, known-noisy rules, flapping detection
* ``grouping.yaml``    dedup window, grouping window, the least severity that opens an incident

A file that fails validation raises :class:`~aiops.core.errors.ConfigError` naming the file and the field
(``load_rules(strict=True)``); by default the error is recorded in ``AlertingRules.errors`` and that
one concern falls back to its built-in defaults, so the rest keeps working.
"""

from __future__ import annotations

import fnmatch
from datetime import datetime, time
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from aiops.core.alerts import SEVERITY_ORDER, Alert, Severity
from aiops.core.config import ConfigErrors, load_yaml_model
from aiops.core.errors import ConfigError
from aiops.core.settings import get_settings

Strs = str | list[str]
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Match(_Strict):
    """All given fields must match (values are globs; a list means any of them)."""

    source: Strs | None = None
    detail_type: Strs | None = None
    service: Strs | None = None
    env: Strs | None = None
    team: Strs | None = None
    resource: Strs | None = None
    resource_type: Strs | None = None
    metric: Strs | None = Field(None, description="glob over the series_id, e.g. '*|CPUUtilization|*'")
    title: Strs | None = None
    labels: dict[str, Strs] = Field(default_factory=dict)
    severity_at_least: Severity | None = None

    def matches(self, alert: Alert) -> bool:
        def ok(pattern: Strs | None, value: Any) -> bool:
            if pattern is None:
                return True
            if value is None:
                return False
            pats = [pattern] if isinstance(pattern, str) else pattern
            return any(fnmatch.fnmatchcase(str(value), p) for p in pats)

        fields = {"source": alert.source, "detail_type": alert.raw.get("detail-type"), "service": alert.service,
                  "env": alert.env, "team": alert.team, "resource": alert.resource,
                  "resource_type": alert.resource_type, "metric": alert.metric, "title": alert.title}
        if not all(ok(getattr(self, name), value) for name, value in fields.items()):
            return False
        if not all(ok(p, alert.labels.get(k)) for k, p in self.labels.items()):
            return False
        return self.severity_at_least is None or \
            SEVERITY_ORDER[alert.severity] >= SEVERITY_ORDER[self.severity_at_least]


class SeverityRule(_Strict):
    name: str
    match: Match
    severity: Severity
    reason: str = ""


class SeverityRules(_Strict):
    rules: list[SeverityRule] = Field(default_factory=list)

    def apply(self, alert: Alert) -> Alert:
        """Set ``alert.severity`` from the first matching rule; record why in ``enrichment``."""
        guess = alert.severity
        for rule in self.rules:
            if rule.match.matches(alert):
                alert.severity = rule.severity
                alert.enrichment["severity_rule"] = {"rule": rule.name, "reason": rule.reason, "from": guess,
                                                     "to": rule.severity}
                return alert
        alert.enrichment["severity_rule"] = {"rule": None, "reason": f"no rule matched; {alert.source} default",
                                             "from": guess, "to": guess}
        return alert


class RoutingRule(_Strict):
    name: str
    match: Match
    topics: list[str] = Field(min_length=1, description="SNS topic names; '{team}' is the alert's team")
    stop: bool = Field(True, description="Stop at this rule (else later matching rules add topics)")


class RoutingRules(_Strict):
    default_team: str = "platform"
    rules: list[RoutingRule] = Field(default_factory=list)
    default_topics: list[str] = Field(default_factory=lambda: ["aiops-alerts-{team}"])
    notify_min_severity: Severity = Field("info", description="Incidents below this are opened but notify nobody")

    def topics_for(self, alert: Alert) -> tuple[list[str], list[str]]:
        """(topic names, rule names) for a representative alert of an incident."""
        team = alert.team or self.default_team
        names: list[str] = []
        used: list[str] = []
        for rule in self.rules:
            if rule.match.matches(alert):
                names += [t.format(team=team) for t in rule.topics]
                used.append(rule.name)
                if rule.stop:
                    break
        if not names:
            names = [t.format(team=team) for t in self.default_topics]
            used.append("default")
        return list(dict.fromkeys(names)), used


class MaintenanceWindow(_Strict):
    name: str
    match: Match
    start: datetime | None = Field(None, description="One-off window: start (UTC)")
    end: datetime | None = Field(None, description="One-off window: end (UTC)")
    days: list[str] | None = Field(None, description="Recurring window: days (mon..sun), with from/to times")
    from_time: time | None = Field(None, alias="from")
    to_time: time | None = Field(None, alias="to")
    reason: str = ""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    @field_validator("days")
    @classmethod
    def _days(cls, v: list[str] | None) -> list[str] | None:
        if v is not None:
            bad = [d for d in v if d.lower()[:3] not in DAYS]
            if bad:
                raise ValueError(f"unknown day(s) {bad}; use {', '.join(DAYS)}")
            return [d.lower()[:3] for d in v]
        return v

    @model_validator(mode="after")
    def _shape(self) -> MaintenanceWindow:
        one_off = self.start is not None or self.end is not None
        recurring = self.days is not None or self.from_time is not None or self.to_time is not None
        if one_off == recurring:
            raise ValueError("give either start/end (one-off) or days/from/to (recurring)")
        if one_off and (self.start is None or self.end is None or self.end <= self.start):
            raise ValueError("a one-off window needs start < end")
        if recurring and (self.days is None or self.from_time is None or self.to_time is None):
            raise ValueError("a recurring window needs days, from and to")
        return self

    def active(self, at: datetime) -> bool:
        if self.start is not None and self.end is not None:
            start = self.start if self.start.tzinfo else self.start.replace(tzinfo=at.tzinfo)
            end = self.end if self.end.tzinfo else self.end.replace(tzinfo=at.tzinfo)
            return start <= at < end
        if self.days is None or self.from_time is None or self.to_time is None:  # excluded by _shape
            return False
        day, now = DAYS[at.weekday()], at.time().replace(tzinfo=None)
        if self.from_time <= self.to_time:
            return day in self.days and self.from_time <= now < self.to_time
        # overnight window (22:00-06:00): the early part belongs to the previous day's window
        previous = DAYS[(at.weekday() - 1) % 7]
        return (day in self.days and now >= self.from_time) or (previous in self.days and now < self.to_time)


class NoisyRule(_Strict):
    name: str
    match: Match
    reason: str = Field(min_length=1, description="Why it is known to be noisy (and who owns fixing it)")
    until: datetime | None = Field(None, description="Expiry: suppression stops after this (UTC)")


class Flapping(_Strict):
    changes: int = Field(4, ge=2, description="State changes of one fingerprint ...")
    minutes: float = Field(30, gt=0, description="... within this many minutes mean flapping")
    hold_minutes: float = Field(0, ge=0, description="A fingerprint found flapping stays suppressed this long "
                                                     "after its last flapping state change")


class SuppressionRules(_Strict):
    maintenance_windows: list[MaintenanceWindow] = Field(default_factory=list)
    noisy: list[NoisyRule] = Field(default_factory=list)
    flapping: Flapping = Field(default_factory=Flapping)

    def suppressed_by(self, alert: Alert) -> tuple[str, str] | None:
        """(kind, rule name) when a maintenance window or noisy rule suppresses ``alert``."""
        for w in self.maintenance_windows:
            if w.active(alert.time) and w.match.matches(alert):
                return "maintenance", w.name
        for n in self.noisy:
            if (n.until is None or alert.time < n.until) and n.match.matches(alert):
                return "noisy", n.name
        return None


class GroupingRules(_Strict):
    dedup_window_minutes: float = Field(60, gt=0, description="A repeat of a firing fingerprint within this is a duplicate")
    group_window_minutes: float = Field(30, gt=0, description="Alerts of one service (or root resource) this close "
                                                              "in time form one incident candidate")
    min_incident_severity: Severity = Field("low", description="Alerts below this are recorded, not incidents")
    dedup_window_by_source: dict[str, float] = Field(
        default_factory=dict, description="Per-source dedup windows (minutes), e.g. findings re-imported daily")

    def dedup_window(self, source: str) -> float:
        return self.dedup_window_by_source.get(source, self.dedup_window_minutes)


class AlertingRules(BaseModel):
    severity: SeverityRules = Field(default_factory=SeverityRules)
    routing: RoutingRules = Field(default_factory=RoutingRules)
    suppression: SuppressionRules = Field(default_factory=SuppressionRules)
    grouping: GroupingRules = Field(default_factory=GroupingRules)
    errors: list[ConfigError] = Field(default_factory=list)
    files: dict[str, str] = Field(default_factory=dict)

    model_config = ConfigDict(arbitrary_types_allowed=True)


FILES: dict[str, type[BaseModel]] = {"severity": SeverityRules, "routing": RoutingRules,
                                     "suppression": SuppressionRules, "grouping": GroupingRules}


def _field_path(loc: tuple[Any, ...], data: Any) -> str:
    """``rules.2.match.sevrity`` -> ``rules[2] (name: x).match.sevrity``."""
    parts: list[str] = []
    node = data
    for item in loc:
        if isinstance(item, int):
            name = node[item].get("name") if isinstance(node, list) and item < len(node) and \
                isinstance(node[item], dict) else None
            parts[-1:] = [f"{parts[-1] if parts else ''}[{item}]" + (f" (name: {name})" if name else "")]
            node = node[item] if isinstance(node, list) and item < len(node) else None
        else:
            parts.append(str(item))
            node = node.get(item) if isinstance(node, dict) else None
    return ".".join(parts)


def load_file(path: Path, model: type[BaseModel]) -> BaseModel:
    """One rules file; every problem named with file, line and field (:func:`aiops.core.config.load_yaml_model`)."""
    try:
        return load_yaml_model(path, model)
    except ConfigErrors as exc:
        first = exc.issues[0]  # this domain names list items (rules[2] (name: x)) and YAML lines (line 3)
        exc.field = first.label or exc.field or (f"line {first.line}" if first.line else "")
        raise


def load_rules(directory: Path | None = None, *, strict: bool = False) -> AlertingRules:
    """Load ``include/alerting/*.yaml`` (missing files: defaults)."""
    directory = directory or get_settings().include_dir / "alerting"
    loaded: dict[str, Any] = {}
    errors: list[ConfigError] = []
    files: dict[str, str] = {}
    for name, model in FILES.items():
        path = directory / f"{name}.yaml"
        if not path.exists():
            continue
        try:
            loaded[name] = load_file(path, model)
            files[name] = str(path)
        except ConfigError as err:
            if strict:
                raise
            errors.append(err)
    return AlertingRules(**loaded, errors=errors, files=files)


def at_least(severity: str, floor: str) -> bool:
    return SEVERITY_ORDER[severity] >= SEVERITY_ORDER[floor]


Decision = Literal["accepted", "redelivery", "duplicate", "suppressed", "resolved", "informational", "stale"]
