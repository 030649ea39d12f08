"""The one place for time: aware UTC datetimes, ISO 8601 text, period floors.

Every timestamp the platform stores or compares is an aware UTC :class:`datetime.datetime` (never
naive, never a pendulum ``DateTime``, whose arithmetic drops zones). Text is ISO 8601 with ``Z`` or an
offset; naive input is taken as UTC (the state store's SQLite returns naive values).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, overload


def now() -> datetime:
    """The current time, aware UTC."""
    return datetime.now(UTC)


def parse(text: str) -> datetime:
    """ISO 8601 (``Z`` or an offset; naive is UTC) to aware UTC; ``ValueError`` names bad text."""
    try:
        value = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except (AttributeError, ValueError) as exc:
        raise ValueError(f"{text!r} is not an ISO 8601 timestamp") from exc
    return utc(value)


def utc(value: datetime | str) -> datetime:
    """A datetime or ISO text as a plain aware UTC datetime (naive is taken as UTC)."""
    if isinstance(value, str):
        return parse(value)
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    value = value.astimezone(UTC)
    # a plain datetime, not a subclass (pendulum's DateTime drops zones in arithmetic)
    return datetime(value.year, value.month, value.day, value.hour, value.minute, value.second,
                    value.microsecond, tzinfo=UTC)


@overload
def utc_or_none(value: None) -> None: ...
@overload
def utc_or_none(value: datetime | str) -> datetime: ...
def utc_or_none(value: datetime | str | None) -> datetime | None:
    """:func:`utc`, passing ``None`` through."""
    return None if value is None else utc(value)


def lenient_utc(value: Any) -> datetime | None:
    """:func:`utc` for untrusted input: ``None`` for anything that is not a timestamp."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if not isinstance(value, datetime | str):
        value = str(value)
    try:
        return utc(value)
    except ValueError:
        return None


def iso(value: datetime | str | None) -> str | None:
    """Aware UTC ISO 8601 text (``+00:00``) of a datetime; other values as text; ``None`` stays."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return utc(value).isoformat()
    return str(value)


def floor(value: datetime | str, seconds: int) -> datetime:
    """The start of the ``seconds``-long period holding ``value`` (periods aligned to the epoch)."""
    return datetime.fromtimestamp(int(utc(value).timestamp()) // seconds * seconds, UTC)
