"""The one settings module: names and thresholds, each overridable by an ``AIOPS_*`` variable.

Endpoints and credentials never live here: they are Airflow connections (``aws_conn_id``,
``state_conn_id``). User-authored configuration (metric catalog, later runbooks, SLOs, alert
rules) is YAML under ``include/``. ``aiops config`` prints the effective values.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parents[3]


def _default_include_dir() -> Path:
    # Editable install / source checkout: <repo>/include. Compose mounts it at /opt/airflow/include.
    candidate = PROJECT_ROOT / "include"
    return candidate if candidate.is_dir() else Path("/opt/airflow/include")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="AIOPS_", extra="ignore", frozen=True)

    aws_conn_id: str = Field(
        "aws_default", description="Airflow connection of every read (collect, decide, report, notify): the "
        "aiops-reader role, which cannot change the account."
    )
    aws_executor_conn_id: str = Field(
        "aws_executor", description="Airflow connection of every approved change (SSM automations, runbook "
        "publishing, routine-operations writes): the aiops-executor role. See docs/connect-account.md."
    )
    state_conn_id: str = Field(
        "aiops_state",
        description="Airflow connection of the state store (SQLite/Postgres). When absent, "
        "a SQLite file under `home` is used.",
    )
    regions: list[str] = Field(["us-east-1"], description="Regions the collectors page through.")
    artifact_bucket: str = Field(
        "matcarv-aiops-artifacts",
        description="S3 bucket of the artifact store; created on first use when absent.",
    )
    home: Path = Field(
        PROJECT_ROOT / ".aiops",
        description="Local working directory: default SQLite state store, sandbox manifest.",
    )
    include_dir: Path = Field(default_factory=_default_include_dir, description="User-authored YAML.")

    # Metrics backbone
    metric_period_seconds: int = Field(300, description="CloudWatch period pulled (5 minutes).")
    metrics_history_days: int = Field(
        14, description="History the first run pulls when the store is empty."
    )
    metrics_settle_minutes: int = Field(
        10,
        description="Each run also re-reads this much before its interval: CloudWatch data "
        "arrives late; the partition upsert makes the overlap harmless.",
    )
    metrics_freshness_minutes: int = Field(
        30, description="A series whose newest point is older than this (vs window end) is stale."
    )
    get_metric_data_batch: int = Field(500, description="Queries per GetMetricData call (API max 500).")

    # Anomaly detection
    anomaly_batches: int = Field(
        8, ge=1, description="Series are split into this many stable batches (one mapped task each)."
    )
    anomaly_max_score_days: float = Field(
        2.0, description="An Asset-triggered run scores at most this many days (older: state warm-up only)."
    )
    anomaly_warmup_days: float = Field(
        2.0, description="History replayed to build detector state when no checkpoint exists."
    )
    anomaly_import_cw_bands: bool = Field(
        True, description="Attach CloudWatch Anomaly Detection bands where the account has detectors."
    )
    console_warm_seconds: int = Field(
        60, ge=0, description="The console (API server) checks the metrics watermark this often and, when "
        "it moved, reads every service's last 14 days into its cache in the background, so the first "
        "page view after an extract (or after a restart) is served from memory. 0 turns it off.",
    )
    anomaly_derived_wait_seconds: int = Field(
        180, ge=0, description="How long past the window end an anomaly_detection run waits for a live "
        "logs_collect/traces_collect to bring in the same window, so derived series (error rate, p99 "
        "latency, log errors) are scored in the same cycle. A collector that never ran or is more than "
        "two intervals behind is not waited for; 0 turns the wait off.",
    )

    # First start, catch-up and backfill (issue 19): history is analysed quietly
    freshness_horizon_minutes: float = Field(
        60, gt=0, description="Data older than this (vs the wall clock) is history: analyses record its "
        "anomalies and scores but raise no alert; the intake records such alerts as 'stale' (no incident, "
        "no page, no action). Covers the 15-minute extraction, its 10-minute settle time and a retry."
    )
    freshness_sources: list[str] = Field(
        ["aiops_anomaly", "aiops_slo", "security_event"], description="Alert sources computed from stored "
        "data (anomaly scores, SLO history, CloudTrail files): the intake applies the freshness horizon to "
        "these (their data time is the event's observed_at / onset / event_time)."
    )
    report_resend: bool = Field(
        False, description="A rerun of a report day re-renders and stores it but does not email it again "
        "unless this (or the run's conf 'resend') is true."
    )

    # Remediation guards
    remediation_max_targets: int = Field(
        5, ge=1, description="Blast radius: at most this many resources per runbook execution."
    )
    remediation_approval_timeout_minutes: float = Field(
        240, gt=0, description="An unanswered approval means 'not executed' after this long."
    )
    remediation_automation_role_arns: dict[str, str] = Field(
        {}, description="Per-account override of the role SSM Automation assumes, by runbook id "
        "(default: arn:<partition>:iam::<account>:role/<the runbook's automation_role>). Never from a request.",
    )
    remediation_pools: dict[str, int] = Field(
        {"incident": 4, "scheduled": 2, "manual": 2},
        description="Airflow pool slots per remediation origin (pools aiops_remediation_<origin>).",
    )

    # Pre-approval (issue 14b): a pre-approved runbook runs unattended only for a verified, current cause
    preapproval_signal_horizon_minutes: float = Field(
        15, gt=0, description="A signal older than this cannot justify an unattended (pre-approved) runbook."
    )
    preapproval_rate_window_minutes: float = Field(
        60, gt=0, description="Window over which unattended runs are counted for the rate limits."
    )
    preapproval_max_per_runbook: int = Field(
        3, ge=0, description="At most this many unattended runs of one runbook per window (then: approval)."
    )
    preapproval_max_per_resource: int = Field(
        1, ge=0, description="At most this many unattended runs on one resource per window (then: approval)."
    )
    preapproval_grant_ttl_minutes: float = Field(
        30, gt=0, description="How long incident_response's pre-approval grant waits for its remediate plan."
    )
    preapproval_fallback_approver_roles: list[str] = Field(
        ["op", "admin"], description="Who approves a pre-approved runbook that fell back to approval "
        "(when its metadata names no approvers)."
    )

    # SLO tracking
    slo_report_recipients: list[str] = Field(
        ["eng-managers@matcarv.example"], description="Who receives the weekly SLO report (SES)."
    )
    email_sender: str = Field(
        "aiops@matcarv.example", description="From address of the platform's emails (a verified SES identity)."
    )

    # Alerting (issue 5): alerting_* fields go here
    alerting_queue_url: str | None = Field(
        None,
        description="SQS queue the alert_intake DAG watches (EventBridge rule aiops-ops-events -> SQS). "
        "Unset: the sandbox queue http://<sandbox_host>:<sandbox_port>/123456789012/aiops-ops-events; "
        "on real AWS set https://sqs.<region>.amazonaws.com/<account>/aiops-ops-events.",
    )
    alerting_waiter_delay_seconds: int = Field(2, ge=1, description="How often the SQS watcher polls.")
    alerting_tag_cache_seconds: float = Field(300, ge=0, description="Resource tag listing cache lifetime.")
    alerting_change_lookback_minutes: float = Field(
        120, gt=0, description="Recent CloudTrail changes to an alert's resource: how far back to look."
    )
    alerting_enrich_changes: bool = Field(True, description="Attach recent CloudTrail changes to alerts.")
    alerting_notify: bool = Field(True, description="Publish SNS notifications for new/escalated incidents.")

    # Incidents (issue 5): incident_* fields go here
    incident_band_history_days: int = Field(
        7, ge=3, description="Days of history behind an incident's seasonal forecast band (triage, verification)."
    )
    incident_changes_lookback_hours: float = Field(
        24, gt=0, description="CloudTrail changes to the affected resources this long before an incident are evidence."
    )
    incident_log_margin_minutes: float = Field(
        15, ge=0, description="Error log lines this long either side of the incident window are evidence."
    )

    # Cost intelligence (issue 6): cost_* fields go here
    cost_report_recipients: list[str] = Field(
        ["finops@matcarv.example"], description="Who receives the daily cost report (SES)."
    )
    cost_history_days: int = Field(
        60, ge=14, description="Daily spend history behind the report's trend, forecast and anomaly bands."
    )
    cost_anomaly_min_usd: float = Field(
        5.0, ge=0, description="A service's day outside its forecast band is an anomaly only if off by this much."
    )
    cost_lookback_days: int = Field(14, ge=1, description="Right-sizing: metrics history read.")
    cost_cpu_percentile: float = Field(
        99.5, gt=0, le=100, description="Right-sizing: CPU percentile (of 5-minute maxima) that must fit the target."
    )
    cost_headroom_pct: float = Field(
        20.0, ge=0, lt=100, description="Right-sizing: the target keeps this much CPU/memory headroom at that percentile."
    )
    cost_idle_cpu_pct: float = Field(10.0, description="Idle (Trusted Advisor): daily average CPU at or below this.")
    cost_idle_network_mb: float = Field(5.0, description="Idle (Trusted Advisor): daily network in+out at or below this.")
    cost_idle_min_days: int = Field(4, ge=1, description="Idle (Trusted Advisor): on at least this many days.")
    cost_rds_idle_days: int = Field(7, ge=1, description="An RDS instance with no connections this long is idle.")
    cost_snapshot_retention_days: int = Field(
        90, ge=1, description="Snapshots older than this (and not tagged aiops:keep=true) are proposed for deletion."
    )
    cost_min_monthly_savings: float = Field(1.0, ge=0, description="Recommendations saving less are not proposed.")
    cost_dismiss_days: int = Field(90, ge=1, description="A dismissed recommendation is not proposed again this long.")
    cost_apply_hold_days: int = Field(
        7, ge=1, description="After 'apply', the recommendation is not proposed again this long (remediation runs)."
    )
    cost_review_timeout_hours: float = Field(
        24, gt=0, description="An unanswered right-sizing review defers everything after this long."
    )
    cost_approvers: list[str] = Field(
        ["bob.finops", "admin"], description="Airflow users who may answer the right-sizing review."
    )
    cost_external_recommendations: bool = Field(
        False, description="Merge AWS Compute Optimizer and Cost Explorer right-sizing recommendations "
        "(real AWS only: the emulator has neither API)."
    )

    # Compliance and security events (issue 7): compliance_* / security_* fields go here
    compliance_report_recipients: list[str] = Field(
        ["security@matcarv.example"], description="Who receives the compliance summary (SES)."
    )
    compliance_disabled_checks: list[str] = Field(
        [], description="Check ids the sweep skips (see `aiops compliance checks`)."
    )
    compliance_securityhub_import: bool = Field(
        True, description="Import the sweep's findings into Security Hub (ASFF) and archive resolved ones."
    )
    compliance_config_rules: str = Field(
        "auto", pattern="^(auto|on|off)$",
        description="Pull AWS Config rule compliance: auto (when a recorder exists), on, off.",
    )
    compliance_fix_approvers: list[str] = Field(
        ["carol.secops", "alice.sre"], description="Airflow users who may answer the sweep's 'request fixes' step "
        "(each fix is then approved again in remediate by its runbook's approvers)."
    )
    compliance_remediation_timeout_hours: float = Field(
        12, gt=0, description="How long the sweep's 'request fixes' step waits; no answer = no request."
    )
    security_queue_url: str = Field(
        "", description="SQS queue of the trail bucket's ObjectCreated notifications, watched by "
        "security_events (empty: the sandbox queue aiops-cloudtrail-files).",
    )
    security_waiter_delay_seconds: int = Field(10, ge=1, description="SQS poll interval of the AssetWatcher.")
    security_trail_name: str = Field("", description="Trail to read (empty: the account's multi-region trail).")
    security_home_regions: list[str] = Field(
        [], description="Regions the account uses; activity elsewhere is 'unusual' (empty: `regions`)."
    )
    security_access_denied_threshold: int = Field(
        10, ge=2, description="AccessDenied/unauthorised calls by one principal within the window = a burst."
    )
    security_access_denied_window_minutes: int = Field(10, ge=1, description="Window of the burst detection.")
    security_event_bus: str = Field("default", description="EventBridge bus the security alerts are put on.")

    # Routine operations (issue 9): ops_* fields go here
    ops_max_changes_per_run: int = Field(
        25, ge=1, description="Blast radius of a routine-ops run: a plan with more enforced changes "
        "than this is refused whole (raise it, or split the policy)."
    )
    ops_log_retention_default_days: int = Field(
        30, description="Retention proposed for log groups no policy matches that keep logs forever."
    )
    ops_log_retention_default_mode: str = Field(
        "dry-run", pattern="^(dry-run|enforce)$",
        description="Whether that default is applied (enforce) or only reported (dry-run).",
    )
    ops_patch_batch_size: int = Field(2, ge=1, description="Instances patched per batch (policy may override).")
    ops_patch_approvers: list[str] = Field(
        ["alice.sre", "carol.secops"], description="Who approves a prod patch install when its policy names no "
        "approvers (every approval has assigned users)."
    )
    ops_patch_approval_timeout_minutes: float = Field(
        240, gt=0, description="An unanswered prod patch-install approval means 'not installed'."
    )
    ops_command_wait_seconds: int = Field(
        15, ge=1, description="Poll interval while an SSM Run Command batch runs."
    )

    # Connecting an account (issue 16): account_* fields go here
    account_stack_name: str = Field("matcarv-aiops-bootstrap", description="The bootstrap stack's name.")
    account_teams: list[str] = Field(
        ["platform", "storefront", "payments"], description="Teams that get an SNS topic aiops-alerts-<team>."
    )
    account_preflight_ttl_minutes: float = Field(
        15, ge=0, description="The event-driven DAGs (alert_intake, security_events, remediate) trust a passed "
        "account preflight this long (state store) instead of re-checking the account on every run; 0: every run."
    )

    # Sandbox (the embedded default account)
    sandbox_host: str = Field("127.0.0.1", description="Emulator bind address (loopback only).")
    sandbox_port: int = Field(5055, description="Emulator port.")
    sandbox_seed: int = Field(7, description="Seed of the simulated account.")
    sandbox_metric_days: int = Field(15, description="Days of metric history seeded.")
    sandbox_cost_days: int = Field(75, description="Days of Cost Explorer history seeded.")

    @property
    def sandbox_endpoint(self) -> str:
        return f"http://{self.sandbox_host}:{self.sandbox_port}"

    @property
    def ops_queue_url(self) -> str:
        """The alert intake's SQS queue: ``alerting_queue_url`` or the sandbox queue."""
        return self.alerting_queue_url or f"{self.sandbox_endpoint}/123456789012/aiops-ops-events"

    @property
    def cloudtrail_queue_url(self) -> str:
        """security_events' SQS queue: ``security_queue_url`` or the sandbox queue."""
        return self.security_queue_url or f"{self.sandbox_endpoint}/123456789012/aiops-cloudtrail-files"

    @property
    def manifest_path(self) -> Path:
        return self.home / "sandbox" / "ground_truth.json"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
