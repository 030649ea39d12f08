"""Fill the platform's stores from the simulated account by running the platform's own steps.

Used by the console's browser tests, its benchmark and the screenshots: the pages then show what
the DAGs would have stored after ``days`` of operation. Every step is the product's pipeline code
(metrics extract, logs/traces collection, anomaly scoring, SLO evaluation, the cost report, two
compliance sweeps, alert intake -> incident -> triage -> post-mortem) against the emulator at the
default AWS connection; two things are *recorded* the way their DAGs record them because running
those DAGs needs a scheduler and a human: a remediation that ran for the surge incident (with its
approver and execution id) and one request still waiting for approval.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


def _say(progress: Callable[[str], None] | None, msg: str) -> None:
    (progress or log.info)(msg)


def populate(manifest_path: Path, *, days: int = 14, score_days: int | None = None, collect_days: int | None = None,
             score_services: list[str] | None = None, cost_days: int = 1, sweeps: int = 2,
             progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Run the pipelines over the last ``days`` before the manifest's anchor; returns timings and ids.

    ``score_services`` limits anomaly scoring to those services' series (all when None): scoring
    is the slow step, over the last ``score_days`` (default: up to 7). ``cost_days`` daily cost
    reports end at the anchor's previous day; ``sweeps`` compliance sweeps (the last at the anchor).
    ``collect_days`` limits logs and traces collection to the last days (default: all ``days``).
    """
    from aiops.core.artifacts import ArtifactStore
    from aiops.core.state import StateStore
    from aiops.metrics import pipeline as metrics

    manifest = json.loads(Path(manifest_path).read_text())
    anchor = datetime.fromisoformat(manifest["anchor"].replace("Z", "+00:00"))
    start = anchor - timedelta(days=days)
    collect_start = anchor - timedelta(days=collect_days or days)
    timings: dict[str, float] = {}
    out: dict[str, Any] = {"anchor": anchor.isoformat(), "timings": timings}
    state = StateStore()
    state.migrate()

    def step(name: str, fn: Callable[[], Any]) -> Any:
        t0 = time.monotonic()
        result = fn()
        timings[name] = round(time.monotonic() - t0, 1)
        _say(progress, f"  {name}: {timings[name]}s")
        return result

    # metrics: the DAG's steps over an explicit backfill range
    def extract() -> dict[str, Any]:
        chunks = metrics.plan(anchor - timedelta(minutes=15), anchor,
                              {"start": start.isoformat(), "end": anchor.isoformat()})
        key = metrics.discover()["key"]
        return metrics.publish([metrics.extract_chunk(c, key) for c in chunks])

    step("metrics_extract", extract)

    def logs() -> dict[str, Any]:
        from aiops.logs import pipeline as logs_pipeline

        chunks = logs_pipeline.plan(anchor - timedelta(minutes=15), anchor,
                                    {"start": collect_start.isoformat(), "end": anchor.isoformat()})
        return logs_pipeline.publish([logs_pipeline.collect_chunk(c) for c in chunks])

    step("logs_collect", logs)

    def traces() -> Any:
        from aiops.traces import pipeline as traces_pipeline

        chunks = traces_pipeline.plan(anchor - timedelta(minutes=15), anchor,
                                      {"start": collect_start.isoformat(), "end": anchor.isoformat()})
        return traces_pipeline.publish([traces_pipeline.collect_chunk(c) for c in chunks])

    step("traces_collect", traces)

    # anomaly detection (quiet history: no alerts emitted), optionally on some services only
    def score() -> list[dict[str, Any]]:
        from aiops.anomaly import pipeline as anomaly

        store = ArtifactStore()
        refs = store.get_json(metrics.SERIES_KEY)
        if score_services is not None:
            store.put_json(metrics.SERIES_KEY, [r for r in refs if r.get("tags", {}).get("service")
                                                in score_services])
        try:
            score_start = anchor - timedelta(days=score_days or min(days, 7))
            tasks = anomaly.plan([], {"start": score_start.isoformat(), "end": anchor.isoformat(),
                                      "emit_alerts": False}, anchor)
            return [anomaly.score_batch(t) for t in tasks]
        finally:
            store.put_json(metrics.SERIES_KEY, refs)

    step("anomaly_detection", score)

    def slo() -> dict[str, Any]:
        from aiops.slo import pipeline as slo_pipeline

        return slo_pipeline.record({"start": (anchor - timedelta(days=min(days, 7))).isoformat(),
                                    "end": anchor.isoformat(), "emit_alerts": False})

    step("slo_tracking", slo)

    def cost() -> list[str]:
        from aiops.cost.report import build_report

        return [build_report((anchor - timedelta(days=i)).date())["day"] for i in range(cost_days, 0, -1)]

    step("cost_report", cost)

    def compliance() -> list[Any]:
        from aiops.compliance import pipeline as cp

        ids = []
        for at in [anchor - timedelta(days=i) for i in range(sweeps - 1, -1, -1)]:
            evaluated = cp.evaluate_sweep(cp.collect_inventory(at), run_id=f"estate__{at:%Y%m%dT%H%M}")
            ids.append(evaluated.get("sweep_id"))
        return ids

    step("compliance_sweep", compliance)
    out["incidents"] = step("incidents", lambda: _incidents(manifest, anchor, state))
    return out


