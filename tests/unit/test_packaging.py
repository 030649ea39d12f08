"""Product and sandbox apart: the runtime requirements, the product image and the package metadata
carry no emulator and no test tools; the sandbox package brings them."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DEV_ONLY = ("moto", "pytest", "pytest-xdist", "ruff", "mypy", "import-linter", "flask", "werkzeug")


def _pins(path: Path) -> set[str]:
    names = set()
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith(("#", "-")):
            names.add(re.split(r"[=<>\[ ;]", line, maxsplit=1)[0].lower())
    return names


@pytest.mark.parametrize("package", DEV_ONLY)
def test_runtime_requirements_carry_no_dev_tool(package):
    assert package not in _pins(REPO / "requirements.txt")


def _versions(path: Path) -> dict[str, str]:
    pins = {}
    for line in path.read_text().splitlines():
        if "==" in line and not line.lstrip().startswith("#"):
            name, _, version = line.strip().partition("==")
            pins[re.sub(r"[-_.]+", "-", name).lower()] = version
    return pins


def test_dev_requirements_keep_every_runtime_pin():
    runtime, dev = _versions(REPO / "requirements.txt"), _versions(REPO / "requirements-dev.txt")
    assert {name: dev.get(name) for name in runtime} == runtime
    assert {"moto", "pytest", "ruff", "mypy"} <= dev.keys()


def test_product_dependencies_do_not_name_the_emulator():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    names = {re.split(r"[=<>\[ ;]", d, maxsplit=1)[0].lower() for d in project["dependencies"]}
    assert not names & set(DEV_ONLY)


def test_sandbox_package_brings_the_emulator_and_registers_its_commands():
    project = tomllib.loads((REPO / "sandbox" / "pyproject.toml").read_text())["project"]
    assert any(d.startswith("moto[server]") for d in project["dependencies"])
    assert project["entry-points"]["aiops.cli"]["sandbox"] == "aiops_sandbox.cli:register"


def _stages(dockerfile: Path) -> dict[str, str]:
    stages: dict[str, list[str]] = {}
    current = None
    for line in dockerfile.read_text().replace("\\\n", " ").splitlines():
        match = re.match(r"FROM\s+\S+\s+AS\s+(\S+)", line.strip(), re.I)
        if match:
            current = match.group(1)
            stages[current] = []
        elif current and not line.lstrip().startswith("#"):
            stages[current].append(line)
    return {name: "\n".join(lines) for name, lines in stages.items()}


def test_product_image_installs_only_runtime_requirements():
    product = _stages(REPO / "Dockerfile")["aiops"]
    assert "requirements.txt" in product
    assert "requirements-dev.txt" not in product
    assert "sandbox" not in product


def test_sandbox_image_adds_the_emulator_to_the_product():
    stages = _stages(REPO / "Dockerfile")
    assert re.search(r"FROM aiops AS sandbox", (REPO / "Dockerfile").read_text())
    assert "-e /opt/airflow/sandbox" in stages["sandbox"]


def test_cli_finds_the_sandbox_commands_through_the_entry_point():
    from aiops.cli import build_parser

    parser = build_parser()
    args = parser.parse_args(["sandbox", "describe"])
    assert args.func.__module__ == "aiops_sandbox.cli"
