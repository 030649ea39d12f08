"""The emailed compliance summary (HTML + plain text) for the security list.

Order of reading: posture score and trend; new and regressed failures; resolved; failures by CIS
section and by severity; top risky resources; fixable failures with their runbook; suppressed
(accepted-risk) results; what AWS Config and other Security Hub products report; checks not
evaluated. Every AWS-derived string goes through Jinja autoescaping (HTML) — a bucket name or tag
value holding markup is shown, never interpreted.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Mapping
from datetime import datetime
from typing import Any
from urllib.parse import quote

from aiops.compliance.history import SweepDiff, counts, score
from aiops.compliance.history import partial as is_partial
from aiops.compliance.model import SEVERITY_ORDER, Result
from aiops.compliance.registry import checks
from aiops.core.reporting import figure, figure_png, render_template

SEVERITY_WEIGHT = {"CRITICAL": 40, "HIGH": 10, "MEDIUM": 3, "LOW": 1, "INFORMATIONAL": 0}


def _row(r: Result) -> dict[str, Any]:
    meta = checks()[r.check_id].meta
    return {"check_id": r.check_id, "title": meta.title, "severity": meta.severity,
            "cis": ", ".join(meta.cis) or "-", "resource": r.resource_name or r.resource_id,
            "resource_id": r.resource_arn or r.resource_id, "region": r.region, "reason": r.reason,
            "runbook": meta.runbook, "suppressed": r.suppressed or "", "risk_tag_ignored": r.risk_tag_ignored or "",
            "tags": ", ".join(f"{k}={v}" for k, v in sorted(r.tags.items()))}


def _sorted(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(rows, key=lambda x: (SEVERITY_ORDER.get(x["severity"], 9), x["check_id"], x["resource"]))


def securityhub_link(region: str, check_id: str | None = None) -> str:
    query = "GeneratorId%3D" + quote(f"matcarv-aiops/compliance/{check_id}", safe="") if check_id else ""
    return f"https://console.aws.amazon.com/securityhub/home?region={region}#/findings?search={query}"


def summary_model(*, results: list[Result], sweep_diff: SweepDiff, trend: list[dict[str, Any]],
                  errors: dict[str, str], as_of: datetime, account_id: str, region: str,
                  external: dict[str, Any] | None = None, report_link: str | None = None,
                  top_n: int = 10, partial: bool | None = None) -> dict[str, Any]:
    """Everything the templates show (pure). ``partial`` (default: derived from ``errors`` and the
    results): some checks were not evaluated; their last results are carried forward and listed."""
    partial = is_partial(results, errors) if partial is None else partial
    failed = [r for r in results if r.effective == "FAILED"]
    by_section: Counter[str] = Counter()
    by_severity: Counter[str] = Counter()
    risk: dict[str, dict[str, Any]] = defaultdict(lambda: {"score": 0, "checks": [], "resource": "", "type": ""})
    for r in failed:
        meta = checks()[r.check_id].meta
        by_section[meta.cis_section] += 1
        by_severity[meta.severity] += 1
        entry = risk[r.key[1]]
        entry["score"] += SEVERITY_WEIGHT[meta.severity]
        entry["checks"].append(r.check_id)
        entry["resource"] = r.resource_name or r.resource_id
        entry["type"] = r.resource_type
    top = sorted(risk.values(), key=lambda e: (-e["score"], e["resource"]))[:top_n]
    current = score(results)
    previous = trend[-2]["score"] if len(trend) >= 2 else None
    return {
        "as_of": f"{as_of:%Y-%m-%d %H:%M} UTC", "account_id": account_id,
        "score": current, "score_text": "n/a" if current is None else f"{current:.1%}",
        "score_change": None if previous is None or current is None else current - previous,
        "trend": [{"as_of": str(t["as_of"])[:10], "score": t["score"]} for t in trend],
        "counts": counts(results), "diff": sweep_diff.counts(),
        "new": _sorted([_row(r) for r in sweep_diff.new + sweep_diff.regressed]),
        "resolved": _sorted([{**_row(x["result"]), "now": x["now"]} for x in sweep_diff.resolved]),
        "by_section": sorted(by_section.items()),
        "by_severity": sorted(by_severity.items(), key=lambda kv: SEVERITY_ORDER[kv[0]]),
        "top_resources": top,
        "fixable": _sorted([_row(r) for r in failed if checks()[r.check_id].meta.runbook]),
        "suppressed": _sorted([_row(r) for r in results if r.effective == "SUPPRESSED"]),
        "risk_tags_ignored": _sorted([_row(r) for r in failed if r.risk_tag_ignored]),
        "external": {"config": (external or {}).get("config"), "securityhub": (external or {}).get("securityhub")},
        "errors": sorted(errors.items()), "partial": bool(partial),
        "not_evaluated": _sorted([{**_row(r), "why": r.not_evaluated} for r in results
                                  if r.not_evaluated and r.effective == "FAILED"]),
        "links": {"security_hub": securityhub_link(region), "report": report_link or ""},
    }




def render_html(m: dict[str, Any], images: Mapping[str, str | None] | None = None) -> str:
    return render_template("compliance/summary.html", m=m, img=images or {"trend": None}, title=title(m))


def title(m: dict[str, Any]) -> str:
    return (f"{'[PARTIAL] ' if m.get('partial') else ''}Compliance summary {m['as_of'][:10]}: "
            f"{m['score_text']} compliant, "
            f"{m['diff']['new'] + m['diff']['regressed']} new failure(s), {m['diff']['resolved']} resolved")


def render_text(m: dict[str, Any]) -> str:
    lines = [title(m), f"Account {m['account_id']}, sweep of {m['as_of']}", ""]
    change = "" if m["score_change"] is None else f" ({m['score_change'] * 100:+.1f} points)"
    lines.append(f"Posture score: {m['score_text']} of checks passing{change}; results failing {m['counts']['FAILED']}, passing "
                 f"{m['counts']['PASSED']}, accepted risk {m['counts']['SUPPRESSED']}")
    if m["trend"]:
        lines.append("Trend: " + "  ".join(
            f"{t['as_of']} {'n/a' if t['score'] is None else format(t['score'], '.1%')}" for t in m["trend"]))
    d = m["diff"]
    lines += ["", f"Since the previous sweep: {d['new']} new, {d['regressed']} regressed, {d['resolved']} resolved, "
              f"{d['still_failing']} still failing", "", "NEW AND REGRESSED FAILURES"]
    lines += [f"  [{r['severity']}] {r['check_id']} (CIS {r['cis']}) {r['resource']} ({r['region']}): {r['reason']}"
              + (f" -> runbook {r['runbook']}" if r["runbook"] else "") for r in m["new"]] or ["  none"]
    lines += ["", "RESOLVED"]
    lines += [f"  [{r['severity']}] {r['check_id']} {r['resource']}: now {r['now']}" for r in m["resolved"]] or ["  none"]
    lines += ["", "FAILURES BY CIS SECTION"] + [f"  {name}: {n}" for name, n in m["by_section"]]
    lines += ["", "FAILURES BY SEVERITY"] + [f"  {name}: {n}" for name, n in m["by_severity"]]
    lines += ["", "TOP RISKY RESOURCES"] + [f"  {e['resource']} ({e['type']}): score {e['score']}, "
                                            f"{', '.join(e['checks'])}" for e in m["top_resources"]]
    lines += ["", "FIXABLE WITH A RUNBOOK"] + [f"  {r['check_id']} {r['resource']} -> {r['runbook']}"
                                               for r in m["fixable"]]
    lines += ["", "ACCEPTED RISK"] + ([f"  {r['check_id']} {r['resource']}: {r['suppressed']}"
                                      for r in m["suppressed"]] or ["  none"])
    if m.get("risk_tags_ignored"):
        lines += ["", "ACCEPTED-RISK TAGS NOT HONOURED (still failed)"] + [
            f"  {r['check_id']} {r['resource']}: {r['risk_tag_ignored']}" for r in m["risk_tags_ignored"]]
    for name in ("config", "securityhub"):
        ext = m["external"].get(name)
        if ext:
            lines += ["", {"config": "AWS CONFIG", "securityhub": "OTHER SECURITY HUB FINDINGS"}[name], f"  {ext['note']}"]
    if m["errors"]:
        lines += ["", "NOT EVALUATED" + (" (partial sweep: last results carried forward, none resolved)"
                                         if m.get("partial") else "")]
        lines += [f"  {cid}: {why}" for cid, why in m["errors"]]
        lines += [f"  still failing at last evaluation: [{r['severity']}] {r['check_id']} {r['resource']}"
                  for r in m.get("not_evaluated", [])]
    lines += ["", f"Security Hub: {m['links']['security_hub']}"]
    if m["links"]["report"]:
        lines.append(f"Report: {m['links']['report']}")
    return "\n".join(lines) + "\n"


def trend_png(trend: list[dict[str, Any]]) -> bytes | None:
    points = [(t["as_of"], t["score"]) for t in trend if t["score"] is not None]
    if len(points) < 2:
        return None

    fig = figure(8, 2.2)
    ax = fig.add_subplot(1, 1, 1)
    ax.plot([p[0] for p in points], [p[1] * 100 for p in points], marker="o")
    ax.set_ylabel("% compliant")
    ax.set_ylim(0, 100)
    ax.grid(alpha=0.3)
    fig.autofmt_xdate()
    return figure_png(fig)
