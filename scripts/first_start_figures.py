"""The README's start-up and game-day figures, from a running `make run` (never typed by hand).

    .venv/bin/python scripts/first_start_figures.py [--minutes 30] [--since ISO] [--game-days-since ISO]
                                                    [--api http://127.0.0.1:8080 --user admin] [--json]

Reads the platform's state store (the same settings as `aiops`) and, when it can log in, Airflow's
REST API, and prints Markdown tables:

* the first ``--minutes`` after the start (default: the start `make run` recorded in
  `.airflow/aiops-run.pid`, else the first thing the state store recorded): alerts received and how
  many were history (`stale`), notifications sent, incidents opened (and how many from history),
  remediation requests by origin, and `ops changes: N` — changes the routine-operations workflows
  made in AWS (`aiops_ops_changes`, by workflow; a first start makes none, and the line says how
  many it planned and held back); with the API, DAG runs in that window by state;
* every incident opened after that window (the game days): detect, event -> SSM execution start,
  MTTR (from the incident's recorded times and the fixing execution's own start time).

The Airflow login: ``--user`` (default admin) with ``$AIOPS_AIRFLOW_PASSWORD``, else the password
`make run` generated in `.airflow/simple_auth_manager_passwords.json.generated`. Without a login
the DAG-run table is left out. See docs/first-start.md.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _when(text: str | None) -> datetime | None:
    if not text:
        return None
    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def started_at() -> datetime | None:
    try:
        return datetime.fromtimestamp(json.loads((ROOT / ".airflow" / "aiops-run.pid").read_text())["started"], UTC)
    except (OSError, ValueError, KeyError):
        return None


def _password(user: str) -> str | None:
    if os.environ.get("AIOPS_AIRFLOW_PASSWORD"):
        return os.environ["AIOPS_AIRFLOW_PASSWORD"]
    try:
        return json.loads((ROOT / ".airflow" / "simple_auth_manager_passwords.json.generated").read_text()).get(user)
    except (OSError, ValueError):
        return None


def dag_runs(api_url: str, user: str, since: datetime, until: datetime) -> dict[str, Counter] | None:
    from aiops.remediation.approval_queue import AirflowApi

    password = _password(user)
    if not password:
        return None
    try:
        api = AirflowApi(api_url, username=user, password=password)
    except Exception as exc:  # no API (not running, wrong password): leave the table out
        print(f"(no DAG-run figures: {exc})", file=sys.stderr)
        return None
    out: dict[str, Counter] = {}
    offset = 0
    while True:
        resp = api.http.get(f"{api.base}/api/v2/dags/~/dagRuns", headers=api.headers, params={
            "run_after_gte": since.isoformat(), "run_after_lt": until.isoformat(), "limit": 100, "offset": offset})
        resp.raise_for_status()
        body = resp.json()
        for run in body["dag_runs"]:
            out.setdefault(run["dag_id"], Counter())[run["state"]] += 1
        offset += len(body["dag_runs"])
        if not body["dag_runs"] or offset >= body["total_entries"]:
            return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=30, help="the start-up window (default 30)")
    parser.add_argument("--since", help="the start (default: make run's start, else the first record)")
    parser.add_argument("--game-days-since", help="incidents opened from here are game days (default: window end)")
    parser.add_argument("--api", default=os.environ.get("AIOPS_AIRFLOW_API", "http://127.0.0.1:8080"))
    parser.add_argument("--user", default=os.environ.get("AIOPS_AIRFLOW_USER", "admin"))
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)

    os.environ.setdefault("AIRFLOW_HOME", str(ROOT / ".airflow"))
    os.environ.setdefault("AIRFLOW__LOGGING__LOGGING_LEVEL", "WARNING")
    from aiops.incidents.figures import first_activity, incident_figures, markdown, startup_figures

    since = _when(args.since) or started_at() or first_activity()
    if since is None:
        print("nothing recorded yet: is `make run` running?", file=sys.stderr)
        return 1
    until = since + timedelta(minutes=args.minutes)
    start = startup_figures(since, args.minutes)
    games = incident_figures(_when(args.game_days_since) or until)
    runs = dag_runs(args.api, args.user, since, until)
    if args.json:
        print(json.dumps({"startup": start, "game_days": games, "dag_runs": runs}, default=str, indent=2))
        return 0
    print(markdown(start, games))
    if runs:
        print(f"DAG runs in the first {args.minutes:.0f} minutes:\n")
        print("| DAG | runs | success | failed | other |\n|---|---:|---:|---:|---:|")
        for dag_id, states in sorted(runs.items()):
            other = sum(v for k, v in states.items() if k not in ("success", "failed"))
            print(f"| `{dag_id}` | {sum(states.values())} | {states['success']} | {states['failed']} | {other} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
