"""Deploy the bootstrap stack through an Airflow connection: ``aiops account bootstrap``.

The stack creates IAM roles, so the identity that deploys it needs CloudFormation and IAM rights the
platform's own two identities deliberately lack: run it with an administrator's connection
(``--conn-id``), once per account and again after the permission declarations or the runbook catalog
change (the template is regenerated from them; an unchanged stack is a no-op).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from aiops.account.permissions import permissions
from aiops.account.template import build_template, render_yaml
from aiops.core import aws
from aiops.core.settings import get_settings

#: What the deploying identity needs (``aiops account policies`` writes it as ``aiops-deployer``; a
#: person runs the bootstrap with it, no platform connection holds it).
PERMISSIONS = permissions(
    "deploying the bootstrap stack (CloudFormation creates roles, bucket, queues, rule, topics, SES identity)",
    deployer=(
        "cloudformation:CreateStack", "cloudformation:UpdateStack", "cloudformation:DeleteStack",
        "cloudformation:DescribeStacks", "cloudformation:DescribeStackEvents",
        "iam:CreateRole", "iam:DeleteRole", "iam:GetRole", "iam:UpdateRole", "iam:TagRole", "iam:PutRolePolicy",
        "iam:DeleteRolePolicy", "iam:GetRolePolicy", "iam:AttachRolePolicy", "iam:DetachRolePolicy",
        "iam:CreatePolicy", "iam:DeletePolicy", "iam:GetPolicy", "iam:CreatePolicyVersion",
        "iam:DeletePolicyVersion", "iam:ListPolicyVersions", "iam:PassRole",
        "s3:CreateBucket", "s3:PutBucketPolicy", "s3:PutEncryptionConfiguration", "s3:PutBucketPublicAccessBlock",
        "s3:PutBucketVersioning", "s3:PutBucketNotification", "s3:PutBucketTagging",
        "sqs:CreateQueue", "sqs:SetQueueAttributes", "sqs:GetQueueAttributes", "sqs:TagQueue",
        "events:PutRule", "events:PutTargets", "events:DescribeRule",
        "sns:CreateTopic", "sns:SetTopicAttributes", "sns:TagResource", "sns:GetTopicAttributes",
        "ses:CreateEmailIdentity", "ses:GetEmailIdentity", "ses:VerifyEmailIdentity",
        "cloudtrail:CreateTrail", "cloudtrail:StartLogging", "cloudtrail:UpdateTrail", "cloudtrail:AddTags",
        "config:PutConfigurationRecorder", "config:PutDeliveryChannel", "config:StartConfigurationRecorder",
        "config:PutConfigRule", "securityhub:EnableSecurityHub", "securityhub:BatchEnableStandards",
        "securityhub:GetEnabledStandards",
    ),
)
TERMINAL_OK = {"CREATE_COMPLETE", "UPDATE_COMPLETE"}
TERMINAL_FAILED = {"CREATE_FAILED", "ROLLBACK_COMPLETE", "ROLLBACK_FAILED", "UPDATE_ROLLBACK_COMPLETE",
                   "UPDATE_ROLLBACK_FAILED", "DELETE_COMPLETE", "DELETE_FAILED"}
MAX_TEMPLATE_BODY = 51_200


@dataclass
class BootstrapResult:
    stack_name: str
    action: str  # created | updated | unchanged
    status: str
    outputs: dict[str, str] = field(default_factory=dict)
    parameters: dict[str, str] = field(default_factory=dict)


def default_parameters() -> dict[str, str]:
    """Stack parameters from the settings the platform runs with (so they cannot disagree)."""
    s = get_settings()
    return {
        "ArtifactBucketName": s.artifact_bucket,
        "EventBusName": s.security_event_bus,
        "SenderEmail": s.email_sender,
        "EnableSecurityHub": "true" if s.compliance_securityhub_import else "false",
        "EnableConfig": "true" if s.compliance_config_rules == "on" else "false",
    }


def deploy(*, conn_id: str | None = None, stack_name: str | None = None,
           parameters: Mapping[str, str] | None = None, timeout_seconds: float = 900,
           progress: Callable[[str], None] = lambda m: None) -> BootstrapResult:
    """Create or update the stack and wait for it; raises with the failing resources' reasons."""
    from botocore.exceptions import ClientError

    settings = get_settings()
    stack_name = stack_name or settings.account_stack_name
    params = {**default_parameters(), **(parameters or {})}
    body = render_yaml(build_template(teams=settings.account_teams))
    if len(body.encode()) > MAX_TEMPLATE_BODY:
        raise RuntimeError(f"template is {len(body)} bytes (> {MAX_TEMPLATE_BODY}): upload it to S3 and deploy "
                           "with TemplateURL")
    cfn = aws.client("cloudformation", conn_id=conn_id)
    kwargs: dict[str, Any] = {
        "StackName": stack_name, "TemplateBody": body,
        "Parameters": [{"ParameterKey": k, "ParameterValue": str(v)} for k, v in sorted(params.items())],
        "Capabilities": ["CAPABILITY_NAMED_IAM"],
        "Tags": [{"Key": "app", "Value": "matcarv-aiops"}],
    }
    try:
        existing = cfn.describe_stacks(StackName=stack_name)["Stacks"]
    except ClientError as exc:
        if "does not exist" not in str(exc):
            raise
        existing = []
    if existing and existing[0]["StackStatus"] not in {"ROLLBACK_COMPLETE", "DELETE_COMPLETE"}:
        try:
            cfn.update_stack(**kwargs)
            action = "updated"
        except ClientError as exc:
            if "No updates are to be performed" not in str(exc):
                raise
            action = "unchanged"
    else:
        if existing:  # a failed first create must be deleted before it can be created again
            cfn.delete_stack(StackName=stack_name)
        cfn.create_stack(**kwargs)
        action = "created"
    progress(f"stack {stack_name}: {action}")
    deadline = time.monotonic() + timeout_seconds
    while True:
        stack = cfn.describe_stacks(StackName=stack_name)["Stacks"][0]
        status = stack["StackStatus"]
        if status in TERMINAL_OK or (action == "unchanged" and not status.endswith("IN_PROGRESS")):
            break
        if status in TERMINAL_FAILED:
            events = cfn.describe_stack_events(StackName=stack_name).get("StackEvents", [])
            reasons = [f"{e['LogicalResourceId']}: {e.get('ResourceStatusReason')}" for e in events
                       if str(e.get("ResourceStatus", "")).endswith("FAILED")][:10]
            raise RuntimeError(f"stack {stack_name} ended {status}: " + ("; ".join(reasons) or "no reason given"))
        if time.monotonic() > deadline:
            raise TimeoutError(f"stack {stack_name} still {status} after {timeout_seconds:.0f}s")
        time.sleep(2)
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}
    return BootstrapResult(stack_name, action, status, outputs, params)
