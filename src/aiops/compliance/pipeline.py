"""What ``compliance_sweep``'s tasks do (testable without Airflow).

1. :func:`collect_inventory` — collectors -> ``compliance/inventory/dt=<day>/<sweep>.json``.
2. :func:`evaluate_sweep` — checks + exceptions, diff vs the previous sweep, results with history
   in the state store, ``compliance/results/dt=<day>/<sweep>.json`` (results, diff, fix requests).
3. :func:`publish_findings` — ASFF into Security Hub; resolved/gone findings archived.
4. :func:`gather_external` — AWS Config rule compliance, other products' findings.
5. :func:`build_summary` / :func:`send_summary` — the email (stored first; a retry re-sends the same bytes).

Keyed by ``sweep_id`` (the account and the run's logical time): a retry or backfill rewrites, never
duplicates; the previous sweep a diff compares with is the same account's.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from aiops.account.permissions import permissions
from aiops.compliance import asff, external, history, registry, summary
from aiops.compliance import collect as collectors
from aiops.compliance.exceptions import apply_exceptions, load_exceptions_lenient
from aiops.compliance.fixes import remediation_requests
from aiops.compliance.model import Inventory, Result
from aiops.core import aws
from aiops.core.artifacts import ArtifactStore
from aiops.core.reporting import send_stored_report, store_report
from aiops.core.settings import get_settings
from aiops.core.state import StateStore

PERMISSIONS = permissions("the sweep's steps (calls are in collect/external/asff); only a client's region here")

log = logging.getLogger(__name__)
DOMAIN = "compliance"


def sweep_id_of(as_of: datetime, account_id: str) -> str:
    """``<account>-<logical time>``: a retry or backfill of the same run rewrites its sweep; another
    account swept at the same time has its own (revision 0003 migrated the older, time-only ids)."""
    return f"{account_id}-{as_of.astimezone(UTC).strftime('%Y-%m-%dT%H%M%SZ')}"


def _as_of(value: datetime | str) -> datetime:
    ts = datetime.fromisoformat(value) if isinstance(value, str) else value
    return ts if ts.tzinfo else ts.replace(tzinfo=UTC)


def collect_inventory(as_of: datetime | str, regions: list[str] | None = None) -> dict[str, Any]:
    as_of = _as_of(as_of)
    inv = collectors.collect(regions=regions, as_of=as_of)
    sweep_id = sweep_id_of(as_of, inv.account_id)
    key = ArtifactStore.key(DOMAIN, "inventory", as_of, f"{sweep_id}.json")
    ArtifactStore().put_json(key, inv.to_dict())
    n = sum(len(v) for v in inv.records.values())
    log.info("Collected %d records of %d kinds in %s (errors: %s)", n, len(inv.records), inv.regions,
             inv.errors or "none")
    return {"sweep_id": sweep_id, "as_of": as_of.isoformat(), "inventory_key": key, "records": n,
            "errors": inv.errors}


def evaluate_sweep(collected: dict[str, Any], *, run_id: str | None = None,
                   remediate_all_fixable: bool = False) -> dict[str, Any]:
    s = get_settings()
    as_of = _as_of(collected["as_of"])
    sweep_id = collected["sweep_id"]
    store, state = ArtifactStore(), StateStore()
    inv = Inventory.from_dict(store.get_json(collected["inventory_key"]))
    results, errors = registry.run_checks(inv, disabled=s.compliance_disabled_checks)
    exceptions, bad_entries = load_exceptions_lenient(known_checks=registry.checks())
    for problem in bad_entries:
        log.error("accepted-risk exception ignored: %s", problem)
        errors[f"exceptions.yaml#{len(errors)}"] = problem
    results = apply_exceptions(results, exceptions, as_of)
    prev_id = history.previous_sweep(state, as_of, inv.account_id)
    previous = history.sweep_results(state, prev_id) if prev_id else None
    # checks that could not run this time keep their last results, marked not evaluated (partial sweep)
    not_evaluated = {cid: why for cid, why in errors.items() if cid in registry.checks()}
    results = history.carry_forward(results, previous, not_evaluated)
    partial = history.partial(results, errors)
    if partial:
        log.warning("Partial sweep %s: %d check(s) not evaluated (%s); their %d previous result(s) carried "
                    "forward, nothing of theirs is resolved or archived", sweep_id, len(not_evaluated),
                    ", ".join(sorted(not_evaluated)), sum(1 for r in results if r.not_evaluated))
    d = history.diff(previous, results)
    history.record_sweep(state, sweep_id=sweep_id, as_of=as_of, account_id=inv.account_id, regions=inv.regions,
                         results=results, errors=errors, sweep_diff=d, run_id=run_id)
    attention = {r.key for r in d.new + d.regressed}
    fixes = remediation_requests([r for r in results if not r.not_evaluated], inv,
                                 only=None if remediate_all_fixable else attention)
    key = ArtifactStore.key(DOMAIN, "results", as_of, f"{sweep_id}.json")
    store.put_json(key, {"sweep_id": sweep_id, "previous_sweep_id": prev_id, "account_id": inv.account_id,
                         "partition": inv.partition, "as_of": as_of.isoformat(),
                         "results": [r.to_dict() for r in results], "errors": errors, "diff": d.counts(),
                         "partial": partial, "fixes": fixes})
    c = history.counts(results)
    log.info("Sweep %s: %d results (%s), diff vs %s: %s, %d check(s) not evaluated, %d fix request(s) offered",
             sweep_id, len(results), c, prev_id or "nothing", d.counts(), len(errors), len(fixes))
    return {"sweep_id": sweep_id, "as_of": as_of.isoformat(), "results_key": key, "previous_sweep_id": prev_id,
            "counts": c, "diff": d.counts(), "score": history.score(results), "errors": errors,
            "partial": partial, "fixes": fixes}


def _load(evaluated: dict[str, Any]) -> tuple[dict[str, Any], list[Result]]:
    doc = ArtifactStore().get_json(evaluated["results_key"])
    return doc, [Result.from_dict(r) for r in doc["results"]]


def publish_findings(evaluated: dict[str, Any], region: str | None = None) -> dict[str, Any]:
    if not get_settings().compliance_securityhub_import:
        return {"imported": 0, "failed": [], "skipped": "compliance_securityhub_import is off"}

    doc, results = _load(evaluated)
    region = region or aws.client("securityhub").meta.region_name
    state = StateStore()
    previous = history.sweep_results(state, doc["previous_sweep_id"]) if doc["previous_sweep_id"] else None
    findings = asff.plan_findings(results, previous, account_id=doc["account_id"], region=region,
                                  partition=doc["partition"], as_of=_as_of(doc["as_of"]))
    out = asff.import_findings(findings, region=region)
    if out.get("skipped"):
        log.warning("Findings not imported: %s", out["skipped"])
        return {**out, "archived": 0, "planned": len(findings)}
    workflow = asff.apply_workflow_updates(asff.workflow_updates(
        results, previous, account_id=doc["account_id"], region=region, partition=doc["partition"],
        as_of=_as_of(doc["as_of"])), region=region)
    if workflow.get("skipped"):
        log.warning("Workflow updates of suppressed/unsuppressed findings skipped: %s", workflow["skipped"])
    archived = sum(f["RecordState"] == "ARCHIVED" for f in findings)
    log.info("Security Hub: %d finding(s) imported (%d archived), %d failed", out["imported"], archived,
             len(out["failed"]))
    if out["failed"]:
        raise RuntimeError(f"Security Hub refused {len(out['failed'])} finding(s): {out['failed'][:3]}")
    return {**out, "archived": archived, "planned": len(findings), "workflow": workflow}


def gather_external(regions: list[str] | None = None) -> dict[str, Any]:
    """AWS Config non-compliance and other products' findings, merged over ``regions`` (default: settings)."""
    s = get_settings()
    out: dict[str, Any] = {}
    for name, fetch in (("config", lambda r: external.config_noncompliant(r, mode=s.compliance_config_rules)),
                        ("securityhub", external.other_findings)):
        parts = {r: fetch(r) for r in regions or s.regions}
        items = [{**i, "region": r} for r, p in parts.items() for i in p["items"]]
        out[name] = {"enabled": any(p["enabled"] for p in parts.values()), "items": items,
                     "note": "; ".join(f"{r}: {p['note']}" for r, p in parts.items())}
    return out


