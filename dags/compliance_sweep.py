"""
### compliance_sweep — CIS-style checks, Security Hub findings, emailed summary, fixes on request

Daily (and on demand: *Trigger DAG*). Every enabled check of the registry
(`aiops compliance checks`; 40 checks over IAM, logging, networking, storage, KMS, mapped to the
CIS AWS Foundations Benchmark v3.0.0) runs over one collection of the account.

0. **preflight** — the account gate: SES sender verified (when the summary is emailed), Security
   Hub on (`aiops account check`); a missing piece fails here with its fix, before any read.
1. **collect** — collectors page through each service once per region (`AIOPS_REGIONS`) into
   `compliance/inventory/dt=<day>/`; a service that cannot be read is reported, the rest run.
2. **evaluate** — checks (pure functions of the records) + accepted-risk exceptions (tag
   `aiops:accepted-risk=<reason>` or `include/compliance/exceptions.yaml`: reported *suppressed*
   with the reason); results with history in the state store; diff against the previous sweep
   (new, resolved, regressed, still failing).
3. **publish_findings** — ASFF into Security Hub: one finding per (check, resource),
   `Compliance.Status`, CIS `RelatedRequirements`; resolved findings archived.
4. **external** — AWS Config rule compliance (when the account records) and other products'
   active Security Hub findings, for the summary.
5. **build_summary → send_summary** — HTML + text email to `AIOPS_COMPLIANCE_REPORT_RECIPIENTS`:
   posture score and trend, new/regressed and resolved first, failures by CIS section and severity,
   top risky resources, fixable failures.
6. **offer_fixes → request_fixes (approval) → remediate** — failures a runbook fixes
   (world-open SSH/RDP → `revoke-world-open-ingress`, public bucket → `block-public-s3-bucket`,
   EBS default encryption → `enable-ebs-default-encryption`): by default the *new or regressed*
   ones, all fixable ones with param `remediate_all_fixable`. A security engineer approves sending
   them (or not; no answer = nothing sent); each becomes a `remediate` run, where the runbook's
   own approvers approve the actual change.

Re-running a day rewrites that day's sweep (keyed by the logical date).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.providers.standard.operators.hitl import ApprovalOperator
from airflow.providers.standard.operators.trigger_dagrun import TriggerDagRunOperator
from airflow.sdk import Param, dag, task

from aiops.airflow import default_args
from aiops.core.settings import get_settings

FIX_BODY = """\
The compliance sweep {{ ti.xcom_pull(task_ids='offer_fixes')['sweep_id'] }} found failures that a runbook fixes.
Approve to send each one to the `remediate` DAG (its runbook approvers still approve every change there):

{% for f in ti.xcom_pull(task_ids='offer_fixes')['fixes'] %}- **{{ f.label }}** — {{ f.conf.reason }}
{% endfor %}
Reject (or no answer) sends nothing; the failures stay in the summary and in Security Hub.
"""


@dag(
    dag_id="compliance_sweep",
    schedule="@daily",
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,  # each sweep diffs against the one before it
    render_template_as_native_obj=False,
    default_args=default_args(owner="security", retries=2),
    tags=["aiops", "compliance", "security"],
    doc_md=__doc__,
    params={
        "remediate_all_fixable": Param(False, type="boolean",
                                       description="Offer every fixable failure, not only new/regressed ones."),
        "send_email": Param(True, type="boolean", description="Email the summary to the security list."),
    },
)
def compliance_sweep():
    @task  # a missing piece raises AirflowFailException: failed at once, not retried
    def preflight(params=None) -> list[str]:
        """Fail first, with the fix, when the account lacks what the sweep needs (SES sender, Security Hub)."""
        from aiops.airflow import account_ready

        return account_ready("compliance_sweep", email=bool((params or {}).get("send_email", True)))

    @task
    def collect(data_interval_end=None, dag_run=None) -> dict:
        from aiops.compliance.pipeline import collect_inventory

        as_of = data_interval_end or dag_run.run_after
        return collect_inventory(as_of)

    @task
    def evaluate(collected: dict, params=None, run_id=None) -> dict:
        from aiops.compliance.pipeline import evaluate_sweep

        return evaluate_sweep(collected, run_id=run_id,
                              remediate_all_fixable=bool((params or {}).get("remediate_all_fixable")))

    @task
    def publish_findings(evaluated: dict) -> dict:
        from aiops.compliance.pipeline import publish_findings as publish

        return publish(evaluated)

    @task
    def external() -> dict:
        from aiops.compliance.pipeline import gather_external

        return gather_external()

    @task
    def build_summary(evaluated: dict, external_data: dict, run_id=None) -> dict:
        from aiops.compliance.pipeline import build_summary as build

        return build(evaluated, external_data, run_id=run_id)

    @task
    def send_summary(stored: dict, params=None, dag_run=None) -> dict:
        from airflow.exceptions import AirflowSkipException

        from aiops.compliance.pipeline import send_summary as send

        if not (params or {}).get("send_email", True):
            raise AirflowSkipException("send_email is off")
        from aiops.account.check import require
        from aiops.airflow import resend_requested

        require("email")  # SES sender verified (and out of the SES sandbox): a clear error before sending
        return send(stored, resend=resend_requested(params, dag_run))

    @task.short_circuit(ignore_downstream_trigger_rules=False)
    def offer_fixes(evaluated: dict) -> dict | bool:
        if not evaluated["fixes"]:
            print("No fixable failure to offer")
            return False
        for f in evaluated["fixes"]:
            print(f"fixable: {f['label']} ({f['check_id']})")
        return {"sweep_id": evaluated["sweep_id"], "fixes": evaluated["fixes"]}

    request_fixes = ApprovalOperator(
        task_id="request_fixes",
        subject="Send fixable compliance failures to remediate?",
        body=FIX_BODY,
        defaults=[ApprovalOperator.REJECT],  # no answer: nothing is sent
        assigned_users=[{"id": u, "name": u} for u in get_settings().compliance_fix_approvers],
        response_timeout=timedelta(hours=get_settings().compliance_remediation_timeout_hours),
        ignore_downstream_trigger_rules=False,
    )

    @task
    def fix_requests(offer: dict) -> list[dict]:
        import hashlib
        import json

        return [{"conf": f["conf"],
                 "trigger_run_id": "compliance__{}__{}".format(
                     offer["sweep_id"], hashlib.sha256(json.dumps(f["conf"], sort_keys=True).encode()).hexdigest()[:12])}
                for f in offer["fixes"]]

    collected, external_data = collect(), external()
    preflight() >> [collected, external_data]  # nothing reads the account before the gate passed
    evaluated = evaluate(collected)
    publish_findings(evaluated)
    send_summary(build_summary(evaluated, external_data))
    offer = offer_fixes(evaluated)
    requests = fix_requests(offer)
    offer >> request_fixes >> requests
    TriggerDagRunOperator.partial(
        task_id="remediate", trigger_dag_id="remediate", wait_for_completion=False,
        skip_when_already_exists=True,
    ).expand_kwargs(requests)


compliance_sweep()
