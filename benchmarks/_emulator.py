"""An empty emulator in its own process for a benchmark run (moto's state is per process)."""

from __future__ import annotations

import socket
import subprocess
import sys
import time


def start_emulator() -> tuple[subprocess.Popen, str]:
    from aiops_sandbox.emulator import is_sandbox

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "aiops.cli", "sandbox", "up", "--no-seed", "--port", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    endpoint = f"http://127.0.0.1:{port}"
    while not is_sandbox(endpoint, timeout=1):
        if proc.poll() is not None:
            raise RuntimeError("emulator failed to start")
        time.sleep(0.3)
    return proc, endpoint


def bench_environment(root) -> None:
    """Fake credentials, a private AIOPS_HOME and quiet logs for a benchmark process."""
    import logging
    import os

    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    os.environ.setdefault("AIOPS_HOME", str(root / ".aiops" / "bench"))
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
    logging.disable(logging.WARNING)
