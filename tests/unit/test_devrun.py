"""make run's supervisor: stale PID files, double starts, busy ports."""

from __future__ import annotations

import json
import os
import socket
import subprocess

import pytest

from aiops_sandbox import devrun


def test_stale_pidfile_from_a_dead_run_is_removed_and_its_airflow_group_stopped(tmp_path):
    leftover = subprocess.Popen(["sleep", "60"], start_new_session=True)  # a "leftover" airflow group
    pidfile = tmp_path / "aiops-run.pid"
    dead = subprocess.Popen(["true"])
    dead.wait()
    pidfile.write_text(json.dumps({"pid": dead.pid, "airflow_pgid": leftover.pid}))
    devrun.clear_stale_pidfile(pidfile)
    assert not pidfile.exists()
    assert leftover.wait(timeout=20) != 0  # terminated by the cleanup


def test_a_running_supervisor_refuses_a_second_start(tmp_path):
    live = subprocess.Popen(["sleep", "30"])
    try:
        pidfile = tmp_path / "aiops-run.pid"
        pidfile.write_text(json.dumps({"pid": live.pid, "airflow_pgid": 0}))
        with pytest.raises(SystemExit, match="already running"):
            devrun.clear_stale_pidfile(pidfile)
        assert pidfile.exists()
    finally:
        live.kill()


def test_garbage_pidfile_is_discarded(tmp_path):
    pidfile = tmp_path / "aiops-run.pid"
    pidfile.write_text("not json")
    devrun.clear_stale_pidfile(pidfile)
    assert not pidfile.exists()


def test_port_in_use_detects_a_listener():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        assert devrun.port_in_use(sock.getsockname()[1])
    assert not devrun.port_in_use(9)  # discard port: nothing listens


def test_airflow_env_is_small_and_points_at_the_project(tmp_path):
    env = devrun.airflow_env(tmp_path)
    assert env["AIRFLOW_HOME"] == str(tmp_path)
    assert env["AIRFLOW__CORE__DAGS_FOLDER"].endswith("/dags")
    assert int(env["AIRFLOW__CORE__PARALLELISM"]) <= 4
    assert env["AIRFLOW__API__HOST"] == "127.0.0.1"
    assert "alice.sre:op" in env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS"]
    assert os.pathsep in env["PATH"]
