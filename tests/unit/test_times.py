"""The one time module: aware UTC in, aware UTC out, loud on bad text."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pendulum
import pytest

from aiops.core import times

T = datetime(2026, 12, 2, 17, 41, 6, 123456, tzinfo=UTC)


@pytest.mark.parametrize("value", [
    T, T.replace(tzinfo=None), "2026-12-02T17:41:06.123456Z", "2026-12-02T17:41:06.123456+00:00",
    "2026-12-02T18:41:06.123456+01:00", T.astimezone(timezone(timedelta(hours=-5))),
    pendulum.instance(T),
])
def test_utc_normalises_every_spelling_to_plain_aware_utc(value):
    out = times.utc(value)
    assert out == T
    assert out.tzinfo is UTC
    assert type(out) is datetime


def test_bad_text_is_a_clear_error_or_none_when_lenient():
    with pytest.raises(ValueError, match="'yesterday' is not an ISO 8601 timestamp"):
        times.utc("yesterday")
    assert times.lenient_utc("yesterday") is None
    assert times.lenient_utc("") is None
    assert times.lenient_utc(None) is None
    assert times.lenient_utc("2026-12-02T17:41:06.123456Z") == T


def test_floor_iso_and_none():
    assert times.floor(T, 300) == datetime(2026, 12, 2, 17, 40, tzinfo=UTC)
    assert times.floor("2026-12-02T17:44:59Z", 300) == datetime(2026, 12, 2, 17, 40, tzinfo=UTC)
    assert times.iso(T.replace(tzinfo=None)) == "2026-12-02T17:41:06.123456+00:00"
    assert times.iso(None) is None
    assert times.iso("x") == "x"
    assert times.utc_or_none(None) is None
