"""Approval policies: hooks that may demand one more approval round for a plan.

:data:`APPROVAL_POLICIES` holds ``fn(plan) -> reason or None``; ``make_plan``
(:mod:`aiops.remediation.pipeline`) asks each and adds one round when any gives a reason. Built in:

**Error budget** (:func:`error_budget_policy`): while a service's error budget is exhausted, risky
changes need one more approval. It reads the SLO history rows the ``slo_tracking`` DAG writes to the
state store (``aiops_slo_history``, a core table), so the remediation path needs nothing from the
``slo`` package. For a plan whose
runbook risk is medium or high, the hook looks up the latest ``aiops_slo_history`` row of every
SLO of the targets' ``service`` tag (and ``env`` tag, when both sides have one) and returns a
reason when any of them has ``budget_remaining <= 0``; ``make_plan`` then adds an approval round.

If the history cannot be read the hook fails closed: it returns a reason (one more approval),
since an unknown budget is not a healthy one.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from aiops.core.state import StateStore, slo_history

log = logging.getLogger(__name__)

RISKY = frozenset({"medium", "high"})


def latest_budgets(service: str, env: str | None = None) -> list[dict[str, Any]]:
    """The latest history row of each SLO of ``service`` (and ``env``): slo_id, env, evaluated_at,
    budget_remaining."""
    from sqlalchemy import func, select

    store = StateStore()
    store.migrate()
    h = slo_history.c
    newest = select(h.slo_id, func.max(h.evaluated_at).label("at")).where(h.service == service)
    if env:
        newest = newest.where(h.env == env)
    latest = newest.group_by(h.slo_id).subquery()
    query = (select(h.slo_id, h.env, h.evaluated_at, h.budget_remaining)
             .join(latest, (h.slo_id == latest.c.slo_id) & (h.evaluated_at == latest.c.at))
             .order_by(h.slo_id))
    with store.engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(query)]


def exhausted_reason(rows: list[dict[str, Any]]) -> str | None:
    """``error budget of checkout-availability exhausted (-12% remaining)``, one clause per SLO."""
    spent = [r for r in rows if r["budget_remaining"] is not None and r["budget_remaining"] <= 0]
    if not spent:
        return None
    return "; ".join(f"error budget of {r['slo_id']} exhausted ({r['budget_remaining'] * 100:.0f}% remaining)"
                     for r in spent)


def error_budget_policy(plan: dict[str, Any]) -> str | None:
    """APPROVAL_POLICIES hook: fn(plan) -> reason or None (see the module docstring)."""
    if str(plan.get("risk", "")).lower() not in RISKY:
        return None
    scopes = sorted({(t["tags"]["service"], t["tags"].get("env") or None)
                     for t in plan.get("targets") or [] if (t.get("tags") or {}).get("service")},
                    key=lambda x: (x[0], x[1] or ""))
    reasons = []
    for service, env in scopes:
        try:
            reason = exhausted_reason(latest_budgets(service, env))
        except Exception as exc:  # fail closed: an unreadable budget is not a healthy one
            log.exception("error-budget policy could not read the SLO history")
            reason = f"error budget of {service} unknown (SLO history unreadable: {type(exc).__name__})"
        if reason:
            reasons.append(reason)
    return "; ".join(reasons) or None


#: The hooks ``make_plan`` asks, in order (extend it to add a policy; see docs/contributing.md).
APPROVAL_POLICIES: list[Callable[[dict[str, Any]], str | None]] = [error_budget_policy]
