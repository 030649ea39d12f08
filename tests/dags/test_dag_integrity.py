"""DAG integrity and conventions, for every file in dags/ (Astronomer's template test, stricter)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

DAGS_DIR = Path(__file__).resolve().parents[2] / "dags"
DAG_FILES = sorted(p for p in DAGS_DIR.glob("*.py") if not p.name.startswith("_"))
HEAVY = ("pandas", "numpy", "prophet", "great_expectations", "matplotlib", "pyarrow", "scipy", "moto")
# Parse time is measured by benchmarks/dag_parse.py (a timed unit test only measures the machine's load).

PROBE = r"""
import json, sys, time, importlib.util
import airflow.sdk  # baseline: Airflow's own import is not the DAG file's cost
import aiops.core.settings
before = set(sys.modules)
t0 = time.perf_counter()
spec = importlib.util.spec_from_file_location("dagfile", sys.argv[1])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
elapsed = time.perf_counter() - t0
print(json.dumps({"elapsed": elapsed, "modules": sorted(set(sys.modules) - before)}))
"""


@pytest.fixture(scope="module")
def dagbag(airflow_db):
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(DAGS_DIR))


def test_dags_folder_is_not_empty():
    assert DAG_FILES, "no DAG files found"


def test_every_dag_file_imports_without_errors(dagbag):
    assert dagbag.import_errors == {}, "\n".join(f"{k}: {v}" for k, v in dagbag.import_errors.items())


@pytest.mark.parametrize("path", DAG_FILES, ids=[p.stem for p in DAG_FILES])
def test_dag_file_parses_without_heavy_imports(path):
    out = subprocess.run([sys.executable, "-c", PROBE, str(path)], capture_output=True, text=True, check=True)
    probe = json.loads(out.stdout.strip().splitlines()[-1])
    heavy = sorted({m.split(".")[0] for m in probe["modules"]} & set(HEAVY))
    assert heavy == [], f"{path.name} imports {heavy} at parse time; import them inside tasks"


def _dags(dagbag):
    return sorted(dagbag.dags.values(), key=lambda d: d.dag_id)


def test_every_dag_has_tags_doc_owner_and_retries(dagbag):
    problems = []
    for dag in _dags(dagbag):
        if not dag.tags or "aiops" not in dag.tags:
            problems.append(f"{dag.dag_id}: tags must include 'aiops'")
        if not (dag.doc_md or "").strip():
            problems.append(f"{dag.dag_id}: doc_md is empty")
        for t in dag.tasks:
            if not t.owner or t.owner == "airflow":
                problems.append(f"{dag.dag_id}.{t.task_id}: set an owner")
            if not t.retries or t.retries < 1:
                problems.append(f"{dag.dag_id}.{t.task_id}: retries must be >= 1")
    assert problems == []


def test_dag_ids_match_file_names(dagbag):
    for dag in _dags(dagbag):
        assert Path(dag.fileloc).stem == dag.dag_id, f"{dag.dag_id} lives in {dag.fileloc}"


def test_anomaly_detection_waits_for_derived_collectors_before_scoring(dagbag):
    """plan -> derived_in (a sensor: live logs/traces collectors' window) -> score (mapped) -> publish,
    so derived series are scored in the same cycle as the CloudWatch series."""
    from airflow.sdk.bases.sensor import BaseSensorOperator

    dag = dagbag.dags["anomaly_detection"]
    sensor = dag.get_task("derived_in")
    assert isinstance(sensor, BaseSensorOperator)
    assert sensor.upstream_task_ids == {"plan"}
    assert sensor.downstream_task_ids == {"score"}