def build_summary(evaluated: dict[str, Any], external_data: dict[str, Any] | None = None,
                  run_id: str | None = None) -> dict[str, Any]:
    s = get_settings()
    doc, results = _load(evaluated)
    as_of = _as_of(doc["as_of"])
    state = StateStore()
    prev = history.sweep_results(state, doc["previous_sweep_id"]) if doc["previous_sweep_id"] else None
    d = history.diff(prev, results)
    trend = history.trend(state, as_of)
    region = aws.client("securityhub").meta.region_name
    store = ArtifactStore()
    report_key = store.key(DOMAIN, "reports", as_of, "report.html")
    m = summary.summary_model(results=results, sweep_diff=d, trend=trend, errors=doc["errors"], as_of=as_of,
                              account_id=doc["account_id"], region=region, external=external_data,
                              report_link=store.uri(report_key), partial=doc.get("partial"))
    png = summary.trend_png(m["trend"])
    images = {"trend": png} if png else {}
    stored = store_report(DOMAIN, "reports", as_of, subject=summary.title(m), text=summary.render_text(m),
                          render_html=lambda src: summary.render_html(m, {"trend": src.get("trend")}),
                          images=images, recipients=s.compliance_report_recipients, run_id=run_id)
    return {**stored, "score": m["score"], "diff": m["diff"]}


def send_summary(stored: dict[str, Any], resend: bool | None = None) -> dict[str, Any]:
    return send_stored_report(stored, resend=resend)
