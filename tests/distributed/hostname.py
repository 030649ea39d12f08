"""``AIRFLOW__CORE__HOSTNAME_CALLABLE`` of the distributed test's Celery workers.

Both workers run on one machine, so the default (the FQDN) would record the same hostname for every
task instance; each worker names itself with ``AIOPS_DISTRIBUTED_HOSTNAME`` instead, as two machines
would. The harness (``run.py``) asserts that a run's tasks carry both names.
"""

from __future__ import annotations

import os
import socket


def worker_hostname() -> str:
    return os.environ.get("AIOPS_DISTRIBUTED_HOSTNAME") or socket.getfqdn()
