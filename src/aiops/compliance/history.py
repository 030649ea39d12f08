"""Sweep results with history in the state store, and the diff against the previous sweep.

A sweep is keyed by its ``sweep_id`` (account and the DAG run's logical date): recording it again replaces its
rows, so a retry or a backfill never duplicates. :func:`diff` is pure; statuses are the effective
ones (a FAILED result under an accepted-risk exception counts as SUPPRESSED).
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete, desc, insert, select

from aiops.compliance.model import Result
from aiops.compliance.registry import checks
from aiops.core.state import StateStore, compliance_results, compliance_sweeps


@dataclass
class SweepDiff:
    new: list[Result] = field(default_factory=list)  # FAILED, not failing (or unseen) before, first time seen
    regressed: list[Result] = field(default_factory=list)  # FAILED, PASSED/SUPPRESSED in the previous sweep
    resolved: list[dict[str, Any]] = field(default_factory=list)  # FAILED before; {"result", "now": ...}
    still_failing: list[Result] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        return {"new": len(self.new), "regressed": len(self.regressed), "resolved": len(self.resolved),
                "still_failing": len(self.still_failing)}


def diff(previous: list[Result] | None, current: list[Result]) -> SweepDiff:
    """Compare two sweeps by (check, resource). ``previous=None``: the first sweep (all failures new).

    - new: FAILED now, and the previous sweep had no result for it (new resource/check, first sweep)
    - regressed: FAILED now, PASSED or SUPPRESSED in the previous sweep
    - still_failing: FAILED in both
    - resolved: FAILED before, now PASSED, SUPPRESSED (accepted) or gone (resource deleted)

    A result carried forward unevaluated (``not_evaluated``: its collector failed this sweep) is
    never new, regressed or resolved: it stays what it last was (a carried failure is still failing).
    """
    before = {r.key: r for r in previous or []}
    now = {r.key: r for r in current}
    out = SweepDiff()
    for key, r in now.items():
        if r.effective != "FAILED":
            continue
        old = before.get(key)
        if r.not_evaluated:
            if old is not None and old.effective == "FAILED":
                out.still_failing.append(r)
            continue
        if old is None:
            out.new.append(r)
        elif old.effective == "FAILED":
            out.still_failing.append(r)
        else:
            out.regressed.append(r)
    for key, old in before.items():
        if old.effective != "FAILED":
            continue
        cur = now.get(key)
        if cur is not None and cur.not_evaluated:
            continue
        if cur is None:
            out.resolved.append({"result": old, "now": "GONE"})
        elif cur.effective != "FAILED":
            out.resolved.append({"result": old, "now": cur.effective})
    return out


def carry_forward(results: list[Result], previous: list[Result] | None,
                  not_evaluated: dict[str, str]) -> list[Result]:
    """``results`` plus, for every check this sweep could not evaluate (``not_evaluated``: check id ->
    why), the previous sweep's results of that check marked ``not_evaluated`` with the reason.

    Without this a failed collector reads as "every failure of its checks is gone": the diff calls
    them resolved and Security Hub archives them, and they come back as "new" next time."""
    if not not_evaluated or not previous:
        return list(results)
    have = {r.key for r in results}
    carried = [replace(r, not_evaluated=not_evaluated[r.check_id]) for r in previous
               if r.check_id in not_evaluated and r.key not in have]
    return list(results) + carried


def partial(results: list[Result], errors: dict[str, str]) -> bool:
    """A sweep is partial when some check could not be evaluated (a collector or the check failed)."""
    known = checks()
    return any(k in known for k in errors) or any(r.not_evaluated for r in results)


def score(results: list[Result]) -> float | None:
    """Posture score as Security Hub computes its security score: the share of evaluated checks with
    no FAILED result (suppressed = accepted, counts as passing). None when nothing was evaluated.
    Per check rather than per resource, so 1,000 passing snapshots cannot hide a public bucket."""
    by_check: dict[str, bool] = {}
    for r in results:
        by_check[r.check_id] = by_check.get(r.check_id, True) and r.effective != "FAILED"
    if not by_check:
        return None
    return sum(by_check.values()) / len(by_check)


def counts(results: list[Result]) -> dict[str, int]:
    c = Counter(r.effective for r in results)
    out = {k: c.get(k, 0) for k in ("PASSED", "FAILED", "SUPPRESSED")}
    out["NOT_EVALUATED"] = sum(1 for r in results if r.not_evaluated)  # carried forward, included above
    return out


def _json(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


def record_sweep(store: StateStore, *, sweep_id: str, as_of: datetime, account_id: str, regions: list[str],
                 results: list[Result], errors: dict[str, str], sweep_diff: SweepDiff | None,
                 run_id: str | None = None) -> None:
    """Upsert the sweep and replace its results (idempotent per sweep_id)."""
    store.migrate()
    severity = {cid: c.meta.severity for cid, c in checks().items()}
    rows = [{
        "sweep_id": sweep_id, "check_id": r.check_id, "resource_key": r.key[1], "resource_id": r.resource_id,
        "resource_type": r.resource_type, "region": r.region, "status": r.status, "effective": r.effective,
        "severity": severity.get(r.check_id, "INFORMATIONAL"), "reason": r.reason, "suppressed": r.suppressed,
        "result": _json(r.to_dict()),
    } for r in {r.key: r for r in results}.values()]
    with store.engine.begin() as conn:
        conn.execute(delete(compliance_results).where(compliance_results.c.sweep_id == sweep_id))
        conn.execute(delete(compliance_sweeps).where(compliance_sweeps.c.sweep_id == sweep_id))
        conn.execute(insert(compliance_sweeps).values(
            sweep_id=sweep_id, as_of=as_of, account_id=account_id, regions=regions, score=score(results),
            counts=counts(results), errors=_json(errors), diff=sweep_diff.counts() if sweep_diff else None,
            run_id=run_id, recorded_at=datetime.now(UTC)))
        if rows:
            conn.execute(insert(compliance_results), rows)


def previous_sweep(store: StateStore, as_of: datetime, account_id: str | None = None) -> str | None:
    """The latest sweep strictly before ``as_of`` (of ``account_id`` when given)."""
    store.migrate()
    q = select(compliance_sweeps.c.sweep_id).where(compliance_sweeps.c.as_of < as_of)
    if account_id:
        q = q.where(compliance_sweeps.c.account_id == account_id)
    with store.engine.connect() as conn:
        return conn.execute(q.order_by(desc(compliance_sweeps.c.as_of)).limit(1)).scalar()


def sweep_results(store: StateStore, sweep_id: str) -> list[Result]:
    store.migrate()
    with store.engine.connect() as conn:
        rows = conn.execute(select(compliance_results.c.result).where(compliance_results.c.sweep_id == sweep_id))
        return [Result.from_dict(row[0]) for row in rows]


def trend(store: StateStore, until: datetime, limit: int = 14) -> list[dict[str, Any]]:
    """The last ``limit`` sweeps up to ``until`` (oldest first): as_of, score, counts."""
    store.migrate()
    q = (select(compliance_sweeps.c.sweep_id, compliance_sweeps.c.as_of, compliance_sweeps.c.score,
                compliance_sweeps.c.counts)
         .where(compliance_sweeps.c.as_of <= until).order_by(desc(compliance_sweeps.c.as_of)).limit(limit))
    with store.engine.connect() as conn:
        rows = [dict(r._mapping) for r in conn.execute(q)]
    return list(reversed(rows))


def result_history(store: StateStore, check_id: str, resource_key: str) -> list[dict[str, Any]]:
    """Every sweep's status for one (check, resource), oldest first."""
    store.migrate()
    q = (select(compliance_sweeps.c.as_of, compliance_results.c.effective, compliance_results.c.reason)
         .join(compliance_sweeps, compliance_sweeps.c.sweep_id == compliance_results.c.sweep_id)
         .where(compliance_results.c.check_id == check_id, compliance_results.c.resource_key == resource_key)
         .order_by(compliance_sweeps.c.as_of))
    with store.engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(q)]
