"""The FinOps review of a right-sizing run: what the approver reads in the Airflow UI (Required
Actions) and how the answer becomes one decision per recommendation.

The review is one human-in-the-loop task with three options — **Apply**, **Defer**, **Dismiss** —
meaning "do this with every recommendation I do not list", and three form fields ``apply``,
``defer``, ``dismiss`` taking recommendation refs (``R1, R3``; ``all``; or the full ids) for
per-recommendation choices. So "Apply" alone approves the batch; "Defer" with ``apply: R2`` applies
only R2; "Dismiss" with ``defer: R1`` dismisses all but R1.
"""

from __future__ import annotations

import re
from typing import Any

from aiops.cost.model import DecisionKind, Recommendation, RecommendationDecision

OPTIONS: dict[str, DecisionKind] = {"Apply": "apply", "Defer": "defer", "Dismiss": "dismiss"}
FIELDS: tuple[DecisionKind, ...] = ("apply", "defer", "dismiss")
_MAX_ROWS = 60  # the body stays readable; the rest are in recommendations.json


def ref(n: int) -> str:
    return f"R{n}"


def _money(x: float) -> str:
    return f"${x:,.2f}"


def _config(d: dict[str, Any]) -> str:
    if "instance_type" in d:
        return str(d["instance_type"])
    if "volume_type" in d:
        return f"{d['volume_type']} {d.get('size_gib', '')} GiB".strip()
    return ", ".join(f"{k}={v}" for k, v in d.items() if k in ("state", "status", "public_ip", "age_days")) or "-"


def _cell(text: Any, limit: int = 80) -> str:
    # Values come from AWS tags: keep them from breaking the Markdown table.
    return re.sub(r"[|\n\r`]", " ", str(text))[:limit]


def review_markdown(summary: dict[str, Any]) -> str:
    recs = summary["recommendations"]
    total = sum(r["monthly_savings_usd"] for r in recs)
    lines = [
        f"### {len(recs)} recommendation(s), {_money(total)} per month",
        f"Right-sizing of {summary['day']} over the last {summary['lookback_days']} days of metrics. "
        f"Prices: {summary['price_table']}. {summary['suppressed_count']} recommendation(s) hidden by earlier "
        "decisions (dismissed or being applied).",
        "",
        "**Choose** Apply / Defer / Dismiss for every recommendation you do not list, and list refs "
        "(`R1, R3` or `all`) in the apply / defer / dismiss fields for individual choices. Apply starts one "
        "`remediate` run per recommendation (its runbook's approvers still approve it); Dismiss hides it for "
        f"{summary['dismiss_days']} days; Defer asks again tomorrow.",
        "",
        "| ref | resource | service / env / team | action | now | recommended | $/month saved | confidence | evidence | runbook |",
        "|---|---|---|---|---|---|---:|---|---|---|",
    ]
    for n, r in enumerate(recs[:_MAX_ROWS], 1):
        ev = r["evidence"]
        key_ev = "; ".join(f"{k}={v}" for k, v in ev.items()
                           if k not in ("note", "rule", "method", "utilization") and v not in (None, [], ""))
        shown_id = r["resource_id"].rsplit(":loadbalancer/", 1)[-1]  # an ALB ARN's readable tail
        lines.append(
            f"| {ref(n)} | `{_cell(shown_id)}` {_cell(r['name'])} | {_cell(r['service'])} / "
            f"{_cell(r['env'])} / {_cell(r['team'])} | {r['action']} | {_cell(_config(r['current']))} | "
            f"{_cell(_config(r['recommended']))} | {_money(r['monthly_savings_usd'])} | {r['confidence']} | "
            f"{_cell(key_ev, 120)} | {r['runbook'] or 'manual'} |")
    if len(recs) > _MAX_ROWS:
        lines.append(f"\n{len(recs) - _MAX_ROWS} more in `{summary['key']}`.")
    return "\n".join(lines)


def _resolve(text: str, recs: list[Recommendation]) -> set[int]:
    """Indexes (0-based) named by ``R1, R3`` / ``all`` / full recommendation ids; unknown refs raise."""
    text = (text or "").strip()
    if not text:
        return set()
    if text.lower() == "all":
        return set(range(len(recs)))
    ids = {r.id: i for i, r in enumerate(recs)}
    out: set[int] = set()
    for token in re.split(r"[,\s]+", text):
        if not token:
            continue
        m = re.fullmatch(r"[Rr](\d+)", token)
        if m and 1 <= int(m.group(1)) <= len(recs):
            out.add(int(m.group(1)) - 1)
        elif token in ids:
            out.add(ids[token])
        else:
            raise ValueError(f"unknown recommendation {token!r} (refs R1..R{len(recs)} or ids)")
    return out


def decisions_from_answer(chosen: list[str], params_input: dict[str, Any] | None,
                          recs: list[Recommendation]) -> list[RecommendationDecision]:
    """One decision per recommendation; a recommendation listed in two fields is an error (the
    approver must say one thing)."""
    if not chosen or chosen[0] not in OPTIONS:
        raise ValueError(f"expected one of {sorted(OPTIONS)}, got {chosen}")
    default = OPTIONS[chosen[0]]
    params_input = params_input or {}
    picked: dict[int, DecisionKind] = {}
    for name in FIELDS:
        for i in _resolve(str(params_input.get(name) or ""), recs):
            if i in picked and picked[i] != name:
                raise ValueError(f"{ref(i + 1)} is listed under both {picked[i]} and {name}")
            picked[i] = name
    return [RecommendationDecision(decision=picked.get(i, default), recommendation=r, ref=ref(i + 1))
            for i, r in enumerate(recs)]
