"""FinOps decisions on recommendations (apply / defer / dismiss) and the savings they realise.

Rows live in the state store table ``aiops_cost_decisions`` (migration 6), one per recommendation
and review run (a retry rewrites its rows); every decision is also written to the audit trail.

- *dismiss* hides the recommendation for ``cost_dismiss_days``;
- *apply* starts one ``remediate`` run and hides it for ``cost_apply_hold_days`` (the remediation
  still needs its runbook's approvers);
- *defer* hides nothing: it is proposed again next run.

Realised savings: an applied recommendation whose remediation completed saves its estimated
monthly amount from the day it completed; :func:`realised_savings` accrues it per day.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, delete, insert, or_, select

from aiops.core.state import StateStore, cost_decisions, remediation_requests
from aiops.core.times import utc_or_none as _utc
from aiops.remediation.pipeline import request_id

if TYPE_CHECKING:
    from aiops.cost.model import RecommendationDecision

DECISIONS = ("apply", "defer", "dismiss")
DAYS_PER_MONTH = 730 / 24




def record_decisions(decisions: list[RecommendationDecision], *, review_run_id: str, decided_by: str,
                     decided_at: datetime, dismiss_days: int, apply_hold_days: int,
                     store: StateStore | None = None, account_id: str | None = None) -> int:
    """Upsert the review's decisions, made about AWS account ``account_id``; the row keeps the
    recommendation's JSON."""
    store = store or StateStore()
    store._ready()
    rows = []
    for d in decisions:
        rec = d.recommendation
        until = {"dismiss": decided_at + timedelta(days=dismiss_days),
                 "apply": decided_at + timedelta(days=apply_hold_days)}.get(d.decision)
        rows.append({"recommendation_id": rec.id, "review_run_id": review_run_id, "decision": d.decision,
                     "decided_by": decided_by, "decided_at": decided_at, "until": until,
                     "resource_id": rec.resource_id, "kind": rec.kind,
                     "monthly_savings_usd": rec.monthly_savings_usd, "runbook": rec.runbook,
                     "remediate_run_id": d.remediate_run_id, "recommendation": rec.model_dump(mode="json"),
                     "account_id": account_id})
    with store.engine.begin() as conn:
        conn.execute(delete(cost_decisions).where(cost_decisions.c.review_run_id == review_run_id))
        if rows:
            conn.execute(insert(cost_decisions), rows)
    for row in rows:
        store.audit(actor=decided_by, action=f"cost_{row['decision']}", subject=f"cost:{row['recommendation_id']}",
                    run_id=review_run_id,
                    detail={"monthly_savings_usd": row["monthly_savings_usd"], "until": row["until"],
                            "runbook": row["runbook"], "remediate_run_id": row["remediate_run_id"]})
    return len(rows)


def suppressed(at: datetime, store: StateStore | None = None,
               account_id: str | None = None) -> dict[str, dict[str, Any]]:
    """Recommendation id -> the decision that hides it at ``at`` (dismissed or recently applied).
    A decision is a present fact: it also hides the recommendation when an earlier day is re-run.
    With ``account_id``, only decisions about that account (or recorded before decisions carried one)."""
    store = store or StateStore()
    store._ready()
    query = select(cost_decisions.c.recommendation_id, cost_decisions.c.decision, cost_decisions.c.until,
                   cost_decisions.c.decided_by, cost_decisions.c.decided_at).where(
        and_(cost_decisions.c.until.is_not(None), cost_decisions.c.until > at))
    if account_id is not None:
        query = query.where(or_(cost_decisions.c.account_id == account_id, cost_decisions.c.account_id.is_(None)))
    out: dict[str, dict[str, Any]] = {}
    with store.engine.connect() as conn:
        for row in conn.execute(query):
            out[row.recommendation_id] = {"decision": row.decision, "until": _utc(row.until),
                                          "decided_by": row.decided_by}
    return out


def history(store: StateStore | None = None) -> list[dict[str, Any]]:
    store = store or StateStore()
    store._ready()
    with store.engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(select(cost_decisions).order_by(cost_decisions.c.decided_at))]


def realised_savings(day: datetime, store: StateStore | None = None) -> dict[str, Any]:
    """Applied recommendations up to the end of ``day`` with their remediation status, and the
    savings accrued by those that succeeded (estimated monthly savings x days since completion)."""
    store = store or StateStore()
    store._ready()
    end = day + timedelta(days=1)
    with store.engine.connect() as conn:
        applied = [dict(r._mapping) for r in conn.execute(
            select(cost_decisions).where(and_(cost_decisions.c.decision == "apply",
                                              cost_decisions.c.decided_at < end)))]
        items = []
        for row in applied:
            status, done_at = ("requested", None) if row["remediate_run_id"] else ("manual (no runbook)", None)
            if row["remediate_run_id"]:
                req = conn.execute(select(remediation_requests.c.status, remediation_requests.c.updated_at).where(
                    remediation_requests.c.request_id == request_id("remediate", row["remediate_run_id"]))).first()
                if req is not None:
                    status, done_at = req.status, _utc(req.updated_at)
            if status == "succeeded" and (done_at is None or done_at >= end):
                status = "succeeded later"  # a re-run of an earlier day does not count it yet
            accrued = 0.0
            if status == "succeeded" and done_at is not None:
                accrued = row["monthly_savings_usd"] * (end - done_at).total_seconds() / 86400 / DAYS_PER_MONTH
            items.append({"recommendation_id": row["recommendation_id"], "resource_id": row["resource_id"],
                          "kind": row["kind"], "decided_by": row["decided_by"], "decided_at": _utc(row["decided_at"]),
                          "status": status, "monthly_savings_usd": row["monthly_savings_usd"],
                          "accrued_usd": round(accrued, 2), "remediate_run_id": row["remediate_run_id"]})
    completed = [i for i in items if i["status"] == "succeeded"]
    return {"items": items, "applied": len(items), "completed": len(completed),
            "monthly_run_rate_usd": round(sum(i["monthly_savings_usd"] for i in completed), 2),
            "accrued_usd": round(sum(i["accrued_usd"] for i in items), 2)}