def _incidents(manifest: dict[str, Any], anchor: datetime, state: Any) -> dict[str, Any]:
    """The history's 5xx surge as the alarm that fired for it: intake -> incident -> triage ->
    resolved -> post-mortem; a reboot request waiting for approval for the pinned CPU."""
    from aiops.alerting import pipeline as intake
    from aiops.incidents import pipeline as response
    from aiops.incidents import store as incidents
    from aiops_sandbox import events

    surge = manifest["incidents"][0]
    namespace, metric, dims, stat = surge["series_id"].split("|")
    dimensions = dict(d.split("=", 1) for d in dims.split(",") if d)
    onset = datetime.fromisoformat(surge["start"].replace("Z", "+00:00")) + timedelta(minutes=5)
    body = events.cloudwatch_alarm(f"{surge['service']}-prod-5xx-high", namespace=namespace, metric=metric,
                                   dimensions=dimensions, stat=stat, threshold=50.0, value=180.0, time=onset,
                                   event_id="estate-5xx-alarm")
    summary = intake.process([body], run_id="estate__alert_intake", notify=False)
    if not summary["incident_ids"]:
        raise RuntimeError(f"the surge alarm opened no incident: {summary}")
    incident_id = summary["incident_ids"][0]
    run_id = "estate__incident_response"
    triaged = response.triage(incident_id, run_id=run_id)
    request_id = "estate-scale-out"
    state.upsert_request(request_id, run_id="estate__remediate", runbook="scale-out-asg",
                         parameters={"AutoScalingGroupName": f"{surge['service']}-prod-asg", "DesiredCapacity": 4},
                         targets=[f"{surge['service']}-prod-asg"], plan={"summary": "desired 2 -> 4"},
                         requested_by="incident_response", reason="5xx surge", incident_id=incident_id,
                         status="succeeded", approvals=[{"user": "alice.sre", "decision": "approve",
                                                         "at": (onset + timedelta(minutes=4)).isoformat()}],
                         execution_id="3f0e6a2c-estate-5xx", outcome={"status": "succeeded"})
    state.audit(actor="alice.sre", action="approve", subject=f"remediation:{request_id}",
                detail={"runbook": "scale-out-asg", "incident_id": incident_id}, run_id="estate__remediate")
    incidents.transition(incident_id, "remediating", actor="incident_response", reason="scale-out-asg approved",
                         run_id=run_id, key=f"{run_id}:remediating")
    incidents.transition(incident_id, "resolved", actor="incident_response",
                         reason="5xx back inside the band after scale-out", run_id=run_id, key=f"{run_id}:resolved")
    written = response.write_postmortem({"incident_id": incident_id, "action": "remediate",
                                        "outcome": "resolved", "evidence": triaged.get("evidence"),
                                        "verification": {"ok": True, "reason": "5xx count back inside its band"}}, run_id=run_id)
    pinned = next(a for a in manifest["anomalies"] if a["metric"] == "CPUUtilization")
    instance = pinned["series_id"].split("InstanceId=")[1].split("|")[0].split(",")[0]
    state.upsert_request("estate-reboot-pending", run_id="estate__remediate_pending", runbook="reboot-ec2-instance",
                         parameters={"InstanceId": instance}, targets=[instance], plan={"summary": "reboot 1 instance"},
                         requested_by="incident_response", reason=pinned["description"], status="awaiting_approval",
                         approvals=[])
    return {"incident_id": incident_id, "postmortem": written, "intake": {k: summary.get(k) for k in
                                                                          ("accepted", "incident_ids")}}

