"""``make test-distributed``: the platform scaled out on this machine (issue 15, docs/scale-out.md).

Starts, all in one temp dir ``D`` and on free loopback ports:

* PostgreSQL (Debian's package, :mod:`tests.postgres_server`) with the databases ``airflow`` (the
  metadata DB and the Celery result backend) and ``aiops_state`` (the state store,
  ``AIRFLOW_CONN_AIOPS_STATE``); Redis (``redis-server``, the Celery broker);
* the AWS emulator, seeded, with its live feeder (which also ends a game day's failure once an SSM
  Automation fixes it);
* ``airflow api-server``, ``scheduler``, ``dag-processor``, ``triggerer`` and two ``celery worker`` s,
  each with its own working directory, ``AIRFLOW_HOME`` and ``AIOPS_HOME`` (a task that read a file
  another task wrote to local disk would fail), CeleryExecutor, parallelism 4, concurrency 2 per worker.

Then, through the REST API and at the same time: a ``metrics_extract`` run with
``{"backfill_days": 2}`` and the ``cpu-pinned`` game day (``alert_intake`` -> ``incident_response``
-> ``remediate``, pre-approved; an approval that shows up anyway is answered through the HITL API
as ``alice.sre``). Asserts every
run succeeded, tasks ran on both workers, the incident is resolved in the Postgres state store with a
complete timeline and every accepted alert, and the SSM execution exists. Prints event -> SSM
execution and MTTR. Everything is stopped (process groups, and task supervisors that left them) on the way out; on failure ``D`` is kept
and its path printed.

    python tests/distributed/run.py [--keep] [--seed-days 8]
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from datetime import datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(ROOT), str(ROOT / "src"), str(ROOT / "sandbox" / "src")]

from tests.postgres_server import INSTALL_HINT, PostgresServer, find_bindir  # noqa: E402

GAMEDAY = "cpu-pinned"
DAGS = ("metrics_extract", "alert_intake", "incident_response", "remediate")
USERS = {"admin": "admin", "alice.sre": "op", "bob.finops": "op", "carol.secops": "op", "dana.manager": "viewer"}
T0 = time.monotonic()


def say(msg: str) -> None:
    print(f"[{time.monotonic() - T0:6.1f}s] {msg}", flush=True)


class Failed(AssertionError):
    pass


def check(cond: Any, msg: str) -> None:
    if not cond:
        raise Failed(msg)
    say(f"ok: {msg}")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(what: str, probe, timeout: float, every: float = 2.0, procs: list[Proc] | None = None) -> Any:
    """Poll ``probe()`` until it returns something truthy; fail after ``timeout`` s or if a process died."""
    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(urllib.error.URLError, ConnectionError, TimeoutError, OSError, ValueError):
            value = probe()
            if value:
                return value
        for p in procs or []:
            if p.popen.poll() is not None:
                raise Failed(f"{p.name} exited ({p.popen.returncode}) while waiting for {what}; log {p.log}")
        if time.monotonic() > deadline:
            raise Failed(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(every)


class Proc:
    """A long-lived component in its own process group, with its own cwd and log file."""

    def __init__(self, name: str, args: list[str], env: dict[str, str], cwd: Path, log: Path) -> None:
        self.name, self.log = name, log
        cwd.mkdir(parents=True, exist_ok=True)
        with open(log, "ab") as out:
            self.popen = subprocess.Popen(args, env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT,
                                          start_new_session=True)

    def signal(self, sig: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.popen.pid, sig)

    def alive(self) -> bool:
        self.popen.poll()  # reap our child, or its zombie keeps the group "alive"
        try:
            os.killpg(self.popen.pid, 0)
        except ProcessLookupError:
            return False
        return True


def stop_all(procs: list[Proc], grace: float = 30.0) -> None:
    """SIGTERM every process group, wait up to ``grace`` s, then SIGKILL whatever is left."""
    for p in reversed(procs):
        p.signal(signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and any(p.alive() for p in procs):
        time.sleep(0.5)
    for p in procs:
        if p.alive():
            say(f"{p.name} ignored SIGTERM for {grace:.0f}s: SIGKILL")
            p.signal(signal.SIGKILL)
    for p in procs:
        with contextlib.suppress(subprocess.TimeoutExpired):
            p.popen.wait(timeout=10)


def strays(root: Path) -> list[int]:
    """Processes this run started that left their process group (Airflow's task supervisors start
    their own session): working directory under ``root``, or ``root`` in their environment."""
    found, me, marker = [], os.getpid(), str(root).encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == me:
            continue
        with contextlib.suppress(OSError):
            if os.readlink(entry / "cwd").startswith(str(root)) or marker in (entry / "environ").read_bytes():
                found.append(int(entry.name))
    return found


def kill_strays(root: Path) -> None:
    pids = strays(root)
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, sig)
        deadline = time.monotonic() + 10
        while pids and time.monotonic() < deadline:
            pids = [p for p in pids if Path(f"/proc/{p}").exists() and
                    "Z" not in Path(f"/proc/{p}/stat").read_text(errors="replace").rsplit(")", 1)[-1][:3]]
            time.sleep(0.5)
    if strays(root):
        say(f"warning: processes still running after teardown: {strays(root)}")


class Api:
    """The Airflow REST API (/api/v2) as one SimpleAuthManager user."""

    def __init__(self, base: str, user: str, password: str) -> None:
        self.base, self.user, self.password = base, user, password
        self.token: str | None = None

    def _login(self) -> str:
        req = urllib.request.Request(f"{self.base}/auth/token", method="POST",
                                     data=json.dumps({"username": self.user, "password": self.password}).encode(),
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=30) as resp:
            return str(json.loads(resp.read())["access_token"])

    def call(self, method: str, path: str, body: Any = None, ok: tuple[int, ...] = (200, 201)) -> Any:
        if self.token is None:
            self.token = self._login()
        req = urllib.request.Request(f"{self.base}/api/v2{path}", method=method,
                                     data=None if body is None else json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json",
                                              "Authorization": f"Bearer {self.token}"})
        try:
            with urllib.request.urlopen(req, timeout=60) as resp:
                return json.loads(resp.read() or b"null")
        except urllib.error.HTTPError as exc:
            if exc.code in ok:
                return json.loads(exc.read() or b"null")
            if exc.code == 401:
                self.token = None
            detail = exc.read().decode(errors="replace")[:500]
            raise urllib.error.URLError(f"{method} {path}: HTTP {exc.code} {detail}") from exc


class Harness:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.dir = Path(tempfile.mkdtemp(prefix="aiops-distributed-"))
        self.procs: list[Proc] = []
        self.pg: PostgresServer | None = None
        self.figures: dict[str, Any] = {}

    # -- infrastructure ---------------------------------------------------------------------------
    def start_infra(self) -> None:
        bindir = find_bindir()
        if bindir is None:
            raise Failed(f"PostgreSQL server binaries not found: {INSTALL_HINT}")
        redis = shutil.which("redis-server")
        if redis is None:
            raise Failed("redis-server not found: apt-get install -y redis-server (.ci/run installs it)")
        self.pg = PostgresServer(bindir).start()
        import psycopg2

        conn = psycopg2.connect(host="127.0.0.1", port=self.pg.port, user=self.pg.user, dbname="postgres")
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute("CREATE DATABASE airflow")
            cur.execute("CREATE DATABASE aiops_state")
        conn.close()
        say(f"postgres on 127.0.0.1:{self.pg.port} (databases airflow, aiops_state)")
        self.redis_port = free_port()
        (self.dir / "redis").mkdir()
        self.procs.append(Proc("redis", [redis, "--port", str(self.redis_port), "--bind", "127.0.0.1",
                                         "--save", "", "--appendonly", "no", "--dir", str(self.dir / "redis"),
                                         "--daemonize", "no"], dict(os.environ), self.dir / "redis",
                               self.dir / "redis.log"))
        wait_for("redis", lambda: socket.create_connection(("127.0.0.1", self.redis_port), 1).close() or True,
                 30, 0.3, self.procs)
        say(f"redis on 127.0.0.1:{self.redis_port}")

    def start_emulator(self) -> None:
        self.emu_port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.emu_port}"
        self.manifest = self.dir / "emulator" / "manifest.json"
        env = self.base_env()
        env["AIOPS_HOME"] = str(self.dir / "emulator" / "aiops")
        self.procs.append(Proc("emulator", [sys.executable, "-m", "aiops.cli", "sandbox", "up", "--host", "127.0.0.1",
                                            "--port", str(self.emu_port), "--seed", str(self.args.seed),
                                            "--days", str(self.args.seed_days), "--manifest", str(self.manifest)],
                               env, self.dir / "emulator", self.dir / "emulator.log"))
        self.emu_started = time.monotonic()

    def wait_emulator(self) -> None:
        wait_for("the emulator to be seeded", self.manifest.exists, 300, 1.0, self.procs)
        say(f"emulator on {self.endpoint}, seeded ({self.args.seed_days} days) "
            f"{time.monotonic() - self.emu_started:.0f}s after its start")

    # -- environment ------------------------------------------------------------------------------
    def base_env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "AIOPS_"))}
        env.update({
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
            # cluster policies (config/), the worktree's code, and the workers' hostname callable
            "PYTHONPATH": os.pathsep.join([str(ROOT / "config"), str(ROOT / "src"), str(ROOT / "sandbox" / "src"),
                                           str(HERE)]),
            "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1",
            "NO_PROXY": "127.0.0.1,localhost", "GX_ANALYTICS_ENABLED": "False",
        })
        return env

    def airflow_env(self) -> dict[str, str]:
        assert self.pg is not None
        pg = f"aiops@127.0.0.1:{self.pg.port}"
        conn = json.dumps({"conn_type": "aws", "login": "testing", "password": "testing",
                           "extra": {"region_name": "us-east-1", "endpoint_url": self.endpoint}})
        env = self.base_env()
        env.update({
            "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"postgresql+psycopg2://{pg}/airflow",
            "AIRFLOW__CELERY__BROKER_URL": f"redis://127.0.0.1:{self.redis_port}/0",
            "AIRFLOW__CELERY__RESULT_BACKEND": f"db+postgresql+psycopg2://{pg}/airflow",
            "AIRFLOW__CELERY__WORKER_CONCURRENCY": "2",
            "AIRFLOW__CELERY__OPERATION_TIMEOUT": "30",  # a loaded machine: sending to the broker may be slow
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{self.api_port}/execution/",
            "AIRFLOW__API__HOST": "127.0.0.1", "AIRFLOW__API__PORT": str(self.api_port),
            "AIRFLOW__API__WORKERS": "1",
            "AIRFLOW__API_AUTH__JWT_SECRET": self.jwt_secret,
            "AIRFLOW__CORE__FERNET_KEY": self.fernet_key,
            "AIRFLOW__CORE__PARALLELISM": "4", "AIRFLOW__CORE__MAX_ACTIVE_TASKS_PER_DAG": "4",
            "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",  # only the DAGs under test are unpaused
            "AIRFLOW__CORE__AUTH_MANAGER":
                "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": ",".join(f"{u}:{r}" for u, r in USERS.items()),
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(self.dir / "passwords.json"),
            "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
            "AIRFLOW_CONN_AWS_DEFAULT": conn, "AIRFLOW_CONN_AWS_EXECUTOR": conn,
            "AIRFLOW_CONN_AIOPS_STATE": f"postgresql://{pg}/aiops_state",
            # the first scheduled metrics_extract run pulls this much history (the test's backfill is 2 days)
            "AIOPS_METRICS_HISTORY_DAYS": "1",
            "AIOPS_SANDBOX_HOST": "127.0.0.1", "AIOPS_SANDBOX_PORT": str(self.emu_port),  # the alert queue's URL
        })
        return env

    def component_env(self, name: str, **extra: str) -> dict[str, str]:
        env = self.airflow_env()
        env.update({"AIRFLOW_HOME": str(self.dir / name / "airflow"), "AIOPS_HOME": str(self.dir / name / "aiops")})
        env.update(extra)
        return env

    def run_once(self, name: str, args: list[str], timeout: float = 600) -> None:
        log = self.dir / f"{name}.log"
        cwd = self.dir / "setup"
        cwd.mkdir(exist_ok=True)
        with open(log, "ab") as out:
            done = subprocess.run(args, env=self.component_env("setup"), cwd=cwd, stdout=out,
                                  stderr=subprocess.STDOUT, timeout=timeout, check=False)
        if done.returncode != 0:
            tail = "".join(log.read_text(errors="replace").splitlines(keepends=True)[-30:])
            raise Failed(f"{' '.join(args[:4])} failed ({done.returncode}); {log}:\n{tail}")

    # -- airflow ----------------------------------------------------------------------------------
    def start_airflow(self) -> None:
        self.api_port = free_port()
        self.jwt_secret = secrets.token_urlsafe(32)
        self.fernet_key = base64.urlsafe_b64encode(os.urandom(32)).decode()
        self.passwords = {u: secrets.token_urlsafe(12) for u in USERS}
        pw_file = self.dir / "passwords.json"
        pw_file.write_text(json.dumps(self.passwords))
        pw_file.chmod(0o600)
        t = time.monotonic()
        af = [sys.executable, "-m", "airflow"]
        self.run_once("db-migrate", [*af, "db", "migrate"])
        self.run_once("state-migrate", [sys.executable, "-m", "aiops.cli", "state", "migrate"])
        self.run_once("pools", [sys.executable, "-c", "from aiops.airflow.pools import ensure_pools; "
                                                      "print(ensure_pools())"])
        say(f"airflow db + state store migrated, pools created ({time.monotonic() - t:.0f}s)")
        self.wait_emulator()  # the alert queue the triggerer watches exists once the account is seeded
        t = time.monotonic()
        components = {
            "api-server": [*af, "api-server", "--host", "127.0.0.1", "--port", str(self.api_port)],
            "scheduler": [*af, "scheduler"],
            "dag-processor": [*af, "dag-processor"],
            "triggerer": [*af, "triggerer"],
        }
        for name, args in components.items():
            extra = {"AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port())} if name == "triggerer" else {}
            self.procs.append(Proc(name, args, self.component_env(name, **extra), self.dir / name,
                                   self.dir / f"{name}.log"))
        self.workers = {}
        for w in ("w1", "w2"):
            hostname = f"aiops-{w}"
            self.workers[w] = hostname
            env = self.component_env(w, AIOPS_DISTRIBUTED_HOSTNAME=hostname,
                                     AIRFLOW__CORE__HOSTNAME_CALLABLE="hostname.worker_hostname",
                                     AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT=str(free_port()))
            self.procs.append(Proc(w, [*af, "celery", "worker", "--celery-hostname", f"{w}@%h", "--concurrency", "2"],
                                   env, self.dir / w, self.dir / f"{w}.log"))
        self.api = Api(f"http://127.0.0.1:{self.api_port}", "admin", self.passwords["admin"])
        self.approver = Api(self.api.base, "alice.sre", self.passwords["alice.sre"])

        def healthy() -> bool:
            with urllib.request.urlopen(f"{self.api.base}/api/v2/monitor/health", timeout=10) as resp:
                health = json.loads(resp.read())
            return all((health.get(c) or {}).get("status") == "healthy"
                       for c in ("metadatabase", "scheduler", "triggerer", "dag_processor"))

        wait_for("api-server, scheduler, triggerer and dag-processor to be healthy", healthy, 300, 2, self.procs)
        for w in self.workers:
            log = self.dir / f"{w}.log"
            wait_for(f"celery worker {w} to be ready",
                     lambda log=log: re.search(r"@\S+ ready\.", log.read_text(errors="replace")), 300, 2, self.procs)
        self.only_dags_under_test()
        self.figures["startup_seconds"] = round(time.monotonic() - t, 1)
        say(f"airflow up on 127.0.0.1:{self.api_port}: api-server, scheduler, dag-processor, triggerer, "
            f"workers {', '.join(self.workers)} ({time.monotonic() - t:.0f}s); DAGs {', '.join(DAGS)} unpaused")

    def only_dags_under_test(self) -> None:
        """Pause every other DAG (anomaly_* are created unpaused: Prophet fits would load the machine and
        stop their runs), unpause the DAGs under test."""
        files = len(list((ROOT / "dags").glob("*.py")))

        def parsed() -> list[dict[str, Any]] | None:
            dags = self.api.call("GET", "/dags?limit=100")["dags"]
            return dags if len(dags) >= files and all(d in {x["dag_id"] for x in dags} for d in DAGS) else None

        dags = wait_for(f"the {files} DAG files to be parsed", parsed, 300, 2, self.procs)
        for dag in dags:
            paused = dag["dag_id"] not in DAGS
            if dag["is_paused"] != paused:
                self.api.call("PATCH", f"/dags/{dag['dag_id']}?update_mask=is_paused", {"is_paused": paused})
            if paused:
                for run in self.runs(dag["dag_id"]):
                    if run["state"] in ("queued", "running"):
                        self.api.call("PATCH", f"/dags/{dag['dag_id']}/dagRuns/{run['dag_run_id']}",
                                      {"state": "failed"})
                        say(f"stopped {dag['dag_id']} {run['dag_run_id']} (not under test)")

    def dags_importable(self) -> None:
        """Fail fast (instead of at a timeout) when a DAG under test stops importing, e.g. because
        the venv was reinstalled under the running processes."""
        broken = [d for d in DAGS if self.api.call("GET", f"/dags/{d}").get("has_import_errors")]
        if broken:
            errors = self.api.call("GET", "/importErrors?limit=5").get("import_errors", [])
            raise Failed(f"DAGs {broken} have import errors: "
                         + "; ".join(f"{e['filename']}: {e['stack_trace'].strip().splitlines()[-1]}" for e in errors))

    # -- runs ---------------------------------------------------------------------------------------
    def runs(self, dag_id: str) -> list[dict[str, Any]]:
        return list(self.api.call("GET", f"/dags/{dag_id}/dagRuns?limit=100&order_by=run_after")["dag_runs"])

    def task_instances(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        from urllib.parse import quote

        return list(self.api.call("GET", f"/dags/{dag_id}/dagRuns/{quote(run_id, safe='')}/taskInstances"
                                         "?limit=1000")["task_instances"])

    def wait_run(self, dag_id: str, run_id: str, timeout: float) -> dict[str, Any]:
        from urllib.parse import quote

        def done() -> dict[str, Any] | None:
            run = self.api.call("GET", f"/dags/{dag_id}/dagRuns/{quote(run_id, safe='')}")
            if run["state"] in ("success", "failed"):
                return run
            self.dags_importable()
            return None

        return dict(wait_for(f"{dag_id} run {run_id}", done, timeout, 3, self.procs))

    def trigger_backfill(self) -> None:
        self.backfill_started = time.monotonic()
        run = self.api.call("POST", "/dags/metrics_extract/dagRuns",
                            {"logical_date": None, "conf": {"backfill_days": 2}})
        self.backfill_run = run["dag_run_id"]
        say(f"triggered metrics_extract {self.backfill_run} with conf {{'backfill_days': 2}}")

    def check_backfill(self) -> None:
        t, run_id = self.backfill_started, self.backfill_run
        run = self.wait_run("metrics_extract", run_id, 900)
        tis = self.task_instances("metrics_extract", run_id)
        self.figures["metrics_extract_seconds"] = round(time.monotonic() - t, 1)
        states = {f"{ti['task_id']}[{ti['map_index']}]": ti["state"] for ti in tis}
        check(run["state"] == "success", f"metrics_extract backfill run succeeded ({len(tis)} task instances, "
                                         f"{time.monotonic() - t:.0f}s){'' if run['state'] == 'success' else states}")
        hosts = {ti["hostname"] for ti in tis}
        self.figures["metrics_extract_hostnames"] = sorted(hosts)
        extracts = [ti for ti in tis if ti["task_id"] == "extract"]
        check(len(extracts) >= 2, f"the backfill was split into {len(extracts)} mapped extract tasks")
        self.metrics_hosts = hosts
        xcom = self.api.call("GET", f"/dags/metrics_extract/dagRuns/{run_id}/taskInstances/publish/xcomEntries/"
                                    "return_value?deserialize=true")
        summary = xcom["value"]
        if isinstance(summary, str):
            summary = json.loads(summary)
        partitions = summary.get("partitions") or []
        check(partitions, f"publish reported {len(partitions)} partitions")
        self.check_partitions(partitions)

    def check_partitions(self, partitions: list[str]) -> None:
        """The partitions publish reported are objects in the artifact store (S3), not local files."""
        from aiops_sandbox.seed import boto_factory

        s3 = boto_factory(self.endpoint)("s3")
        missing = []
        for uri in partitions:
            if not str(uri).startswith("s3://"):
                missing.append(uri)
                continue
            bucket, key = str(uri)[5:].split("/", 1)
            try:
                s3.head_object(Bucket=bucket, Key=key)
            except Exception:
                missing.append(uri)
        check(not missing, f"all {len(partitions)} partitions are objects in the artifact store "
                           f"(e.g. {partitions[0]}){'' if not missing else f'; missing {missing}'}")

    def answer_approvals(self) -> None:
        """Approve any pending HITL request of remediate as alice.sre (cpu-pinned is pre-approved)."""
        from urllib.parse import quote

        pending = self.api.call("GET", "/dags/~/dagRuns/~/hitlDetails?response_received=false&limit=100")
        for detail in pending.get("hitl_details", []):
            ti = detail.get("task_instance") or {}
            if ti.get("state") != "awaiting_input" or ti.get("dag_id") != "remediate":
                continue  # not parked yet (the answer race of docs/scale-out.md)
            path = (f"/dags/{ti['dag_id']}/dagRuns/{quote(ti['dag_run_id'], safe='')}/taskInstances/"
                    f"{ti['task_id']}/{ti.get('map_index', -1)}/hitlDetails")
            self.approver.call("PATCH", path, {"chosen_options": ["Approve"], "params_input": {}})
            self.figures.setdefault("approvals", []).append(f"{ti['dag_run_id']}/{ti['task_id']}")
            say(f"approved {ti['dag_run_id']} {ti['task_id']} as alice.sre")

    def incident(self, since: datetime) -> dict[str, Any] | None:
        import sqlalchemy as sa

        assert self.pg is not None
        engine = sa.create_engine(self.pg.url("aiops_state"))
        try:
            with engine.connect() as conn:
                row = conn.execute(sa.text("SELECT * FROM aiops_incidents WHERE created_at >= :since "
                                           "ORDER BY created_at DESC LIMIT 1"), {"since": since}).mappings().first()
                if row is None:
                    return None
                out = dict(row)
                out["timeline"] = [dict(r) for r in conn.execute(sa.text(
                    "SELECT * FROM aiops_incident_timeline WHERE incident_id = :i ORDER BY at, id"),
                    {"i": out["incident_id"]}).mappings()]
                out["accepted"] = [r[0] for r in conn.execute(sa.text(
                    "SELECT event_id FROM aiops_alerts WHERE decision = 'accepted' AND received_at >= :since"),
                    {"since": since})]
                return out
        finally:
            engine.dispose()

    def game_day(self) -> None:
        from aiops_sandbox import gameday
        from aiops_sandbox.seed import boto_factory

        clients = boto_factory(self.endpoint)
        before = {d: {r["dag_run_id"] for r in self.runs(d)} for d in DAGS if d != "metrics_extract"}
        injection = gameday.inject(GAMEDAY, clients)
        started = datetime.fromisoformat(injection.started_at)
        t = time.monotonic()
        say(f"game day {GAMEDAY} injected at {injection.started_at}: {injection.description}")

        def resolved() -> dict[str, Any] | None:
            with contextlib.suppress(urllib.error.URLError):
                self.answer_approvals()
                self.dags_importable()
            inc = self.incident(started)
            if inc and inc["state"] in ("escalated", "closed"):
                raise Failed(f"incident {inc['incident_id']} ended {inc['state']}, not resolved: "
                             f"{[(e['kind'], e['to_state'], e['reason']) for e in inc['timeline']]}")
            return inc if inc and inc["state"] == "resolved" else None

        inc = wait_for("the incident to be resolved in the Postgres state store", resolved, 900, 3, self.procs)
        say(f"incident {inc['incident_id']} resolved {time.monotonic() - t:.0f}s after the injection")
        execution = gameday.fixed_by(clients, injection)
        check(execution, f"SSM Automation execution {execution} fixed {injection.target}")
        meta = clients("ssm").get_automation_execution(AutomationExecutionId=execution)["AutomationExecution"]
        exec_start = meta["ExecutionStartTime"]
        self.figures.update({
            "incident": inc["incident_id"],
            "event_to_incident_s": round((inc["detected_at"] - started).total_seconds(), 1),
            "event_to_remediating_s": round((inc["remediation_started_at"] - started).total_seconds(), 1)
            if inc["remediation_started_at"] else None,
            "event_to_ssm_execution_s": round((exec_start - started).total_seconds(), 1),
            "mttr_s": round(inc["mttr_seconds"], 1) if inc["mttr_seconds"] is not None else None,
            "ssm_execution": execution,
        })
        moves = [e["to_state"] for e in inc["timeline"] if e["kind"] == "transition"]
        check(all(s in moves for s in ("remediating", "resolved")) and any(e["kind"] == "opened"
                                                                           for e in inc["timeline"]),
              f"incident timeline complete: opened -> {' -> '.join(moves)}")
        alerts = {a.get("event_id") for a in inc["alerts"]}
        lost = [e for e in inc["accepted"] if e not in alerts]
        check(not lost, f"the incident holds every alert the intake accepted ({len(inc['accepted'])}; lost {lost})")
        # the runs the game day started: all finished, all succeeded (the post-mortem runs after resolve)
        for dag_id in before:
            def finished(d: str = dag_id) -> list[dict[str, Any]] | None:
                new = [r for r in self.runs(d) if r["dag_run_id"] not in before[d]]
                return new if new and all(r["state"] in ("success", "failed") for r in new) else None

            new = wait_for(f"the game day's {dag_id} runs to finish", finished, 600, 3, self.procs)
            bad = [(r["dag_run_id"], r["state"]) for r in new if r["state"] != "success"]
            check(not bad, f"{len(new)} {dag_id} run(s) succeeded{bad if bad else ''}")
            for r in new:
                self.gameday_hosts.update(ti["hostname"] for ti in self.task_instances(dag_id, r["dag_run_id"])
                                          if ti.get("hostname"))

    def check_logs(self) -> None:
        bad = []
        for w in self.workers:
            for path in (self.dir / w / "airflow" / "logs").rglob("*.log"):
                text = path.read_text(errors="replace")
                if "FileNotFoundError" in text or "No such file or directory" in text:
                    bad.append(str(path))
        check(not bad, f"no task log mentions a missing local file{'' if not bad else bad[:5]}")

    # -- main ---------------------------------------------------------------------------------------
    def run(self) -> None:
        self.gameday_hosts: set[str] = set()
        self.start_infra()
        self.start_emulator()  # seeds while the databases are migrated
        self.start_airflow()
        # the backfill and the game day run at the same time: 4 worker slots, an incident during a backfill
        self.trigger_backfill()
        self.game_day()
        self.check_backfill()
        hosts = self.metrics_hosts | self.gameday_hosts
        expected = set(self.workers.values())
        self.figures["gameday_hostnames"] = sorted(self.gameday_hosts)
        check(hosts <= expected, f"every task ran on a Celery worker ({sorted(hosts)})")
        check(expected <= hosts, f"tasks ran on both workers: {sorted(expected)} "
                                 f"(metrics_extract: {sorted(self.metrics_hosts)}, game day: {sorted(self.gameday_hosts)})")
        self.check_logs()

    def teardown(self, failed: bool) -> None:
        stop_all(self.procs, grace=20)
        kill_strays(self.dir)
        if self.pg is not None:
            with contextlib.suppress(OSError):
                shutil.copy(self.pg.root / "server.log", self.dir / "postgres.log")
            with contextlib.suppress(Exception):
                self.pg.stop()
        if failed or self.args.keep:
            say(f"logs kept in {self.dir} (api-server.log, scheduler.log, w1.log, w2.log, "
                f"w1/airflow/logs/..., emulator.log, postgres.log)")
        else:
            shutil.rmtree(self.dir, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (logs) on success too")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--seed-days", type=int, default=8, help="days of metric history (>= 8: the incident "
                        "band uses 7)")
    args = parser.parse_args(argv)
    harness = Harness(args)
    say(f"distributed test in {harness.dir}")
    failed = True
    previous = signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    try:
        harness.run()
        failed = False
    except Failed as exc:
        say(f"FAILED: {exc}")
    except KeyboardInterrupt:
        say("interrupted")
    finally:
        signal.signal(signal.SIGTERM, previous)
        harness.figures["wall_seconds"] = round(time.monotonic() - T0, 1)
        harness.teardown(failed)
    print("distributed figures: " + json.dumps(harness.figures, default=str), flush=True)
    if not failed:
        say(f"PASSED in {time.monotonic() - T0:.0f}s")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
