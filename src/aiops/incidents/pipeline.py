"""The ``incident_response`` DAG's steps as plain functions (each idempotent per run).

    ids  = incident_ids(asset events | conf)
    triage(id)            -> evidence stored + linked, detected -> triaged, the chosen runbook
    start_remediations()  -> triaged -> remediating (remediate confs) | escalated (no runbook)
    [remediate DAG runs: plan, approval unless pre-approved, SSM execution, its own verify]
    check_recovery(d)     -> outcome of remediate + metric back in band -> resolved | escalated
    write_postmortem(id)  -> Markdown + HTML, linked; MTTR / time to detect on the row

Idempotency: every transition carries the key ``<run_id>:<step>`` so an Airflow retry is a no-op,
and a second run for the same incident finds it past ``detected`` and does not remediate twice.
"""

from __future__ import annotations

import hashlib
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from aiops.core.artifacts import ArtifactStore
from aiops.incidents import postmortem, runbook_rules
from aiops.incidents import store as incidents
from aiops.incidents.model import RecoveryResult, TriageDecision
from aiops.incidents.triage import SNAPSHOT_BEFORE, gather_evidence, metric_snapshot
from aiops.remediation.preapproval import decide_for_incident, record_grant

log = logging.getLogger(__name__)

ACTOR = "incident_response"
TERMINAL_REQUEST = {"succeeded", "rejected", "rejected_by_guard", "not_executed_timeout", "execution_failed",
                    "verification_failed", "dry_run"}


def incident_ids(events_extra: list[dict[str, Any]], conf_incident_id: str | None) -> list[str]:
    """Ids from the INCIDENTS asset events (``extra.incident_ids``) or the manual conf, de-duplicated."""
    ids: list[str] = [conf_incident_id] if conf_incident_id else []
    for extra in events_extra:
        ids.extend(str(i) for i in (extra or {}).get("incident_ids") or [])
    return list(dict.fromkeys(ids))


def evidence_key(incident: dict[str, Any]) -> str:
    return ArtifactStore.key("incidents", "evidence", incident["first_seen"], f"{incident['incident_id']}.json")


def triage(incident_id: str, *, run_id: str) -> dict[str, Any]:
    """Gather and store the evidence, move detected -> triaged; returns the decision for this run
    (:class:`~aiops.incidents.model.TriageDecision` as JSON: the task's XCom)."""
    incident = incidents.get(incident_id)
    base = {"incident_id": incident_id, "title": incident["title"], "run_id": run_id}
    if incident["state"] not in ("detected", "triaged"):
        log.info("%s is %s: already handled, nothing to triage", incident_id, incident["state"])
        return TriageDecision(**base, action="skip", state=incident["state"]).to_xcom()
    log.info("triage %s (%s): gathering evidence", incident_id, incident["title"])
    evidence = gather_evidence(incident, open_incidents=incidents.list_open())
    key = evidence_key(incident)
    ArtifactStore().put_json(key, evidence)
    matches = evidence["runbooks"] if isinstance(evidence["runbooks"], list) else []
    metric = evidence.get("metric") or {}
    summary = (f"evidence: {metric.get('outside_band', 0)} metric point(s) outside band, "
               f"{(evidence.get('logs') or {}).get('errors', 0)} error log line(s), "
               f"{(evidence.get('changes') or {}).get('total', 0)} recent change(s); "
               f"runbooks: {', '.join(m['runbook'] for m in matches) or 'none match'}")
    if incident["state"] == "detected":
        incidents.transition(incident_id, "triaged", actor=ACTOR, reason=summary, run_id=run_id,
                             links={"evidence": key}, key=f"{run_id}:triaged")
    else:
        incidents.add_links(incident_id, {"evidence": key}, actor=ACTOR, reason="evidence refreshed", run_id=run_id)
    log.info("%s triaged: %s", incident_id, summary)
    if not matches:
        return TriageDecision(**base, action="escalate", evidence=key,
                              reason="no runbook in include/incidents/runbooks.yaml matches the incident's "
                                     "signals").to_xcom()
    return TriageDecision(**base, action="remediate", match=matches[0], evidence=key,
                          primary_signal=evidence.get("primary_signal")).to_xcom()


