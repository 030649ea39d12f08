"""Keeping secrets out of output and files out of other users' reach.

* :func:`mask_url` hides the password of a database / connection URL (``postgresql://u:***@host/db``);
* :func:`mask_setting` is what ``aiops config`` prints for a setting: names that look secret
  (password, secret, token, key, credential) and URL credentials are masked;
* :func:`private_file` creates a file readable by its owner only (0600) or tightens an existing one
  (the SQLite state store, the generated Airflow password file).
"""

from __future__ import annotations

import contextlib
import os
import re
import stat
from pathlib import Path
from typing import Any

MASK = "***"
_SECRET_NAME = re.compile(r"(password|passwd|secret|token|credential|private_key|fernet|api_key)", re.IGNORECASE)
_URL_CREDENTIALS = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<user>[^:/@\s]*):(?P<password>[^@/\s]+)@")


def mask_url(url: str) -> str:
    """``scheme://user:password@host/...`` -> ``scheme://user:***@host/...`` (other text unchanged)."""
    return _URL_CREDENTIALS.sub(lambda m: f"{m['scheme']}{m['user']}:{MASK}@", str(url))


def mask_setting(name: str, value: Any) -> str:
    text = str(value)
    if _SECRET_NAME.search(name) and text not in ("", "None"):
        return MASK
    return mask_url(text)


def private_file(path: str | Path) -> Path:
    """Make sure ``path`` exists and is 0600 (created so, never world-readable in between)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
    if stat.S_IMODE(path.stat().st_mode) != 0o600:
        path.chmod(0o600)
    return path
