"""Import hygiene (issue 18): no import cycles, and function-level imports of the project's own modules
only where they are needed — each one says why with a trailing ``# lazy: <why>`` comment.

Deliberately lazy: modules on the DAG parse path (``# lazy: DAG parse path``, see
``tests/dags/test_dag_integrity.py``), real cycles (``# lazy: cycle with aiops.x``) and the CLI
modules (``aiops.cli`` and ``aiops/*/cli.py``, lazy throughout so ``aiops --help`` stays quick)."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src"
PACKAGE = SRC / "aiops"
# Only runnable under alembic (reads ``alembic.context.config`` at import).
NOT_IMPORTABLE = {"aiops.core.migrations.env"}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> list[str]:
    return sorted(m for m in map(_module_name, PACKAGE.rglob("*.py")) if m not in NOT_IMPORTABLE)


# Each module is imported first in its own (forked) interpreter, so a cycle shows whichever module
# of it is imported first; forking from one parent keeps this to seconds rather than minutes.
PROBE = r"""
import importlib, json, os, sys, traceback
failed = {}
for name in json.loads(sys.argv[1]):
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        code = 0
        try:
            importlib.import_module(name)
        except BaseException:
            os.write(w, traceback.format_exc()[-2000:].encode())
            code = 1
        os._exit(code)
    os.close(w)
    with os.fdopen(r) as pipe:
        message = pipe.read()
    _, status = os.waitpid(pid, 0)
    if status:
        failed[name] = message or f"exit status {status}"
print(json.dumps(failed))
"""


@pytest.mark.skipif(not hasattr(__import__("os"), "fork"), reason="needs os.fork")
def test_every_module_imports_first_in_a_fresh_interpreter():
    modules = _modules()
    assert "aiops.remediation.pipeline" in modules
    out = subprocess.run([sys.executable, "-c", PROBE, json.dumps(modules)],
                         capture_output=True, text=True, check=True, timeout=900)
    failed = json.loads(out.stdout.strip().splitlines()[-1])
    assert failed == {}, "\n\n".join(f"== {name}\n{tb}" for name, tb in failed.items())


def _is_cli(path: Path) -> bool:
    return path.name == "cli.py"


def _own_module(node: ast.Import | ast.ImportFrom) -> str | None:
    if isinstance(node, ast.ImportFrom):
        if node.level:
            return "." * node.level + (node.module or "")
        return node.module if node.module and node.module.split(".")[0] == "aiops" else None
    names = [a.name for a in node.names if a.name.split(".")[0] == "aiops"]
    return names[0] if names else None


def unexplained_lazy_imports(path: Path, root: Path = SRC) -> list[str]:
    """``path:line: statement`` for each function-level import of an ``aiops`` module without a
    ``# lazy:`` comment on one of its lines."""
    text = path.read_text()
    lines = text.splitlines()
    found = []
    for fn in ast.walk(ast.parse(text)):
        if not isinstance(fn, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        for node in ast.walk(fn):
            if not isinstance(node, ast.Import | ast.ImportFrom) or _own_module(node) is None:
                continue
            statement = lines[node.lineno - 1:node.end_lineno]
            if not any("# lazy:" in line for line in statement):
                found.append(f"{path.relative_to(root)}:{node.lineno}: {statement[0].strip()}")
    return sorted(set(found))


def test_function_level_imports_of_own_modules_say_why():
    offenders = [hit for path in sorted(PACKAGE.rglob("*.py")) if not _is_cli(path)
                 for hit in unexplained_lazy_imports(path)]
    assert offenders == [], (
        "import these at module top level, or keep them in the function with a trailing "
        "'# lazy: <why>' (DAG parse path, cycle with aiops.x):\n" + "\n".join(offenders))


def test_the_lazy_import_check_sees_function_level_imports(tmp_path):
    src = tmp_path / "src" / "aiops" / "x.py"
    src.parent.mkdir(parents=True)
    src.write_text("import aiops.core\n\n\ndef f():\n    from aiops.core import times\n"
                   "    from aiops.core import aws  # lazy: DAG parse path\n"
                   "    import json\n    return times, aws, json\n")
    hits = [h.split(": ", 1)[1] for h in unexplained_lazy_imports(src, tmp_path / "src")]
    assert hits == ["from aiops.core import times"]