def trigger_run_id(incident_id: str, run_id: str) -> str:
    return f"incident__{incident_id}__{hashlib.sha1(run_id.encode()).hexdigest()[:10]}"


def start_remediations(decisions: list[dict[str, Any]], *, run_id: str) -> list[dict[str, Any]]:
    """triaged -> remediating for those with a runbook (returns TriggerDagRunOperator kwargs),
    triaged -> escalated for those without."""
    out = []
    for decision in map(TriageDecision.model_validate, decisions):  # triage's XCom, validated where read
        incident_id = decision.incident_id
        if decision.action == "escalate":
            incidents.transition(incident_id, "escalated", actor=ACTOR, reason=decision.reason or "no runbook",
                                 run_id=run_id, key=f"{run_id}:escalated")
            continue
        if decision.action != "remediate" or decision.match is None:
            continue
        incident = incidents.get(incident_id)
        match = decision.match
        remediate_run = trigger_run_id(incident_id, run_id)
        # pre-approved only for a verified, current cause (else remediate asks for an approval)
        preapproval = decide_for_incident(incident, match) if incident["state"] == "triaged" else None
        policy = match["approval"] if preapproval is None else preapproval.summary
        try:
            incidents.transition(
                incident_id, "remediating", actor=ACTOR, run_id=run_id, key=f"{run_id}:remediating",
                reason=f"runbook {match['runbook']} ({policy}) via rule {match['rule']}: {match['parameters']}",
                links={"remediate_run": f"remediate/{remediate_run}"})
        except incidents.IllegalTransition as exc:  # a concurrent run got there first: it owns the remediation
            log.info("%s: not remediating from this run (%s)", incident_id, exc)
            continue
        if preapproval is not None:
            record_grant(preapproval, match, remediate_run=remediate_run, run_id=run_id)
            log.info("%s: %s", incident_id, preapproval.summary)
        out.append({"trigger_run_id": remediate_run, "conf": runbook_rules.remediate_conf(incident, match, run_id=run_id)})
        log.info("%s: remediate run %s requested (%s)", incident_id, remediate_run, match["runbook"])
    return out


def _execution_end(request: dict[str, Any]) -> datetime:
    execution = ((request.get("outcome") or {}).get("execution") or {})
    for field in ("end_time", "ExecutionEndTime", "end"):
        if execution.get(field):
            value = execution[field]
            return value if isinstance(value, datetime) else datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    updated = request["updated_at"]
    return updated if updated.tzinfo else updated.replace(tzinfo=UTC)


def _finish(incident_id: str, to_state: str, *, reason: str, run_id: str) -> str:
    """resolved / escalated; a concurrent finisher wins quietly (the outcome is its state)."""
    try:
        incidents.transition(incident_id, to_state, actor=ACTOR, reason=reason, run_id=run_id,
                             key=f"{run_id}:{to_state}")
    except incidents.IllegalTransition:
        return str(incidents.get(incident_id)["state"])
    return to_state


def _result(decision: TriageDecision, **fields: Any) -> dict[str, Any]:
    """check_recovery's XCom: the decision as it came, plus the outcome (and why)."""
    return RecoveryResult.model_validate({**decision.to_xcom(), **fields}).to_xcom()


