"""Every file pattern under ``include/`` and its model: ``aiops config validate`` checks each file,
``aiops config schema`` writes each model's JSON Schema to ``schemas/`` so editors validate as users
type (a ``# yaml-language-server: $schema=...`` line or the editor's schema mapping; see
docs/configuration.md). Loading goes through :func:`aiops.core.config.load_yaml_model`.

This module sits above the capability packages (it names their models), next to the CLI.
"""

from __future__ import annotations

import fnmatch
import json
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter

from aiops.anomaly.spec import load_spec
from aiops.core.config import load_yaml_model, read_yaml
from aiops.core.errors import ConfigError
from aiops.ops.policy import KINDS, load_policies
from aiops.remediation.catalog import load_runbook

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
    if path.stem == "default":
        return load_spec(path)
    base, _ = read_yaml(path.parent / "default.yaml")
    inherited = {k: v for k, v in base.items() if k not in ("family", "description", "match")} \
        if isinstance(base, dict) else None
    return load_spec(path, inherited)


def _check_ops_file(path: Path) -> list[str]:
    import shutil
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:  # load_policies reads a directory: give it this file alone
        shutil.copy(path, Path(tmp) / path.name)
        lines = [str(e).replace(str(Path(tmp) / path.name), str(path))
                 for kind in KINDS for e in load_policies(kind, Path(tmp)).errors]
    return sorted(set(lines), key=lines.index)


def _check_runbook(path: Path) -> list[str]:
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
        "models/*.yaml": _loader("aiops.config_files:_check_model_spec", "aiops.anomaly.spec:ModelSpec"),
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
            problems.append(f"{path}: no schema knows this file (add it to aiops.config_files.include_files)")
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
