"""What ``cost_rightsizing``'s tasks do, testable without Airflow.

1. :func:`recommend` — inventory (describe calls) + the metrics store over the lookback ->
   rules -> (optionally) AWS's own recommendations merged in -> minus what earlier decisions hide ->
   ``cost/rightsizing/dt=<day>/recommendations.json`` (schema in :mod:`aiops.cost.model`).
2. The FinOps review (HITL, see :mod:`aiops.cost.review`).
3. :func:`decide` — the answer as decisions, recorded (state store + audit); returns one
   ``remediate`` trigger per applied recommendation that has a runbook.
"""

from __future__ import annotations

import logging
import re
from datetime import date, datetime, timedelta
from typing import Any

from aiops.core.artifacts import ArtifactStore
from aiops.core.identity import current_account
from aiops.core.settings import get_settings
from aiops.core.times import utc as _utc
from aiops.cost import decisions, external, review
from aiops.cost import decisions as store
from aiops.cost.collect import collect_inventory
from aiops.cost.model import Recommendation
from aiops.cost.pricing import default_prices
from aiops.cost.review import decisions_from_answer
from aiops.cost.rules import RuleContext, Thresholds, evaluate
from aiops.cost.utilisation import read_metrics, summarise

log = logging.getLogger(__name__)
DOMAIN, DATASET, FILENAME = "cost", "rightsizing", "recommendations.json"




def recommend(at: datetime | str, *, day: date | str | None = None) -> dict[str, Any]:
    """Recommendations as of ``at`` (the run's data interval end), stored under ``dt=<day>``."""
    s = get_settings()
    at = _utc(at)
    day = day or at.date()
    limits = Thresholds.from_settings()
    prices = default_prices()
    inventory = collect_inventory(s.regions)
    log.info("Inventory: %s", inventory.counts())
    frame = read_metrics(at - timedelta(days=limits.lookback_days), at)
    usage = summarise(frame, limits.cpu_percentile)
    log.info("Metrics: %d rows; evidence for %d instances, %d databases, %d load balancers", usage.rows,
             len(usage.instances), len(usage.databases), len(usage.load_balancers))
    recs, skipped = evaluate(RuleContext(inventory, usage, prices, limits, at))
    if s.cost_external_recommendations:
        findings = external.external_findings(s.regions)
        log.info("AWS recommendations merged in: %d", len(findings))
        mem = {i: u.mem_percentile for i, u in usage.instances.items() if u.mem_percentile is not None}
        recs = external.merge(recs, findings, inventory, prices, mem, limits.headroom_pct)
    account_id = current_account()  # decisions are about one account (issue 15)
    hidden = decisions.suppressed(at, account_id=account_id)
    shown = [r.to_model().model_dump(mode="json") for r in recs if r.id not in hidden]
    suppressed = [{"id": r.id, **hidden[r.id]} for r in recs if r.id in hidden]
    counts: dict[str, int] = {}
    for r in shown:
        counts[r["kind"]] = counts.get(r["kind"], 0) + 1
    store = ArtifactStore()
    key = store.key(DOMAIN, DATASET, day, FILENAME)
    document = {
        "generated_at": at.isoformat(), "day": str(day), "lookback_days": limits.lookback_days,
        "price_table": prices.citation, "settings": vars(limits) | {"external": s.cost_external_recommendations},
        "counts": counts, "skipped": skipped, "suppressed": suppressed,
        "monthly_savings_usd": round(sum(r["monthly_savings_usd"] for r in shown), 2),
        "recommendations": shown,
    }
    store.put_json(key, document)
    log.info("%d recommendation(s), $%.2f/month, %d hidden by decisions -> %s", len(shown),
             document["monthly_savings_usd"], len(suppressed), store.uri(key))
    summary = {"key": key, "day": str(day), "at": at.isoformat(), "lookback_days": limits.lookback_days,
               "price_table": prices.citation, "recommendations": shown, "suppressed_count": len(suppressed),
               "monthly_savings_usd": document["monthly_savings_usd"], "dismiss_days": s.cost_dismiss_days,
               "account_id": account_id}
    summary["subject"] = (f"Right-sizing {day}: {len(shown)} recommendation(s), "
                          f"${document['monthly_savings_usd']:,.2f}/month")
    summary["review_markdown"] = review.review_markdown(summary)
    return summary


def _run_id_part(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.~:+-]", "_", text)


def decide(summary: dict[str, Any], answer: dict[str, Any], *, review_run_id: str,
           decided_at: datetime | str) -> list[dict[str, Any]]:
    """Record the review's answer; returns ``remediate`` trigger kwargs (``trigger_run_id``, ``conf``).

    ``summary`` is ``recommend``'s XCom: its recommendations are validated here, where they are read."""
    s = get_settings()
    user = answer.get("responded_by_user") or answer.get("responded_by") or {}  # the HITL task's XCom
    who = str(user.get("name") or user.get("id") or "") if isinstance(user, dict) else str(user)
    who = who or "nobody (review timed out)"  # the timeout applied the default option
    chosen = list(answer.get("chosen_options") or [])
    recs = [Recommendation.model_validate(r) for r in summary["recommendations"]]
    made = decisions_from_answer(chosen, answer.get("params_input") or {}, recs)
    triggers: list[dict[str, Any]] = []
    for d in made:
        rec = d.recommendation
        if d.decision == "apply" and rec.runbook:
            run_id = f"cost__{_run_id_part(review_run_id)}__{d.ref}"[:250]
            d.remediate_run_id = run_id
            triggers.append({"trigger_run_id": run_id, "conf": {
                "runbook": rec.runbook, "parameters": rec.runbook_parameters,
                "requested_by": f"{who} (cost_rightsizing)",
                "reason": f"FinOps right-sizing {summary['day']} {d.ref}: {rec.reason} "
                          f"(saves ${rec.monthly_savings_usd:,.2f}/month)",
                "incident_id": None, "dry_run": False}})
    store.record_decisions(made, review_run_id=review_run_id, decided_by=who, decided_at=_utc(decided_at),
                           dismiss_days=s.cost_dismiss_days, apply_hold_days=s.cost_apply_hold_days,
                           account_id=summary.get("account_id"))
    tally = {k: sum(1 for d in made if d.decision == k) for k in store.DECISIONS}
    log.info("Review by %s: %s; %d remediate run(s) to start", who, tally, len(triggers))
    return triggers