def check_recovery(raw_decision: dict[str, Any], *, run_id: str,
                   now: datetime | None = None) -> dict[str, Any] | None:
    """After remediate finished: resolved when it succeeded and the signal is back in its band;
    escalated when it did not run / was rejected / failed or the signal stays out past the runbook's
    ``within_minutes``. None means 'not yet' (the sensor pokes again). Returns a
    :class:`~aiops.incidents.model.RecoveryResult` as JSON."""
    decision = TriageDecision.model_validate(raw_decision)  # triage's XCom, validated where read
    if decision.action != "remediate" or decision.match is None:
        return _result(decision, outcome=decision.action)
    now = now or datetime.now(UTC)
    incident_id = decision.incident_id
    incident = incidents.get_incident(incident_id)
    if incident.state in ("resolved", "escalated"):
        return _result(decision, outcome=incident.state)
    if incident.links.get("remediate_run") != f"remediate/{trigger_run_id(incident_id, run_id)}":
        log.info("%s: its remediation belongs to another incident_response run", incident_id)
        return _result(decision, outcome="handled_elsewhere")
    request = runbook_rules.latest_request(incident_id)
    status = (request or {}).get("status")
    if request is not None and status not in TERMINAL_REQUEST and not str(status).startswith("incomplete"):
        log.info("%s: remediate request %s is %s; waiting", incident_id, request["request_id"], status)
        return None
    if status != "succeeded":
        approvals = ", ".join(f"{a.get('user')}: {a.get('decision')}" for a in (request or {}).get("approvals") or [])
        reason = (f"remediation {status or 'never started'}" + (f" ({approvals})" if approvals else "")
                  + f"; runbook {decision.match['runbook']} - a human takes over")
        return _result(decision, outcome=_finish(incident_id, "escalated", reason=reason, run_id=run_id),
                       reason=reason)
    match = decision.match
    verification: dict[str, Any] = {"ok": True, "reason": "runbook has no metric check; remediate verified it"}
    if match["verify"]["metric_back_in_band"] and decision.primary_signal:
        since = _execution_end(request)  # type: ignore[arg-type]
        verification = runbook_rules.back_in_band(decision.primary_signal, since=since, incident_start=incident.first_seen,
                                    now=now)
        if not verification["ok"]:
            deadline = since + timedelta(minutes=match["verify"]["within_minutes"])
            if now < deadline:
                log.info("%s: not back in band yet (%s); waiting until %s", incident_id, verification["reason"],
                         f"{deadline:%H:%M:%S}")
                return None
            reason = f"verification failed: {verification['reason']} {match['verify']['within_minutes']} min after the fix"
            return _result(decision, outcome=_finish(incident_id, "escalated", reason=reason, run_id=run_id),
                           reason=reason, verification=verification)
    reason = (f"{match['runbook']} succeeded (request {request['request_id']}, "  # type: ignore[index]
              f"remediate run {request['run_id']}); {verification['reason']}")  # type: ignore[index]
    return _result(decision, outcome=_finish(incident_id, "resolved", reason=reason, run_id=run_id),
                   verification=verification)


def write_postmortem(raw_result: dict[str, Any], *, run_id: str) -> dict[str, Any] | None:
    result = RecoveryResult.model_validate(raw_result)  # check_recovery's XCom, validated where read
    if result.outcome != "resolved":
        return None
    incident_id = result.incident_id
    evidence = ArtifactStore().get_json(result.evidence) if result.evidence else {}
    primary = (evidence or {}).get("primary_signal")
    if primary:  # re-read the metric through the recovery, so the plot shows it back in its band

        incident = incidents.get(incident_id)
        evidence["metric_at_triage"] = evidence.get("metric")  # what the timeline's 'triaged' entry quotes
        try:
            evidence["metric"] = metric_snapshot(primary, incident["first_seen"] - SNAPSHOT_BEFORE,
                                                 datetime.now(UTC) + timedelta(minutes=5),
                                                 incident_start=incident["first_seen"])
        except Exception as exc:  # the triage-time snapshot is still there
            log.warning("%s: could not refresh the metric for the post-mortem: %s", incident_id, exc)
    written = postmortem.write(incident_id, evidence=evidence, verification=result.verification)
    incidents.add_links(incident_id, {"postmortem_md": written["markdown"], "postmortem_html": written["html"]},
                        actor=ACTOR, reason="post-mortem written", run_id=run_id)
    d = written["durations"]
    log.info("%s post-mortem at %s (MTTR %s s, time to detect %s s)", incident_id, written["html"], d["mttr"],
             d["time_to_detect"])
    return written
