"""Guards the executor runs before anything reaches SSM. Pure functions: no AWS calls.

:func:`validate_parameters` checks the values against each parameter's pattern (``re.fullmatch``,
so ``i-123; rm -rf /`` or a value with a newline never gets through) and normalises them to what
``StartAutomationExecution`` takes. :func:`check_targets` refuses protected, missing or too many
targets. Both raise :class:`GuardViolation` with a message an operator can act on.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aiops.core.errors import AiopsError

if TYPE_CHECKING:
    from aiops.remediation.catalog import Runbook

PROTECTED_TAG = "aiops:protected"
#: States in which a target counts as gone, whatever ``exists`` says.
GONE_STATES = frozenset({"terminated", "shutting-down", "deleted", "deleting"})
_SHOWN_VALUE_CHARS = 80


class GuardViolation(AiopsError):
    """A remediation was refused before reaching SSM: names the runbook and what was wrong."""

    def __init__(
        self, runbook_id: str, message: str, *, parameter: str | None = None, targets: Sequence[str] = ()
    ) -> None:
        self.runbook_id = runbook_id
        self.message = message
        self.parameter = parameter
        self.targets = list(targets)
        super().__init__(f"runbook {runbook_id!r}: {message}")


@dataclass(frozen=True)
class TargetInfo:
    """What the executor found out about one target before acting on it (``detail``: free-form
    facts for the plan, e.g. name and instance type; the guards do not read it)."""

    id: str
    kind: str
    tags: Mapping[str, str]
    exists: bool
    state: str | None = None
    detail: Mapping[str, Any] = field(default_factory=dict)

    @property
    def protected(self) -> bool:
        return any(key.strip().lower() == PROTECTED_TAG and str(value).strip().lower() == "true"
                   for key, value in self.tags.items())

    @property
    def gone(self) -> bool:
        return not self.exists or (self.state or "").strip().lower() in GONE_STATES


# Value normalisation per SSM parameter type: what StartAutomationExecution receives (each value a
# string, a StringList a list of strings). Raises ValueError saying what was wrong.


def _as_string(value: object) -> str:
    if not isinstance(value, str):
        raise ValueError(f"expected a string, got {type(value).__name__}")
    return value


def _as_string_list(value: object) -> list[str]:
    if isinstance(value, str):
        items = [part.strip() for part in value.split(",")]
    elif isinstance(value, list | tuple):
        items = list(value)
    else:
        raise ValueError(f"expected a list of strings, got {type(value).__name__}")
    if not items:
        raise ValueError("expected at least one item")
    for item in items:
        if not isinstance(item, str):
            raise ValueError(f"expected a list of strings, found {type(item).__name__}")
    return items


def _as_integer(value: object) -> str:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValueError(f"expected an integer, got {type(value).__name__}")
    if isinstance(value, str) and not re.fullmatch(r"-?[0-9]+", value):
        raise ValueError(f"expected an integer, got {_shown(value)}")
    return str(int(value))


def _as_boolean(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower()
    raise ValueError(f"expected true or false, got {_shown(value)}")


#: SSM parameter types the executor can pass, each with its normaliser.
VALUE_COERCERS: dict[str, Callable[[object], str | list[str]]] = {
    "String": _as_string,
    "StringList": _as_string_list,
    "Integer": _as_integer,
    "Boolean": _as_boolean,
}


def validate_parameters(runbook: Runbook, params: Mapping[str, object]) -> dict[str, list[str] | str]:
    """The given parameters, checked and normalised (StringList -> list, Integer/Boolean -> str).

    Refuses unknown names, missing required ones, values of the wrong type and any value (any list
    item) that does not fully match the parameter's pattern. Defaults are left to SSM.
    """
    declared = runbook.parameters
    unknown = sorted(set(params) - set(declared))
    if unknown:
        raise GuardViolation(
            runbook.id, f"unknown parameter(s) {unknown}; it takes {sorted(declared)}", parameter=unknown[0]
        )
    missing = [name for name in runbook.required_parameters if params.get(name) is None]
    if missing:
        raise GuardViolation(runbook.id, f"missing required parameter(s) {missing}", parameter=missing[0])
    result: dict[str, list[str] | str] = {}
    for name, value in params.items():
        spec = declared[name]
        if value is None:
            continue  # an explicit "not given": the document default applies
        coerce = VALUE_COERCERS.get(spec["type"])
        if coerce is None:
            raise GuardViolation(runbook.id, f"parameter {name}: type {spec['type']} is not supported",
                                 parameter=name)
        try:
            normalised = coerce(value)
        except ValueError as exc:
            raise GuardViolation(runbook.id, f"parameter {name}: {exc}", parameter=name) from None
        pattern = runbook.metadata.parameters[name].pattern
        allowed = spec.get("allowedValues")
        for item in normalised if isinstance(normalised, list) else [normalised]:
            if re.fullmatch(pattern, item) is None:
                raise GuardViolation(
                    runbook.id, f"parameter {name}: {_shown(item)} does not match {pattern!r}", parameter=name
                )
            if allowed is not None and item not in [str(a) for a in allowed]:
                raise GuardViolation(
                    runbook.id, f"parameter {name}: {_shown(item)} is not one of {allowed}", parameter=name
                )
        if isinstance(normalised, list):
            _check_item_count(runbook, name, normalised, spec)
        result[name] = normalised
    return result


def _check_item_count(runbook: Runbook, name: str, items: list[str], spec: Mapping[str, object]) -> None:
    low, high = spec.get("minItems"), spec.get("maxItems")
    if isinstance(low, int) and len(items) < low:
        raise GuardViolation(runbook.id, f"parameter {name}: at least {low} item(s) needed", parameter=name)
    if isinstance(high, int) and len(items) > high:
        raise GuardViolation(runbook.id, f"parameter {name}: at most {high} item(s) allowed", parameter=name)


def target_ids(runbook: Runbook, params: Mapping[str, list[str] | str]) -> list[str]:
    """Ids of the resources validated ``params`` act on (the ``targets_parameter`` values)."""
    value = params.get(runbook.metadata.targets_parameter)
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


def blast_radius(runbook: Runbook, max_targets: int | None) -> int:
    """Most targets one remediation may touch: the runbook's ``max_targets``, lowered by the
    configured max when there is one (0 or less: nothing may run)."""
    limit = runbook.metadata.max_targets
    return limit if max_targets is None else min(limit, max_targets)


def check_targets(runbook: Runbook, targets: Sequence[TargetInfo], max_targets: int | None) -> None:
    """Refuse the remediation unless every target may be acted on.

    Refused: no targets; more than :func:`blast_radius`; a target of another kind than the runbook
    acts on; a target that does not exist (or is terminated/deleted); a target tagged
    ``aiops:protected=true`` (value compared case-insensitively).
    """
    if not targets:
        raise GuardViolation(runbook.id, "no targets")
    ids = [t.id for t in targets]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise GuardViolation(runbook.id, f"targets listed more than once: {duplicates}", targets=duplicates)
    limit = blast_radius(runbook, max_targets)
    if len(targets) > limit:
        raise GuardViolation(
            runbook.id,
            f"{len(targets)} targets exceed the blast radius of {limit} "
            f"(runbook max_targets={runbook.metadata.max_targets}, configured max={max_targets})",
            targets=ids,
        )
    kind = runbook.target_kind
    wrong_kind = [t.id for t in targets if kind is not None and t.kind != kind]
    if wrong_kind:
        raise GuardViolation(runbook.id, f"acts on {kind} targets, not {wrong_kind}", targets=wrong_kind)
    gone = [t.id for t in targets if t.gone]
    if gone:
        raise GuardViolation(runbook.id, f"target(s) do not exist: {gone}", targets=gone)
    protected = [t.id for t in targets if t.protected]
    if protected:
        raise GuardViolation(runbook.id, f"target(s) tagged {PROTECTED_TAG}=true: {protected}", targets=protected)


def _shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= _SHOWN_VALUE_CHARS else text[:_SHOWN_VALUE_CHARS] + "..."
