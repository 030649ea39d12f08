"""Preflight: is this account ready for each capability, and if not, exactly what to do.

    aiops account check [--capability email ...] [--json]     exit 1 when something is missing

The ``account_check`` DAG runs the same checks, and each DAG of :data:`DAG_NEEDS` calls
:func:`require_for_dag` (through ``aiops.airflow.account_ready``) in its first task, so a fresh
account fails early with the fix instead of deep in a send call (``MessageRejected: Did not have
authority to send from email ...``).

Statuses: ``ready``; ``missing`` (the capability will fail; exit 1); ``warning`` (works, but below
the intended posture); ``unknown`` (the endpoint cannot answer, e.g. the emulator has no
``iam:SimulatePrincipalPolicy``; not counted as missing).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from aiops.account.connections import ConnectionMissing, connection_fix, require_connection
from aiops.account.iam import default_params, render_policies, runbook_roles
from aiops.account.permissions import permissions
from aiops.account.template import CIS_STANDARD, CLOUDTRAIL_FILES_QUEUE, OPS_EVENTS_RULE
from aiops.core import aws
from aiops.core.errors import AiopsError
from aiops.core.settings import get_settings
from aiops.core.state import StateStore

PERMISSIONS = permissions(
    "the preflight check (read-only: what exists, what is verified, what is enabled)",
    reader=(
        "sts:GetCallerIdentity",
        "ses:GetIdentityVerificationAttributes",
        "ses:GetAccount",
        "sqs:GetQueueUrl @ arn:${AWS::Partition}:sqs:${AWS::Region}:${AWS::AccountId}:aiops-*",
        "sqs:GetQueueAttributes @ arn:${AWS::Partition}:sqs:${AWS::Region}:${AWS::AccountId}:aiops-*",
        "events:DescribeRule",
        "events:ListTargetsByRule",
        "sns:ListTopics",
        "cloudtrail:DescribeTrails",
        "cloudtrail:GetTrailStatus",
        "s3:GetBucketNotification",
        "s3:ListBucket @ arn:${AWS::Partition}:s3:::${ArtifactBucket}",
        "s3:GetEncryptionConfiguration",
        "s3:GetBucketPublicAccessBlock",
        "securityhub:DescribeHub",
        "securityhub:GetEnabledStandards",
        "config:DescribeConfigurationRecorderStatus",
        "ce:GetCostAndUsage",
        "compute-optimizer:GetEnrollmentStatus",
        "iam:SimulatePrincipalPolicy",
        "iam:GetRole @ arn:${AWS::Partition}:iam::${AWS::AccountId}:role/MatCarvAIOps-*",
    ),
)

Status = Literal["ready", "missing", "warning", "unknown"]
CAPABILITIES = ("connections", "permissions", "artifacts", "alerting", "security_events", "email", "compliance",
                "cost", "runbooks")
#: What each DAG needs before its first task does anything (``require(*DAG_NEEDS[dag_id])``).
DAG_NEEDS: dict[str, tuple[str, ...]] = {
    "compliance_sweep": ("email", "compliance"),
    "cost_daily_report": ("email", "cost"),
    "slo_weekly_report": ("email",),
    "alert_intake": ("alerting",),
    "security_events": ("security_events",),
    "remediate": ("runbooks",),
    "runbook_sync": ("runbooks",),
}
STACK_FIX = "deploy the bootstrap stack: `aiops account bootstrap` (or infra/bootstrap.yaml in CloudFormation)"


@dataclass(frozen=True)
class Item:
    capability: str
    name: str
    status: Status
    detail: str
    fix: str = ""

    def line(self) -> str:
        mark = {"ready": "ok  ", "missing": "MISS", "warning": "warn", "unknown": " ?  "}[self.status]
        text = f"[{mark}] {self.capability:<16} {self.name}: {self.detail}"
        return text + (f"\n{'':24}fix: {self.fix}" if self.fix and self.status != "ready" else "")


class AccountNotReady(AiopsError):
    """A capability's prerequisites are missing in the account (message = the fixes)."""

    def __init__(self, items: list[Item]) -> None:
        self.items = items
        super().__init__("account not ready: " + " | ".join(
            f"{i.capability}/{i.name}: {i.detail} -> fix: {i.fix}" for i in items))


