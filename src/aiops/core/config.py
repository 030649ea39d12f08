"""One YAML-to-model loader for every user-authored file under ``include/``.

:func:`load_yaml_model` reads a YAML file and validates it with a pydantic model; every problem is
reported at once, each with file, line and field (``include/alerting/routing.yaml:7: routes[1]
(name: oncall).match.sevrity: Extra inputs are not permitted``). :class:`ConfigErrors` is a
:class:`~aiops.core.errors.ConfigError`, so callers that caught the first-error-only exception keep
working.

Which model each file under ``include/`` has is :mod:`aiops.config_files` (it knows the capability
packages, which core must not import): ``aiops config validate`` and ``aiops config schema``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from aiops.core.errors import ConfigError

M = TypeVar("M", bound=BaseModel)


@dataclass(frozen=True)
class ConfigIssue:
    path: Path
    line: int | None
    field: str  # dotted path as pydantic gives it (``routes.1.match``): stable for code and tests
    message: str
    label: str = ""  # what people read: ``routes[1] (name: oncall).match``

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line else f"{self.path}"
        shown = self.label or self.field
        return f"{where}: {shown}: {self.message}" if shown else f"{where}: {self.message}"


class ConfigErrors(ConfigError):
    """Every problem of one file (a :class:`ConfigError` whose message lists them all)."""

    def __init__(self, path: Path | str, issues: list[ConfigIssue]) -> None:
        self.issues = issues
        first = issues[0]
        super().__init__(path, first.field, first.message)
        self.args = ("\n".join(str(i) for i in issues),)

    def __str__(self) -> str:
        return str(self.args[0])


def _line_index(node: yaml.Node | None) -> dict[tuple[Any, ...], int]:
    """loc tuple (keys and list indexes) -> 1-based line of that value (of the key for mappings)."""
    out: dict[tuple[Any, ...], int] = {}

    def walk(n: yaml.Node, loc: tuple[Any, ...]) -> None:
        out.setdefault(loc, n.start_mark.line + 1)
        if isinstance(n, yaml.MappingNode):
            for k, v in n.value:
                key = k.value if isinstance(k, yaml.ScalarNode) else str(k.value)
                out[(*loc, key)] = k.start_mark.line + 1
                walk(v, (*loc, key))
                out[(*loc, key)] = k.start_mark.line + 1
        elif isinstance(n, yaml.SequenceNode):
            for i, v in enumerate(n.value):
                walk(v, (*loc, i))

    if node is not None:
        walk(node, ())
    return out


def read_yaml(path: Path | str) -> tuple[Any, dict[tuple[Any, ...], int]]:
    """(data, line index) of a YAML file; unreadable or invalid YAML -> :class:`ConfigErrors` with the line."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigErrors(path, [ConfigIssue(path, None, "", f"cannot read: {exc.strerror or exc}")]) from None
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or str(exc)
        line = mark.line + 1 if mark else None
        raise ConfigErrors(path, [ConfigIssue(path, line, "", f"not valid YAML: {problem}")]) from None
    return data, _line_index(node)


def field_path(loc: Iterable[Any], data: Any) -> str:
    """``("routes", 1, "match", "sevrity")`` -> ``routes[1] (name: oncall).match.sevrity``."""
    parts: list[str] = []
    node = data
    for item in loc:
        if isinstance(item, int):
            name = None
            if isinstance(node, list) and item < len(node) and isinstance(node[item], dict):
                name = node[item].get("name") or node[item].get("id")
            label = f"[{item}]" + (f" (name: {name})" if name else "")
            if parts:
                parts[-1] += label
            else:
                parts.append(label)
            node = node[item] if isinstance(node, list) and item < len(node) else None
        else:
            parts.append(str(item))
            node = node.get(item) if isinstance(node, dict) else None
    return ".".join(parts)


def _line_of(loc: tuple[Any, ...], lines: dict[tuple[Any, ...], int]) -> int | None:
    for n in range(len(loc), -1, -1):  # the deepest part of the path that exists in the file
        if loc[:n] in lines:
            return lines[loc[:n]]
    return None


def issues_of(path: Path, exc: ValidationError, data: Any, lines: dict[tuple[Any, ...], int],
              prefix: tuple[Any, ...] = ()) -> list[ConfigIssue]:
    out = []
    for err in exc.errors():
        loc = _file_loc((*prefix, *err["loc"]), data)
        out.append(ConfigIssue(path, _line_of(loc, lines), ".".join(str(p) for p in loc) or "(root)", err["msg"],
                               field_path(loc, data) or "(root)"))
    return out


def _file_loc(loc: tuple[Any, ...], data: Any) -> tuple[Any, ...]:
    """pydantic's loc without the parts that are not in the file: a discriminated union's chosen tag
    (``indicator.ratio.bad`` where the file says ``kind: ratio``) and validator names."""
    out: list[Any] = []
    node = data
    for part in loc:
        if isinstance(part, str) and (part.startswith("function-") or "[" in part):
            continue
        if isinstance(node, dict) and isinstance(part, str) and part not in node and part in {
                str(v) for v in node.values() if isinstance(v, str | int)}:
            continue
        out.append(part)
        if isinstance(node, dict):
            node = node.get(part)
        elif isinstance(node, list) and isinstance(part, int) and part < len(node):
            node = node[part]
        else:
            node = None
    return tuple(out)


def validate_data(path: Path | str, model: type[M], data: Any,
                  lines: dict[tuple[Any, ...], int] | None = None) -> M:
    path = Path(path)
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ConfigErrors(path, issues_of(path, exc, data, lines or {})) from None


def load_yaml_model(path: Path | str, model: type[M], *, empty: Any = None) -> M:
    """Read ``path`` and validate it as ``model``. An empty file validates ``empty`` (default ``{}``).
    Raises :class:`ConfigErrors` naming every problem with file, line and field."""
    path = Path(path)
    data, lines = read_yaml(path)
    if data is None:
        data = {} if empty is None else empty
    return validate_data(path, model, data, lines)


# -- a broken file in force: the alert event --------------------------------------------------------

CONFIG_EVENT_SOURCE = "matcarv.aiops"
CONFIG_EVENT_DETAIL_TYPE = "AIOps Config Error"


def config_error_event(path: Path | str, problems: list[str], *, component: str, action: str,
                       account: str = "000000000000", region: str = "us-east-1",
                       now: Any = None) -> dict[str, Any]:
    """An EventBridge event (as delivered) saying a config file is broken and what the platform does
    about it (``action``: "last good version in force" / "run failed"). Its id is stable per file
    content, so the same broken file raises one alert however many runs read it."""
    import hashlib
    from datetime import UTC, datetime

    digest = hashlib.sha256((str(path) + "\n" + "\n".join(problems)).encode()).hexdigest()[:24]
    return {"version": "0", "id": f"aiops-config-{digest}", "source": CONFIG_EVENT_SOURCE,
            "detail-type": CONFIG_EVENT_DETAIL_TYPE, "account": account, "region": region,
            "time": (now or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ"), "resources": [],
            "detail": {"file": str(path), "component": component, "action": action, "problems": problems[:50]}}
