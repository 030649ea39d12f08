"""``aiops anomaly score`` on a CSV with bad rows names the lines and counts what was dropped or
coerced (issue 15, failure 6) instead of a pandas traceback or silent drops."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest

from aiops.anomaly.offline import read_series_csv
from aiops.core.errors import ConfigError

T0 = datetime(2026, 11, 1, tzinfo=UTC)


def _csv(tmp_path, rows, name="in.csv"):
    path = tmp_path / name
    path.write_text("timestamp,value\n" + "".join(f"{t},{v}\n" for t, v in rows))
    return path


def _good(n, start=0):
    return [((T0 + timedelta(minutes=5 * (start + i))).strftime("%Y-%m-%dT%H:%M:%SZ"), 10.0 + i % 3)
            for i in range(n)]


def test_bad_rows_are_named_and_counted(tmp_path):
    rows = _good(6)
    rows[2] = ("2026-13-45T99:00:00Z", 1.0)  # line 4: bad timestamp
    rows[3] = (rows[3][0], "n/a")  # line 5: non-numeric
    rows[4] = (rows[4][0], "")  # line 6: empty
    rows.append((rows[1][0], 99.0))  # line 8: repeats line 3's timestamp
    series, report = read_series_csv(_csv(tmp_path, rows))
    assert report.rows == 7
    assert report.bad_timestamp == [4]
    assert report.non_numeric == [5]
    assert report.missing_value == [6]
    assert report.duplicate_timestamp == [3]  # the earlier one is dropped, the last kept
    assert len(series) == 5
    assert series.index.is_monotonic_increasing
    assert series[rows[1][0]] == 99.0
    text = "\n".join(report.lines())
    assert "bad timestamp: line(s) 4" in text
    assert "non-numeric value(s) to missing: line(s) 5" in text
    assert "repeating an earlier timestamp (the last one is kept): line(s) 3" in text


@pytest.mark.parametrize(("content", "message"), [
    ("", "empty file"),
    ("time,val\n2026-11-01T00:00:00Z,1\n", "missing column(s)"),
    ("timestamp,value\nnot-a-time,1\nnope,2\n", "no row with a valid timestamp"),
    ("timestamp,value\n2026-11-01T00:00:00Z,1\n2026-11-01T00:05:00Z,1,extra\n", "line 3"),
])
def test_unusable_files_are_clear_errors(tmp_path, content, message):
    path = tmp_path / "in.csv"
    path.write_text(content)
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        read_series_csv(path)


def test_cli_reports_lines_instead_of_a_traceback(tmp_path):
    rows = _good(300)
    rows[10] = ("yesterday-ish", 5.0)
    rows[20] = (rows[20][0], "abc")
    path = _csv(tmp_path, rows)
    proc = subprocess.run([sys.executable, "-m", "aiops.cli", "anomaly", "score", "--input", str(path),
                           "--output", str(tmp_path / "out.csv")], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    assert "dropped 1 row(s) with a bad timestamp: line(s) 12" in proc.stdout
    assert "coerced 1 non-numeric value(s) to missing: line(s) 22" in proc.stdout
    broken = tmp_path / "broken.csv"
    broken.write_text("timestamp,value\n")
    proc = subprocess.run([sys.executable, "-m", "aiops.cli", "anomaly", "score", "--input", str(broken),
                           "--output", str(tmp_path / "o.csv")], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert "no row with a valid timestamp" in proc.stderr