def _code(exc: Exception) -> str:
    return str(getattr(exc, "response", {}).get("Error", {}).get("Code", ""))


def _not_implemented(exc: Exception) -> bool:
    text = str(exc)
    return ("not been implemented" in text or "Not yet implemented" in text or "does not implement" in text
            or _code(exc) in {"404", "UnsupportedOperation", "NotImplemented"})


class _Checker:
    def __init__(self, conn_id: str | None, executor_conn_id: str | None) -> None:
        self.settings = get_settings()
        self.conn_id = conn_id or self.settings.aws_conn_id
        self.executor_conn_id = executor_conn_id or self.settings.aws_executor_conn_id
        self.items: list[Item] = []
        self._identity: dict[str, Any] | None = None

    def client(self, service: str) -> Any:
        return aws.client(service, conn_id=self.conn_id)

    def add(self, capability: str, name: str, status: Status, detail: str, fix: str = "") -> None:
        self.items.append(Item(capability, name, status, detail, fix))

    def guarded(self, capability: str, name: str, fn: Callable[[], None]) -> None:
        """Run one check; an unexpected error is reported against the check, never swallowed."""
        try:
            fn()
        except Exception as exc:
            if _not_implemented(exc):
                self.add(capability, name, "unknown", "the endpoint does not implement the API this check needs")
            elif _code(exc) in {"AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "403"}:
                self.add(capability, name, "missing", f"access denied: {exc}",
                         f"attach the generated aiops-reader policy to connection {self.conn_id!r}'s identity "
                         f"({STACK_FIX})")
            else:
                self.add(capability, name, "missing", f"{type(exc).__name__}: {exc}", STACK_FIX)

    # -- connections ------------------------------------------------------------------------------
    def connections(self) -> None:
        arns: dict[str, str] = {}
        for conn_id, role in ((self.conn_id, "aiops-reader"), (self.executor_conn_id, "aiops-executor")):
            try:
                require_connection(conn_id, role)
                ident = aws.client("sts", conn_id=conn_id).get_caller_identity()
                arns[conn_id] = ident["Arn"]
                if conn_id == self.conn_id:
                    self._identity = ident
                self.add("connections", conn_id, "ready", f"{ident['Arn']} (account {ident['Account']})")
            except ConnectionMissing:
                self.add("connections", conn_id, "missing", "connection not defined", connection_fix(conn_id, role))
            except Exception as exc:
                self.add("connections", conn_id, "missing", f"cannot call AWS: {exc}", connection_fix(conn_id, role))
        if len(arns) == 2 and len(set(arns.values())) == 1 and self.conn_id != self.executor_conn_id:
            self.add("connections", "separation", "warning",
                     "both connections use the same identity: a compromise of the reading side can change the "
                     "account", f"point {self.conn_id!r} at role aiops-reader and {self.executor_conn_id!r} at "
                     "role aiops-executor")

    # -- permissions (iam:SimulatePrincipalPolicy) --------------------------------------------------
    def permissions(self) -> None:
        ident = self._identity or self.client("sts").get_caller_identity()
        arn = _principal_arn(ident["Arn"])
        params = default_params(account_id=ident["Account"], region=_region(self.client("sts")))
        policies = render_policies(params)
        denied: list[str] = []
        iam = self.client("iam")
        for name in ("aiops-reader", "aiops-notifier"):
            for stmt in policies[name]["Statement"]:
                resource = str(stmt["Resource"]).replace("*", "aiops-preflight")
                resp = iam.simulate_principal_policy(PolicySourceArn=arn, ActionNames=stmt["Action"],
                                                     ResourceArns=[resource] if resource != "aiops-preflight" else [])
                denied += [r["EvalActionName"] for r in resp["EvaluationResults"] if r["EvalDecision"] != "allowed"]
        if denied:
            self.add("permissions", self.conn_id, "missing", f"{arn} is denied {len(denied)} action(s): "
                     + ", ".join(sorted(set(denied))[:15]), f"attach the generated policies ({STACK_FIX})")
        else:
            self.add("permissions", self.conn_id, "ready", f"{arn} holds every reader/notifier action")

    # -- artifacts ---------------------------------------------------------------------------------
    def artifacts(self) -> None:
        s3, bucket = self.client("s3"), self.settings.artifact_bucket
        try:
            s3.head_bucket(Bucket=bucket)
        except Exception as exc:
            self.add("artifacts", f"bucket {bucket}", "missing", f"not reachable ({_code(exc) or exc})",
                     f"{STACK_FIX} with ArtifactBucketName={bucket}, or set AIOPS_ARTIFACT_BUCKET")
            return
        problems = []
        try:
            s3.get_bucket_encryption(Bucket=bucket)
        except Exception:
            problems.append("no default encryption")
        try:
            block = s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"]
            if not all(block.values()):
                problems.append("public access not fully blocked")
        except Exception:
            problems.append("no public access block")
        if problems:
            self.add("artifacts", f"bucket {bucket}", "warning", ", ".join(problems), STACK_FIX)
        else:
            self.add("artifacts", f"bucket {bucket}", "ready", "exists, encrypted, public access blocked")

    # -- queues, rules, topics ---------------------------------------------------------------------
    def _queue(self, capability: str, url_or_name: str) -> str | None:
        sqs = self.client("sqs")
        name = url_or_name.rstrip("/").rsplit("/", 1)[-1]
        try:
            url = sqs.get_queue_url(QueueName=name)["QueueUrl"]
            arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        except Exception as exc:
            self.add(capability, f"queue {name}", "missing", f"does not exist ({_code(exc) or exc})", STACK_FIX)
            return None
        self.add(capability, f"queue {name}", "ready", url)
        return arn

    def alerting(self) -> None:
        queue_arn = self._queue("alerting", self.settings.ops_queue_url)
        events, bus = self.client("events"), self.settings.security_event_bus
        try:
            rule = events.describe_rule(Name=OPS_EVENTS_RULE, EventBusName=bus)
            targets = [t["Arn"] for t in events.list_targets_by_rule(Rule=OPS_EVENTS_RULE, EventBusName=bus)["Targets"]]
            if rule.get("State") != "ENABLED":
                self.add("alerting", f"rule {OPS_EVENTS_RULE}", "missing", f"rule is {rule.get('State')}",
                         f"enable it: aws events enable-rule --name {OPS_EVENTS_RULE}")
            elif queue_arn and queue_arn not in targets:
                self.add("alerting", f"rule {OPS_EVENTS_RULE}", "missing", f"does not target {queue_arn}", STACK_FIX)
            else:
                self.add("alerting", f"rule {OPS_EVENTS_RULE}", "ready", f"bus {bus} -> {', '.join(targets)}")
        except Exception as exc:
            self.add("alerting", f"rule {OPS_EVENTS_RULE}", "missing", f"not found on bus {bus} ({_code(exc) or exc})",
                     STACK_FIX)
        topics = set()
        for page in self.client("sns").get_paginator("list_topics").paginate():
            topics |= {t["TopicArn"].rsplit(":", 1)[-1] for t in page["Topics"]}
        wanted = [f"aiops-alerts-{team}" for team in self.settings.account_teams]
        absent = [t for t in wanted if t not in topics]
        if absent:
            self.add("alerting", "SNS topics", "missing", f"absent: {', '.join(absent)}",
                     f"{STACK_FIX} (AIOPS_ACCOUNT_TEAMS lists the teams)")
        else:
            self.add("alerting", "SNS topics", "ready", ", ".join(wanted))

    def security_events(self) -> None:
        queue_arn = self._queue("security_events", self.settings.security_queue_url or CLOUDTRAIL_FILES_QUEUE)
        ct = self.client("cloudtrail")
        trails = ct.describe_trails().get("trailList", [])
        if self.settings.security_trail_name:
            trails = [t for t in trails if t["Name"] == self.settings.security_trail_name]
        trails = [t for t in trails if t.get("IsMultiRegionTrail")] or trails
        if not trails:
            self.add("security_events", "trail", "missing", "no CloudTrail trail",
                     f"{STACK_FIX} (TrailBucketName empty: the stack creates trail aiops-trail)")
            return
        trail = trails[0]
        status = ct.get_trail_status(Name=trail.get("TrailARN") or trail["Name"])
        if not status.get("IsLogging"):
            self.add("security_events", f"trail {trail['Name']}", "missing", "not logging",
                     f"aws cloudtrail start-logging --name {trail['Name']}")
        elif status.get("LatestDeliveryError"):
            self.add("security_events", f"trail {trail['Name']}", "missing",
                     f"not delivering to s3://{trail['S3BucketName']}: {status['LatestDeliveryError']}",
                     "fix the trail bucket's policy (CloudTrail needs s3:PutObject / s3:GetBucketAcl)")
        else:
            self.add("security_events", f"trail {trail['Name']}", "ready", f"logging to s3://{trail['S3BucketName']}")
        if queue_arn:
            bucket = trail["S3BucketName"]
            config = self.client("s3").get_bucket_notification_configuration(Bucket=bucket)
            if any(q.get("QueueArn") == queue_arn for q in config.get("QueueConfigurations", [])):
                self.add("security_events", "trail file notifications", "ready", f"s3://{bucket} -> {queue_arn}")
            else:
                self.add("security_events", "trail file notifications", "missing",
                         f"s3://{bucket} does not notify {queue_arn} of new log files",
                         f"add an s3:ObjectCreated:* notification (prefix AWSLogs/, suffix .json.gz) on {bucket} "
                         f"to {queue_arn} (the stack does it for the trail it creates)")

    # -- email -------------------------------------------------------------------------------------
    def email(self) -> None:
        ses, sender = self.client("ses"), self.settings.email_sender
        domain = sender.split("@", 1)[-1]
        attrs = ses.get_identity_verification_attributes(Identities=[sender, domain])["VerificationAttributes"]
        verified = {k for k, v in attrs.items() if v.get("VerificationStatus") == "Success"}
        region = _region(ses)
        if verified & {sender, domain}:
            self.add("email", f"SES sender {sender}", "ready", f"verified ({', '.join(sorted(verified))}) in {region}")
        else:
            pending = {k: v.get("VerificationStatus") for k, v in attrs.items()}
            self.add("email", f"SES sender {sender}", "missing",
                     f"not a verified SES identity in {region} ({pending or 'never requested'}): every report "
                     "email would fail with MessageRejected",
                     f"{STACK_FIX} (SenderEmail={sender}) and click the link AWS mails to {sender}, or verify the "
                     f"domain {domain} in SES {region}; or set AIOPS_EMAIL_SENDER to a verified identity")
        recipients = sorted({*self.settings.compliance_report_recipients, *self.settings.cost_report_recipients,
                             *self.settings.slo_report_recipients})
        try:
            account = self.client("sesv2").get_account()
        except Exception as exc:
            if _not_implemented(exc):
                self.add("email", "SES production access", "unknown", "the endpoint has no sesv2 GetAccount")
                return
            raise
        if not account.get("SendingEnabled", True):
            self.add("email", "SES sending", "missing", "sending is paused for this account",
                     "resume sending in the SES console (Account dashboard)")
        if account.get("ProductionAccessEnabled"):
            self.add("email", "SES production access", "ready", "out of the SES sandbox")
            return
        attrs = ses.get_identity_verification_attributes(Identities=recipients)["VerificationAttributes"]
        unverified = [r for r in recipients if attrs.get(r, {}).get("VerificationStatus") != "Success"
                      and attrs.get(r.split("@")[-1], {}).get("VerificationStatus") != "Success"]
        if unverified:
            self.add("email", "SES production access", "missing",
                     f"the account is in the SES sandbox: only verified recipients get mail; unverified: "
                     f"{', '.join(unverified)}", "request production access (SES console > Account dashboard) "
                     "or verify those recipients")
        else:
            self.add("email", "SES production access", "warning", "SES sandbox, but every recipient is verified",
                     "request production access before adding recipients")

    # -- compliance --------------------------------------------------------------------------------
    def compliance(self) -> None:
        hub = self.client("securityhub")
        if self.settings.compliance_securityhub_import:
            try:
                hub.describe_hub()
                self.add("compliance", "Security Hub", "ready", "enabled")
                try:
                    arns = [s["StandardsArn"] for s in hub.get_enabled_standards().get("StandardsSubscriptions", [])]
                    if any(a.endswith(CIS_STANDARD) for a in arns):
                        self.add("compliance", "CIS v3.0.0 standard", "ready", "enabled")
                    else:
                        self.add("compliance", "CIS v3.0.0 standard", "warning", "not enabled: its controls are "
                                 "not merged into the summary", "deploy the stack with EnableSecurityHub=true")
                except Exception as exc:
                    if not _not_implemented(exc):
                        raise
                    self.add("compliance", "CIS v3.0.0 standard", "unknown", "the endpoint has no GetEnabledStandards")
            except Exception as exc:
                if _code(exc) != "InvalidAccessException":
                    raise
                self.add("compliance", "Security Hub", "missing", "off: the sweep cannot import its findings",
                         "deploy the stack with EnableSecurityHub=true (`aiops account bootstrap` does when "
                         "AIOPS_COMPLIANCE_SECURITYHUB_IMPORT is on), or set AIOPS_COMPLIANCE_SECURITYHUB_IMPORT=false")
        mode = self.settings.compliance_config_rules
        recording = any(s.get("recording") for s in self.client("config").describe_configuration_recorder_status()
                        .get("ConfigurationRecordersStatus", []))
        if recording:
            self.add("compliance", "AWS Config", "ready", "recorder on")
        elif mode == "on":
            self.add("compliance", "AWS Config", "missing", "no recording configuration recorder "
                     "(AIOPS_COMPLIANCE_CONFIG_RULES=on)", "deploy the stack with EnableConfig=true")
        elif mode == "auto":
            self.add("compliance", "AWS Config", "warning", "off: Config rule results are not merged",
                     "deploy the stack with EnableConfig=true (optional)")

    # -- cost --------------------------------------------------------------------------------------
    def cost(self) -> None:
        day = (datetime.now(UTC) - timedelta(days=2)).date()
        try:
            self.client("ce").get_cost_and_usage(TimePeriod={"Start": day.isoformat(),
                                                             "End": (day + timedelta(days=1)).isoformat()},
                                                 Granularity="DAILY", Metrics=["UnblendedCost"])
            self.add("cost", "Cost Explorer", "ready", "answers GetCostAndUsage")
        except Exception as exc:
            if _code(exc) in {"AccessDeniedException", "DataUnavailableException"} and "enable" in str(exc).lower():
                self.add("cost", "Cost Explorer", "missing", f"not enabled ({exc})",
                         "enable Cost Explorer (Billing console > Cost Explorer; data appears within 24 h)")
            else:
                raise
        if not self.settings.cost_external_recommendations:
            return
        try:
            status = self.client("compute-optimizer").get_enrollment_status().get("status")
        except Exception as exc:
            if _not_implemented(exc):
                self.add("cost", "Compute Optimizer", "unknown", "the endpoint has no Compute Optimizer")
                return
            raise
        if status == "Active":
            self.add("cost", "Compute Optimizer", "ready", "opted in")
        else:
            self.add("cost", "Compute Optimizer", "missing", f"enrollment {status}",
                     "aws compute-optimizer update-enrollment-status --status Active (or set "
                     "AIOPS_COST_EXTERNAL_RECOMMENDATIONS=false)")

    # -- runbooks ----------------------------------------------------------------------------------
    def runbooks(self) -> None:
        iam, absent = self.client("iam"), []
        for role in sorted(runbook_roles().values()):
            try:
                iam.get_role(RoleName=role)
            except Exception as exc:
                if _code(exc) != "NoSuchEntity":
                    raise
                absent.append(role)
        if absent:
            self.add("runbooks", "automation roles", "missing", f"{len(absent)} absent: {', '.join(absent[:5])}"
                     + (" ..." if len(absent) > 5 else ""), STACK_FIX)
        else:
            self.add("runbooks", "automation roles", "ready", "each runbook's automation_role exists")


def _principal_arn(arn: str) -> str:
    """The IAM principal behind a caller ARN (an assumed-role session -> its role)."""
    if ":assumed-role/" in arn:
        prefix, rest = arn.split(":assumed-role/", 1)
        return prefix.replace(":sts:", ":iam:") + ":role/" + rest.split("/", 1)[0]
    return arn


def _region(client: Any) -> str:
    return str(client.meta.region_name)


def run_checks(capabilities: Iterable[str] | None = None, *, conn_id: str | None = None,
               executor_conn_id: str | None = None) -> list[Item]:
    """Run the checks of ``capabilities`` (default: all); returns every item (ready ones too)."""
    wanted = list(capabilities or CAPABILITIES)
    unknown = [c for c in wanted if c not in CAPABILITIES]
    if unknown:
        raise ValueError(f"unknown capability {unknown}; known: {', '.join(CAPABILITIES)}")
    checker = _Checker(conn_id, executor_conn_id)
    for capability in wanted:
        checker.guarded(capability, "check", getattr(checker, capability))
    return checker.items


def missing(items: Iterable[Item]) -> list[Item]:
    return [i for i in items if i.status == "missing"]


def require(*capabilities: str) -> list[Item]:
    """Raise :class:`AccountNotReady` (naming each fix) when a prerequisite of ``capabilities`` is missing."""
    items = run_checks(capabilities)
    absent = missing(items)
    if absent:
        raise AccountNotReady(absent)
    return items


PREFLIGHT_WATERMARK = "account.preflight"


def require_for_dag(dag_id: str, *, email: bool = True, max_age: timedelta | None = None) -> list[Item]:
    """A DAG's first-task gate: its :data:`DAG_NEEDS` (``email=False`` drops the email prerequisite).

    ``max_age``: a pass of the same gate recorded in the state store less than ``max_age`` ago is
    trusted without asking AWS (event-driven DAGs run every few seconds or minutes; the checks cost 3
    to 20 API calls). Only passes are remembered, and a gate that finds a piece missing forgets the
    pass: a missing piece is re-checked on every run, so a fixed account is picked up at once; a
    piece removed after a pass is noticed within ``max_age``."""
    needs = [c for c in DAG_NEEDS.get(dag_id, ()) if email or c != "email"]
    if not needs:
        return []
    store, key = None, ""
    if max_age is not None and max_age > timedelta(0):
        store = StateStore()
        key = f"{PREFLIGHT_WATERMARK}/{get_settings().aws_conn_id}/{dag_id}/{'+'.join(needs)}"
        passed = store.get_watermark(key)
        now = datetime.now(UTC)
        if passed is not None and now - passed < max_age:
            return [Item(c, "preflight", "ready", f"passed at {passed:%Y-%m-%d %H:%M:%S} UTC (re-checked "
                         f"{max_age.total_seconds() / 60:g} min after a pass)") for c in needs]
    try:
        items = require(*needs)
    except AccountNotReady:
        if store is not None:
            store.clear_watermark(key)  # what a run saw missing is not trusted again until it passes
        raise
    if store is not None:
        store.set_watermark(key, datetime.now(UTC))
    return items


def render(items: list[Item], *, as_json: bool = False) -> str:
    if as_json:
        return json.dumps([asdict(i) for i in items], indent=2)
    lines = [i.line() for i in items]
    n_missing = len(missing(items))
    lines.append(f"{n_missing} missing, {sum(i.status == 'warning' for i in items)} warning(s), "
                 f"{sum(i.status == 'unknown' for i in items)} unknown, {sum(i.status == 'ready' for i in items)} ready")
    return "\n".join(lines)
