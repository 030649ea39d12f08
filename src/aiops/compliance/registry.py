"""The check registry: every module in :mod:`aiops.compliance.checks` is one check.

A check module defines ``METADATA`` (:class:`~aiops.compliance.model.CheckMeta`) and
``evaluate(inv: Inventory) -> Iterable[Result]`` (a pure function of the collected records).
Adding a check is adding a module; registration fails loudly when the module name and the
metadata id disagree, an id repeats, or ``evaluate`` is missing.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import lru_cache

from aiops.compliance import checks as package
from aiops.compliance.model import CheckMeta, Inventory, Result


class RegistryError(RuntimeError):
    pass


@dataclass(frozen=True)
class Check:
    meta: CheckMeta
    evaluate: Callable[[Inventory], Iterable[Result]]
    module: str


@lru_cache(maxsize=1)
def checks() -> dict[str, Check]:
    """All registered checks by id (sorted by id)."""
    found: dict[str, Check] = {}
    for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda i: i.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{package.__name__}.{info.name}")
        meta = getattr(module, "METADATA", None)
        evaluate = getattr(module, "evaluate", None)
        if not isinstance(meta, CheckMeta):
            raise RegistryError(f"{module.__name__}: no METADATA (CheckMeta)")
        if not callable(evaluate):
            raise RegistryError(f"{module.__name__}: no evaluate(inventory) function")
        if meta.id != info.name:
            raise RegistryError(f"{module.__name__}: METADATA.id {meta.id!r} does not match the module name")
        if meta.id in found:
            raise RegistryError(f"check id {meta.id!r} registered twice")
        found[meta.id] = Check(meta=meta, evaluate=evaluate, module=module.__name__)
    return found


def run_checks(inv: Inventory, only: Iterable[str] | None = None,
               disabled: Iterable[str] = ()) -> tuple[list[Result], dict[str, str]]:
    """Evaluate the enabled checks; returns (results, errors by check id). A check whose records
    could not be collected, or that raises, is reported in errors and the others still run."""
    wanted = set(only) if only else None
    off = set(disabled)
    results: list[Result] = []
    errors: dict[str, str] = {}
    for check_id, check in checks().items():
        if check_id in off or (wanted is not None and check_id not in wanted):
            continue
        missing = [k for k in check.meta.requires if k in inv.errors]
        if missing:
            errors[check_id] = "; ".join(f"{k}: {inv.errors[k]}" for k in missing)
            continue
        try:
            results.extend(check.evaluate(inv))
        except Exception as exc:  # one broken check must not hide the others' results
            errors[check_id] = f"{type(exc).__name__}: {exc}"
    return results, errors
