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
        # One identity for the suite's emulators (tests of the reader/executor split set their own);
        # every emulator started by the suite records the platform's API calls here (issue 16).
        "AIOPS_AWS_EXECUTOR_CONN_ID": "aws_default",
        "AIOPS_SANDBOX_CALL_LOG": str(_HOME / "api-calls.log"),
        # no background console warm-up thread in test processes (tests call warm_once directly)
        "AIOPS_CONSOLE_WARM_SECONDS": "0",
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
    from aiops.core import aws
    from aiops_sandbox.emulator import SandboxServer

    server = SandboxServer(host="127.0.0.1", port=0).start()
    os.environ["AIRFLOW_CONN_AWS_DEFAULT"] = aws_conn_json(server.endpoint)
    os.environ["AIRFLOW_CONN_AWS_EXECUTOR"] = aws_conn_json(server.endpoint)  # the sandbox sets both
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


def arm_ops_workflows(*workflows: str, at: str = SEED_ANCHOR) -> None:
    """Mark ops workflows armed on the connected account, as the end of their first (plan-only) run
    does: for tests of what an armed workflow does. The first run itself is tested in
    tests/emulator/test_ops_first_start.py."""
    from aiops.core.identity import current_account
    from aiops.core.state import StateStore
    from aiops.core.times import utc
    from aiops.ops.pipeline import ARMED

    store, account = StateStore(), current_account()
    for workflow in workflows:
        store.set_watermark(ARMED.format(workflow=workflow), utc(at), run_id="test-armed", account_id=account)


@pytest.fixture(scope="session")
def seeded(sandbox):
    """The simulated account (seed 7) seeded once per session, history ending at SEED_ANCHOR."""
    from datetime import datetime

    from aiops_sandbox.seed import seed_account

    anchor = datetime.fromisoformat(SEED_ANCHOR.replace("Z", "+00:00"))
    manifest = Path(os.environ["AIOPS_HOME"]) / "sandbox" / "ground_truth.json"
    return seed_account(sandbox.endpoint, seed=7, anchor=anchor, metric_days=15, cost_days=75,
                        manifest_path=manifest)


@pytest.fixture
def isolated_stores(monkeypatch, tmp_path):
    """A fresh artifact bucket and SQLite state store for one test (settings re-read)."""
    import uuid

    from aiops.core.settings import get_settings

    monkeypatch.setenv("AIOPS_ARTIFACT_BUCKET", f"aiops-test-{uuid.uuid4().hex[:12]}")
    monkeypatch.setenv("AIOPS_HOME", str(tmp_path / "aiops"))
    get_settings.cache_clear()
    yield get_settings()
    get_settings.cache_clear()


class EmulatorProcess:
    """An emulator in its own process (moto's state is per process), optionally seeded with the
    simulated account; used where a test needs an empty account or one it may change."""

    def __init__(self, *, seed: bool = False, anchor: str = SEED_ANCHOR, days: int = 1,
                 manifest: Path | None = None) -> None:
        import socket

        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.manifest_path = manifest
        args = [sys.executable, "-m", "aiops.cli", "sandbox", "up", "--port", str(self.port), "--no-live"]
        if seed:
            assert manifest is not None, "a seeded emulator writes its ground truth to `manifest`"
            args += ["--anchor", anchor, "--days", str(days), "--manifest", str(manifest)]
        else:
            args.append("--no-seed")
        self.process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self._wait(seeded=seed)

    def _wait(self, *, seeded: bool, timeout: float = 120.0) -> None:
        import time

        from aiops_sandbox.emulator import is_sandbox

        deadline = time.monotonic() + timeout
        while not (self.manifest_path.exists() if seeded and self.manifest_path else is_sandbox(self.endpoint, 1)):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.process.kill()
                raise RuntimeError(f"emulator on port {self.port} did not come up")
            time.sleep(0.3)

    @property
    def manifest(self) -> dict:
        import json

        assert self.manifest_path is not None
        return json.loads(self.manifest_path.read_text())

    def client(self, service: str):
        import boto3

        return boto3.client(service, endpoint_url=self.endpoint, region_name="us-east-1",
                            aws_access_key_id="testing", aws_secret_access_key="testing")

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=20)


@pytest.fixture
def fresh_emulator(monkeypatch, sandbox):
    """A second, empty emulator for one test; the default AWS connection points at it meanwhile."""
    from aiops.core import aws

    emulator = EmulatorProcess()
    monkeypatch.setenv("AIRFLOW_CONN_AWS_DEFAULT", aws_conn_json(emulator.endpoint))
    aws.clear_client_cache()
    yield emulator
    emulator.stop()
    monkeypatch.undo()
    aws.clear_client_cache()


@pytest.fixture(scope="session")
def postgres_server():
    """A real PostgreSQL server (Debian's `postgresql` package) in a temp dir, for the whole session;
    skipped, with the reason, only when the server binaries are not installed."""
    from postgres_server import INSTALL_HINT, PostgresServer, find_bindir

    bindir = find_bindir()
    if bindir is None:
        pytest.skip(f"PostgreSQL server binaries (initdb, pg_ctl) not found: {INSTALL_HINT}")
    server = PostgresServer(bindir).start()
    yield server
    server.stop()


@pytest.fixture(params=["sqlite", "postgres"])
def state_url(request, tmp_path):
    """The URL of a fresh, empty state store on each database the product supports."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'state.db'}"
    return request.getfixturevalue("postgres_server").create_database()
#: Calls test code makes through the platform's client to arrange a scenario (not product calls).
TEST_SETUP_ACTIONS = {
    "events:CreateEventBus", "events:DeleteEventBus", "events:PutRule", "events:DeleteRule", "events:PutTargets",
    "events:RemoveTargets", "sqs:CreateQueue", "sqs:DeleteQueue", "ssm:DescribeDocument", "s3:CreateBucket",
    "ses:GetSendQuota", "ssm:DeleteDocument",
    # the retry-policy tests probe each service family through the platform's own client
    "sqs:ListQueues", "ssm:DescribeParameters", "ssm:PutParameter",
    # the pre-approval tests stage alarms and instances through the platform's own client
    "cloudwatch:PutMetricAlarm", "cloudwatch:SetAlarmState", "cloudwatch:DeleteAlarms",
    "ec2:RunInstances", "ec2:TerminateInstances",
}


@pytest.fixture(scope="session", autouse=True)
def declared_api_calls():
    """After the session: every AWS API the platform called on the suite's emulators (recorded by the
    emulator, Amazon-provider user agent only) must be covered by the generated IAM policies, i.e.
    declared in some module's ``PERMISSIONS`` (issue 16). An undeclared call fails the session here."""
    yield
    log = Path(os.environ["AIOPS_SANDBOX_CALL_LOG"])
    if not log.exists():
        return
    from aiops.account.iam import allowed, default_params, render_policies

    called = {line.strip() for line in log.read_text().splitlines() if line.strip()}
    policies = render_policies(default_params(), emulator=True)
    platform = [policies[name] for name in ("aiops-reader", "aiops-notifier", "aiops-executor")]
    deployer = [policies["aiops-deployer"]]  # `aiops account bootstrap`: CloudFormation only
    uncovered = sorted(a for a in called - TEST_SETUP_ACTIONS
                       if not (allowed(a, deployer) if a.startswith("cloudformation:") else allowed(a, platform)))
    if uncovered:
        pytest.fail("AWS APIs called by the platform that no PERMISSIONS declaration covers (add them to the "
                    f"calling module's PERMISSIONS = permissions(...)): {', '.join(uncovered)}", pytrace=False)
