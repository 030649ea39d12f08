"""The incident lifecycle: persistence and state machine (:mod:`.store`), triage evidence
(:mod:`.triage`), runbook choice and verification (:mod:`.remediation`), post-mortems
(:mod:`.postmortem`). The DAG ``incident_response`` is the thin glue over these.
"""
