"""One YAML-to-model loader for every user-authored file under ``include/``.

:func:`load_yaml_model` reads a YAML file and validates it with a pydantic model; every problem is
reported at once, each with file, line and field (``include/alerting/routing.yaml:7: routes[1]
(name: oncall).match.sevrity: Extra inputs are not permitted``). :class:`ConfigErrors` is a
:class:`~aiops.core.errors.ConfigError`, so callers that caught the first-error-only exception keep
working.

:data:`INCLUDE_FILES` maps every file pattern under ``include/`` to its model; ``aiops config
validate`` (run by ``make test``) checks every file against it, and ``aiops config schema`` writes
each model's JSON Schema to ``schemas/`` so editors validate as users type (a
``# yaml-language-server: $schema=...`` line or the editor's schema mapping; docs/configuration.md).
"""

from __future__ import annotations

import fnmatch
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, TypeAdapter, ValidationError

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


# -- every file under include/ ----------------------------------------------------------------------

Checker = Callable[[Path], list[str]]  # path -> problems (empty: valid)
SchemaFactory = Callable[[], dict[str, Any]]


def _import(target: str) -> Any:
    import importlib

    module, name = target.split(":", 1)
    return getattr(importlib.import_module(module), name)


def _problems(call: Callable[[], Any]) -> list[str]:
    """Run a loader; its ConfigError(s) and any ``.errors`` of what it returns, as text lines."""
    try:
        loaded = call()
    except ConfigError as exc:
        return str(exc).splitlines()
    errors = getattr(loaded, "errors", None) or []
    return [line for e in errors for line in str(e).splitlines()]


def _model(target: str) -> tuple[Checker, SchemaFactory]:
    return (lambda path: _problems(lambda: load_yaml_model(path, _import(target))),
            lambda: _import(target).model_json_schema())


def _loader(target: str, schema: str | None = None) -> tuple[Checker, SchemaFactory | None]:
    """A file whose domain loader checks more than its model (duplicates, references, inheritance)."""
    return ((lambda path: _problems(lambda: _import(target)(path))),
            (lambda: TypeAdapter(_import(schema)).json_schema()) if schema else None)


def _check_model_spec(path: Path) -> Any:
    from aiops.anomaly.spec import load_spec

    if path.stem == "default":
        return load_spec(path)
    base, _ = read_yaml(path.parent / "default.yaml")
    inherited = {k: v for k, v in base.items() if k not in ("family", "description", "match")} \
        if isinstance(base, dict) else None
    return load_spec(path, inherited)


def _check_ops_file(path: Path) -> list[str]:
    import shutil
    import tempfile

    from aiops.ops.policy import KINDS, load_policies

    with tempfile.TemporaryDirectory() as tmp:  # load_policies reads a directory: give it this file alone
        shutil.copy(path, Path(tmp) / path.name)
        lines = [str(e).replace(str(Path(tmp) / path.name), str(path))
                 for kind in KINDS for e in load_policies(kind, Path(tmp)).errors]
    return sorted(set(lines), key=lines.index)


def _check_runbook(path: Path) -> list[str]:
    from aiops.remediation.catalog import load_runbook

    stem = path.name.removesuffix(".meta.yaml").removesuffix(".yaml")
    document, meta = path.parent / f"{stem}.yaml", path.parent / f"{stem}.meta.yaml"
    if not (document.exists() and meta.exists()):
        return [f"{path}: runbooks are <id>.yaml (SSM document) + <id>.meta.yaml (metadata); the pair is incomplete"]
    if path == meta:
        return []  # checked with its document
    _, errors = load_runbook(document, meta)
    return [line for e in errors for line in str(e).splitlines()]


def include_files() -> dict[str, tuple[Checker, SchemaFactory | None]]:
    """file pattern under include/ -> (checker, JSON Schema factory or None)."""
    return {
        "alerting/severity.yaml": _model("aiops.alerting.rules:SeverityRules"),
        "alerting/routing.yaml": _model("aiops.alerting.rules:RoutingRules"),
        "alerting/suppression.yaml": _model("aiops.alerting.rules:SuppressionRules"),
        "alerting/grouping.yaml": _model("aiops.alerting.rules:GroupingRules"),
        "compliance/exceptions.yaml": _loader("aiops.compliance.exceptions:load_exceptions",
                                              "aiops.compliance.exceptions:ExceptionsFile"),
        "incidents/runbooks.yaml": _loader("aiops.incidents.config:load_rules", "aiops.incidents.config:MatchConfig"),
        "metrics/catalog.yaml": _model("aiops.metrics.model:MetricCatalog"),
        "models/*.yaml": _loader("aiops.core.config:_check_model_spec", "aiops.anomaly.spec:ModelSpec"),
        "ops/*.yaml": (_check_ops_file, None),
        "pricing/*.yaml": _model("aiops.cost.pricing:PriceTable"),
        "runbooks/*.meta.yaml": (_check_runbook, lambda: _import("aiops.remediation.catalog:RunbookMetadata")
                                 .model_json_schema()),
        "runbooks/*.yaml": (_check_runbook, lambda: _import("aiops.remediation.catalog:AutomationDocument")
                            .model_json_schema()),
        "slos/*.yaml": _loader("aiops.slo.rules:load_file", "aiops.slo.rules:SloSpec"),
    }


def _kind_of(rel: str, patterns: Iterable[str]) -> str | None:
    matches = [pat for pat in patterns if fnmatch.fnmatch(rel, pat)]
    return max(matches, key=len) if matches else None  # runbooks/*.meta.yaml before runbooks/*.yaml


def validate_include(include_dir: Path) -> tuple[list[Path], list[str]]:
    """Check every YAML file under ``include_dir``; returns (files checked, problems as text lines)."""
    checked: list[Path] = []
    problems: list[str] = []
    files = include_files()
    for path in sorted([*include_dir.rglob("*.yaml"), *include_dir.rglob("*.yml")]):
        rel = path.relative_to(include_dir).as_posix()
        kind = _kind_of(rel, files)
        if kind is None:
            problems.append(f"{path}: no schema knows this file (add it to aiops.core.config.include_files)")
            continue
        checked.append(path)
        problems += files[kind][0](path)
    return checked, problems


def write_schemas(out_dir: Path) -> list[Path]:
    """One JSON Schema per include/ file pattern: ``<out>/<dir>/<name>.schema.json``."""
    written = []
    for pattern, (_, schema) in include_files().items():
        if schema is None:
            continue
        name = pattern.replace("*.meta", "runbook.meta").replace("*", "any").removesuffix(".yaml")
        target = out_dir / f"{name}.schema.json"
        target.parent.mkdir(parents=True, exist_ok=True)
        doc = {"$schema": "https://json-schema.org/draft/2020-12/schema", "title": f"include/{pattern}", **schema()}
        target.write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n")
        written.append(target)
    return written


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
