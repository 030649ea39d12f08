"""Test environment: a private Airflow home and fake AWS credentials, set before anything imports
Airflow or boto3; a session-scoped sandbox emulator; a migrated Airflow DB for ``dag.test()``."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
_HOME = Path(tempfile.mkdtemp(prefix="aiops-test-"))

os.environ.update(
    {
        "AIRFLOW_HOME": str(_HOME / "airflow"),
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{_HOME}/airflow/airflow.db",
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SECURITY_TOKEN": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AIOPS_HOME": str(_HOME / "aiops"),
        "GX_ANALYTICS_ENABLED": "False",
        "NO_PROXY": "127.0.0.1,localhost",
    }
)
(_HOME / "airflow").mkdir(parents=True, exist_ok=True)
(_HOME / "aiops").mkdir(parents=True, exist_ok=True)


def aws_conn_json(endpoint: str, region: str = "us-east-1") -> str:
    import json

    return json.dumps(
        {
            "conn_type": "aws",
            "login": "testing",
            "password": "testing",
            "extra": {"region_name": region, "endpoint_url": endpoint},
        }
    )


@pytest.fixture(scope="session")
def sandbox():
    """A fresh emulator (moto + sandbox extensions) on a free loopback port; the default AWS
    connection points at it for the whole session."""
    from aiops import aws
    from aiops.sandbox.emulator import SandboxServer

    server = SandboxServer(host="127.0.0.1", port=0).start()
    os.environ["AIRFLOW_CONN_AWS_DEFAULT"] = aws_conn_json(server.endpoint)
    aws.clear_client_cache()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def airflow_db():
    """A migrated SQLite Airflow metadata DB in the private Airflow home (about 5 s)."""
    subprocess.run(
        [sys.executable, "-m", "airflow", "db", "migrate"],
        check=True,
        capture_output=True,
        env=os.environ.copy(),
    )
    return os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]


SEED_ANCHOR = "2026-11-20T12:00:00Z"


@pytest.fixture(scope="session")
def seeded(sandbox):
    """The simulated account (seed 7) seeded once per session, history ending at SEED_ANCHOR."""
    from datetime import datetime

    from aiops.sandbox.seed import seed_account

    anchor = datetime.fromisoformat(SEED_ANCHOR.replace("Z", "+00:00"))
    manifest = Path(os.environ["AIOPS_HOME"]) / "sandbox" / "ground_truth.json"
    return seed_account(sandbox.endpoint, seed=7, anchor=anchor, metric_days=15, cost_days=75,
                        manifest_path=manifest)


@pytest.fixture
def isolated_stores(monkeypatch, tmp_path):
    """A fresh artifact bucket and SQLite state store for one test (settings re-read)."""
    import uuid

    from aiops.settings import get_settings

    monkeypatch.setenv("AIOPS_ARTIFACT_BUCKET", f"aiops-test-{uuid.uuid4().hex[:12]}")
    monkeypatch.setenv("AIOPS_HOME", str(tmp_path / "aiops"))
    get_settings.cache_clear()
    yield get_settings()
    get_settings.cache_clear()


@pytest.fixture
def fresh_emulator(monkeypatch, sandbox):
    """A second, empty emulator in its own process (moto's state is per process) for one test; the
    default AWS connection points at it meanwhile."""
    import socket
    import time
    from types import SimpleNamespace

    from aiops import aws
    from aiops.sandbox.emulator import is_sandbox

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "aiops.cli", "sandbox", "up", "--no-seed", "--port", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    endpoint = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while not is_sandbox(endpoint, timeout=1):
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError("the second emulator did not start")
        time.sleep(0.3)
    monkeypatch.setenv("AIRFLOW_CONN_AWS_DEFAULT", aws_conn_json(endpoint))
    aws.clear_client_cache()
    yield SimpleNamespace(endpoint=endpoint, process=proc)
    proc.terminate()
    proc.wait(timeout=20)
    monkeypatch.undo()
    aws.clear_client_cache()
