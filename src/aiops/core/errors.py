"""Errors users see. Each names what was wrong and where, so it can be fixed without a debugger."""

from __future__ import annotations

from pathlib import Path


class AiopsError(Exception):
    """Base of the platform's own errors."""


class ConfigError(AiopsError):
    """A user-authored file (YAML under include/) is malformed: names the file and the field."""

    def __init__(self, path: Path | str, field: str, message: str) -> None:
        self.path = Path(path)
        self.field = field
        self.message = message
        where = f"{self.path}: {field}: " if field else f"{self.path}: "
        super().__init__(f"{where}{message}")


class ValidationFailure(AiopsError):
    """Data failed an expectation: names the series and the expectation."""
