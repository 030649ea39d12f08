"""``make run``: the emulator with the simulated account, plus ``airflow standalone`` with our DAGs.

One supervisor process owns everything: the emulator runs in a thread, Airflow runs in its own
process group (so the terminal's Ctrl-C reaches only us), and on Ctrl-C / SIGTERM we stop Airflow's
whole group, then the emulator, and remove the PID file. A PID file left by a crashed run is
detected and its leftover Airflow processes are stopped before starting again.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

from aiops.core.settings import PROJECT_ROOT, get_settings

AIRFLOW_PORT = 8080
USERS = {  # SimpleAuthManager users: name -> role. Passwords are generated on first start.
    "admin": "admin",
    "alice.sre": "op",
    "bob.finops": "op",
    "carol.secops": "op",
    "dana.manager": "viewer",
}


def _say(msg: str) -> None:
    # The terminal (or a `| tee`) may already be gone on Ctrl-C: never let output break cleanup.
    with contextlib.suppress(OSError, ValueError):
        print(msg, flush=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _stop_group(pgid: int, grace: float = 30.0, proc: subprocess.Popen | None = None) -> None:
    """SIGTERM a process group, wait up to ``grace`` seconds, then SIGKILL what is left."""
    try:
        os.killpg(pgid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        if proc is not None:
            proc.poll()  # reap our own child, or its zombie keeps the group "alive"
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.5)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGKILL)


def clear_stale_pidfile(pidfile: Path) -> None:
    """Refuse to start twice; clean up after a run that died without cleaning up."""
    if not pidfile.exists():
        return
    try:
        info = json.loads(pidfile.read_text())
    except (OSError, ValueError):
        pidfile.unlink(missing_ok=True)
        return
    if _alive(int(info.get("pid", 0))) and int(info.get("pid", 0)) != os.getpid():
        raise SystemExit(f"MatCarv AIOps is already running (pid {info['pid']}). Stop it with Ctrl-C in its "
                         f"terminal or `kill {info['pid']}`.")
    pgid = int(info.get("airflow_pgid", 0))
    if pgid and _alive(pgid):
        _say(f"Stopping Airflow processes left by a previous run (process group {pgid})...")
        _stop_group(pgid, grace=15)
    pidfile.unlink(missing_ok=True)


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def airflow_env(airflow_home: Path) -> dict[str, str]:
    env = os.environ.copy()
    env.update({
        "AIRFLOW_HOME": str(airflow_home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(PROJECT_ROOT / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(PROJECT_ROOT / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__PARALLELISM": env.get("AIRFLOW__CORE__PARALLELISM", "4"),
        "AIRFLOW__CORE__MAX_ACTIVE_TASKS_PER_DAG": "4",
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": ",".join(f"{u}:{r}" for u, r in USERS.items()),
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "30",
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__PORT": str(AIRFLOW_PORT),
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
        "GX_ANALYTICS_ENABLED": "False",
        "NO_PROXY": "127.0.0.1,localhost",
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
    })
    # cluster policies (remediation pools per origin): config/airflow_local_settings.py
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(PROJECT_ROOT / "config"), env.get("PYTHONPATH", "")) if p)
    return env


def create_remediation_pools(env: dict[str, str]) -> None:
    """The per-origin remediation pools (docs/change-path.md); a failure is reported, not fatal."""
    code = "from aiops.airflow.pools import ensure_pools; print(ensure_pools())"
    done = subprocess.run([sys.executable, "-c", code], env=env, cwd=PROJECT_ROOT, capture_output=True, text=True)
    if done.returncode != 0:
        _say(f"warning: remediation pools not created: {done.stderr.strip().splitlines()[-1:]}")


def wait_healthy(proc: subprocess.Popen, timeout: float = 240.0) -> bool:
    url = f"http://127.0.0.1:{AIRFLOW_PORT}/api/v2/monitor/health"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                health = json.loads(resp.read())
            if health.get("scheduler", {}).get("status") == "healthy":
                return True
        except Exception:
            pass
        time.sleep(1.5)
    return False


def read_passwords(airflow_home: Path) -> dict[str, str]:
    path = airflow_home / "simple_auth_manager_passwords.json.generated"
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def run(*, sandbox: bool = True, seed: int | None = None, port: int | None = None) -> int:
    settings = get_settings()
    seed = settings.sandbox_seed if seed is None else seed
    port = settings.sandbox_port if port is None else port
    airflow_home = PROJECT_ROOT / ".airflow"
    airflow_home.mkdir(exist_ok=True)
    pidfile = airflow_home / "aiops-run.pid"
    clear_stale_pidfile(pidfile)
    busy = [p for p in ([AIRFLOW_PORT] + ([port] if sandbox else [])) if port_in_use(p)]
    if busy:
        _say(f"error: port(s) {busy} already in use on 127.0.0.1. Stop what listens there "
             f"(`ss -ltnp | grep -E ':({'|'.join(map(str, busy))})'`) or set AIOPS_SANDBOX_PORT.")
        return 2

    stop = {"requested": False}

    def on_signal(signum: int, frame: Any) -> None:
        stop["requested"] = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)

    env = airflow_env(airflow_home)
    server = feeder = None
    proc: subprocess.Popen | None = None
    log_path = airflow_home / "standalone.log"
    try:
        if sandbox:
            from aiops_sandbox.emulator import SandboxServer
            from aiops_sandbox.live import LiveFeeder
            from aiops_sandbox.seed import boto_factory, seed_account

            server = SandboxServer("127.0.0.1", port).start()
            _say(f"AWS emulator on {server.endpoint}; seeding the simulated account (seed {seed})...")
            result = seed_account(server.endpoint, seed=seed, metric_days=settings.sandbox_metric_days,
                                  cost_days=settings.sandbox_cost_days, manifest_path=settings.manifest_path,
                                  progress=_say)
            _say(f"Seeded in {result.seconds:.1f}s. Ground truth: {settings.manifest_path}")
            start = time.time() // 300 * 300
            from aiops_sandbox.traces import services as trace_services

            feeder = LiveFeeder(boto_factory(server.endpoint)("cloudwatch"), result.series, start,
                                trace_services=trace_services(result.manifest))
            feeder.start()
            conn = json.dumps({
                "conn_type": "aws", "login": "testing", "password": "testing",
                "extra": {"region_name": settings.regions[0], "endpoint_url": server.endpoint}})
            # the two connections (docs/connect-account.md): reader and executor, both the emulator here
            env["AIRFLOW_CONN_AWS_DEFAULT"] = conn
            env["AIRFLOW_CONN_AWS_EXECUTOR"] = conn
            env.setdefault("AWS_ACCESS_KEY_ID", "testing")
            env.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
        else:
            _say("Using the AWS connections 'aws_default' (reader) and 'aws_executor' as configured (no emulator).")
        if stop["requested"]:
            return 130
        _say(f"Starting Airflow standalone (log: {log_path})...")
        from aiops.core.redact import private_file

        # the generated passwords (and the log, where standalone prints the admin's) are owner-only
        private_file(airflow_home / "simple_auth_manager_passwords.json.generated")
        private_file(log_path)
        with open(log_path, "ab") as log_file:
            proc = subprocess.Popen([sys.executable, "-m", "airflow", "standalone"], env=env, cwd=PROJECT_ROOT,
                                    stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True)
        pidfile.write_text(json.dumps({"pid": os.getpid(), "airflow_pgid": proc.pid, "started": time.time()}))
        t0 = time.monotonic()
        while not stop["requested"] and proc.poll() is None:
            if wait_healthy(proc, timeout=3):
                break
        if proc.poll() is not None:
            _say(f"error: Airflow exited with code {proc.returncode}; last lines of {log_path}:")
            _say("".join(log_path.read_text(errors="replace").splitlines(keepends=True)[-30:]))
            return 1
        if stop["requested"]:
            return 130
        create_remediation_pools(env)
        passwords = read_passwords(airflow_home)
        _say("")
        _say(f"MatCarv AIOps is up ({time.monotonic() - t0:.0f}s).")
        _say(f"  Airflow UI:   http://127.0.0.1:{AIRFLOW_PORT}")
        for user, role in USERS.items():
            _say(f"  login:        {user:<13} / {passwords.get(user, '(see ' + str(airflow_home) + ')'):<18} "
                 f"role {role}")
        if sandbox:
            _say(f"  AWS emulator: {server.endpoint if server else ''}  (ground truth: aiops sandbox describe)")
        _say("  Ctrl-C stops everything.")
        while not stop["requested"] and proc.poll() is None:
            time.sleep(0.5)
        if proc.poll() is not None and not stop["requested"]:
            _say(f"Airflow exited with code {proc.returncode}; see {log_path}")
            return 1
        return 0
    finally:
        _say("Stopping...")
        if proc is not None:
            _stop_group(proc.pid, grace=30 if proc.poll() is None else 5, proc=proc)
        if feeder:
            feeder.stop()
        if server:
            server.stop()
        pidfile.unlink(missing_ok=True)
        _say("Stopped.")
