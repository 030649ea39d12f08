"""What an SSM Automation execution did, in the shape events, XComs and the audit trail carry."""

from __future__ import annotations

from typing import Any


def summarise(execution: dict[str, Any]) -> dict[str, Any]:
    """The parts of GetAutomationExecution's AutomationExecution worth an event / XCom."""
    steps = execution.get("StepExecutions", [])
    failed = next((s for s in steps if s.get("StepStatus") in {"Failed", "TimedOut", "Cancelled"}), None)
    message = execution.get("FailureMessage") or ""
    if failed is not None:
        details = (failed.get("FailureDetails") or {}).get("Details") or {}
        step_msg = failed.get("FailureMessage") or "; ".join(f"{k}: {v}" for k, v in details.items())
        message = f"step '{failed.get('StepName')}' ({failed.get('Action')}) failed: {step_msg}".strip()
    return {
        "execution_id": execution.get("AutomationExecutionId"),
        "status": execution.get("AutomationExecutionStatus"),
        "document_name": execution.get("DocumentName"),
        "document_version": execution.get("DocumentVersion"),
        "outputs": execution.get("Outputs", {}),
        "steps": [{"name": s.get("StepName"), "action": s.get("Action"), "status": s.get("StepStatus")}
                  for s in steps],
        "failed_step": failed.get("StepName") if failed else None,
        "message": message,
    }
