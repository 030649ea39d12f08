"""The bootstrap CloudFormation template, generated from the permission declarations and the
runbook catalog (``infra/bootstrap.yaml`` is its checked-in rendering; a test keeps them equal).

    aiops account template [--out infra/bootstrap.yaml]

What it creates: the reader / notifier / executor policies and roles, one automation role per
runbook, the artifact bucket (encrypted, TLS-only, public access blocked), the EventBridge rule ->
SQS queue (+ DLQ, queue policy) of operational events, the SQS queue (+ DLQ, policy) of CloudTrail
log-file notifications (and, unless an existing trail bucket is named, a trail and its bucket), one
SNS topic per team, the SES sender identity; optionally the AWS Config recorder with CIS rules and
Security Hub with the CIS AWS Foundations Benchmark v3.0.0 standard.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from aiops.account.iam import (
    EXECUTOR_ROLE,
    READER_ROLE,
    role_statements,
    runbook_permissions,
    runbook_roles,
    runbook_statements,
)
from aiops.core.settings import PROJECT_ROOT

STACK_DESCRIPTION = "MatCarv AIOps bootstrap: least-privilege roles, artifact bucket, event queues, topics, SES"
OPS_EVENTS_QUEUE = "aiops-ops-events"
CLOUDTRAIL_FILES_QUEUE = "aiops-cloudtrail-files"
OPS_EVENTS_RULE = "aiops-ops-events"
TRAIL_NAME = "aiops-trail"
TRAIL_BUCKET = "aiops-cloudtrail-${AWS::AccountId}-${AWS::Region}"
#: Event sources the alert intake listens to (EventBridge rule ``aiops-ops-events``).
OPS_EVENT_SOURCES = [
    "aws.cloudwatch", "aws.ec2", "aws.rds", "aws.autoscaling", "aws.securityhub", "aws.guardduty",
    "aws.health", "matcarv.aiops",
]
DEFAULT_TEAMS = ("platform", "storefront", "payments")
CIS_STANDARD = "standards/cis-aws-foundations-benchmark/v/3.0.0"
#: AWS Config managed rules behind the CIS checks the sweep merges (subset of the CIS conformance pack).
CIS_CONFIG_RULES = {
    "aiops-cis-root-mfa": "ROOT_ACCOUNT_MFA_ENABLED",
    "aiops-cis-iam-password-policy": "IAM_PASSWORD_POLICY",
    "aiops-cis-iam-user-mfa": "MFA_ENABLED_FOR_IAM_CONSOLE_ACCESS",
    "aiops-cis-access-keys-rotated": "ACCESS_KEYS_ROTATED",
    "aiops-cis-unused-credentials": "IAM_USER_UNUSED_CREDENTIALS_CHECK",
    "aiops-cis-no-admin-policies": "IAM_POLICY_NO_STATEMENTS_WITH_ADMIN_ACCESS",
    "aiops-cis-multi-region-trail": "MULTI_REGION_CLOUD_TRAIL_ENABLED",
    "aiops-cis-trail-validation": "CLOUD_TRAIL_LOG_FILE_VALIDATION_ENABLED",
    "aiops-cis-trail-encryption": "CLOUD_TRAIL_ENCRYPTION_ENABLED",
    "aiops-cis-kms-rotation": "CMK_BACKING_KEY_ROTATION_ENABLED",
    "aiops-cis-vpc-flow-logs": "VPC_FLOW_LOGS_ENABLED",
    "aiops-cis-ssh-restricted": "INCOMING_SSH_DISABLED",
    "aiops-cis-s3-public-read": "S3_BUCKET_PUBLIC_READ_PROHIBITED",
    "aiops-cis-s3-tls-only": "S3_BUCKET_SSL_REQUESTS_ONLY",
    "aiops-cis-ebs-encryption": "EC2_EBS_ENCRYPTION_BY_DEFAULT",
    "aiops-cis-rds-encrypted": "RDS_STORAGE_ENCRYPTED",
}
#: Required inputs of those managed rules (CIS: 90-day key rotation, 45 days unused credentials).
CIS_RULE_INPUTS = {
    "ACCESS_KEYS_ROTATED": {"maxAccessKeyAge": "90"},
    "IAM_USER_UNUSED_CREDENTIALS_CHECK": {"maxCredentialUsageAge": "45"},
}
#: IAM managed policies are limited to 6,144 characters (whitespace excluded); stay below.
MAX_POLICY_CHARS = 6000


def _logical(text: str) -> str:
    return "".join(part.capitalize() for part in text.replace("_", "-").split("-") if part)


def _chunks(stmts: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """Split statements into documents under the managed-policy size limit (a statement with too many
    actions is split by actions)."""
    flat: list[dict[str, Any]] = []
    for s in stmts:
        actions = s["Action"]
        step = 60
        for i in range(0, len(actions), step):
            part = dict(s, Action=actions[i:i + step])
            if len(actions) > step:
                part["Sid"] = f"{s['Sid']}{i // step}"
            flat.append(part)
    docs: list[list[dict[str, Any]]] = [[]]
    for s in flat:
        candidate = [*docs[-1], s]
        if docs[-1] and len(json.dumps({"Version": "2012-10-17", "Statement": candidate},
                                       separators=(",", ":"))) > MAX_POLICY_CHARS:
            docs.append([s])
        else:
            docs[-1] = candidate
    return docs


def _queue_pair(name: str, *, retention: int, visibility: int) -> dict[str, Any]:
    base = _logical(name)
    return {
        f"{base}Dlq": {"Type": "AWS::SQS::Queue", "Properties": {
            "QueueName": f"{name}-dlq", "MessageRetentionPeriod": 1209600, "SqsManagedSseEnabled": True}},
        f"{base}Queue": {"Type": "AWS::SQS::Queue", "Properties": {
            "QueueName": name, "MessageRetentionPeriod": retention, "VisibilityTimeout": visibility,
            "SqsManagedSseEnabled": True,
            "RedrivePolicy": {"deadLetterTargetArn": {"Fn::GetAtt": [f"{base}Dlq", "Arn"]}, "maxReceiveCount": 5}}},
    }


def build_template(*, teams: tuple[str, ...] | list[str] = DEFAULT_TEAMS,
                   catalog_dir: Path | None = None) -> dict[str, Any]:
    """The template as a dict (CloudFormation JSON/YAML shape)."""
    resources: dict[str, Any] = {}
    trusted = {"Fn::If": ["HasTrustedPrincipal", {"Ref": "TrustedPrincipalArn"},
                          {"Fn::Sub": "arn:${AWS::Partition}:iam::${AWS::AccountId}:root"}]}
    trail_bucket_name = {"Fn::If": ["CreateTrail", {"Fn::Sub": TRAIL_BUCKET}, {"Ref": "TrailBucketName"}]}
    variables = {
        "ArtifactBucket": {"Ref": "ArtifactBucketName"},
        "TrailBucket": trail_bucket_name,
        "EventBusName": {"Ref": "EventBusName"},
    }

    def sub_vars(stmts: list[dict[str, Any]]) -> list[dict[str, Any]]:
        out = []
        for s in stmts:
            s = dict(s)
            if "${" in s["Resource"]:
                s["Resource"] = {"Fn::Sub": [s["Resource"], {k: v for k, v in variables.items()
                                                              if "${" + k + "}" in s["Resource"]}]}
            out.append(s)
        return out

    # --- policies and roles -------------------------------------------------------------------
    policy_refs: dict[str, list[dict[str, Any]]] = {}
    for role in ("reader", "notifier", "executor"):
        docs = _chunks(role_statements(role))  # type: ignore[arg-type]
        policy_refs[role] = []
        for i, stmts in enumerate(docs):
            logical = f"{_logical(role)}Policy{i or ''}"
            name = f"aiops-{role}" + (f"-{i + 1}" if len(docs) > 1 else "")
            resources[logical] = {"Type": "AWS::IAM::ManagedPolicy", "Properties": {
                "ManagedPolicyName": name,
                "Description": f"MatCarv AIOps {role} (generated from the code's permission declarations)",
                "PolicyDocument": {"Version": "2012-10-17", "Statement": sub_vars(stmts)}}}
            policy_refs[role].append({"Ref": logical})
    trust_principal = {"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"AWS": trusted}, "Action": "sts:AssumeRole"}]}
    resources["ReaderRole"] = {"Type": "AWS::IAM::Role", "Properties": {
        "RoleName": READER_ROLE, "AssumeRolePolicyDocument": trust_principal,
        "Description": "MatCarv AIOps connection aws_default: read, decide, report, notify; changes nothing",
        "ManagedPolicyArns": policy_refs["reader"] + policy_refs["notifier"]}}
    resources["ExecutorRole"] = {"Type": "AWS::IAM::Role", "Properties": {
        "RoleName": EXECUTOR_ROLE, "AssumeRolePolicyDocument": trust_principal,
        "Description": "MatCarv AIOps connection aws_executor: approved runbooks and routine operations",
        "ManagedPolicyArns": policy_refs["executor"]}}
    ssm_trust = {"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"Service": "ssm.amazonaws.com"}, "Action": "sts:AssumeRole",
        "Condition": {"StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}}}]}
    roles = runbook_roles(catalog_dir)
    for rid, actions in sorted(runbook_permissions(catalog_dir).items()):
        resources[f"Runbook{_logical(rid)}Role"] = {"Type": "AWS::IAM::Role", "Properties": {
            "RoleName": roles[rid], "AssumeRolePolicyDocument": ssm_trust,
            "Description": f"SSM Automation role of runbook {rid}: exactly its metadata's permissions",
            "Policies": [{"PolicyName": "runbook", "PolicyDocument": {
                "Version": "2012-10-17", "Statement": runbook_statements(actions)}}]}}

    # --- artifact bucket ------------------------------------------------------------------------
    public_block = {"BlockPublicAcls": True, "BlockPublicPolicy": True, "IgnorePublicAcls": True,
                    "RestrictPublicBuckets": True}
    resources["ArtifactBucket"] = {"Type": "AWS::S3::Bucket", "DeletionPolicy": "Retain",
                                   "UpdateReplacePolicy": "Retain", "Properties": {
        "BucketName": {"Ref": "ArtifactBucketName"},
        "BucketEncryption": {"ServerSideEncryptionConfiguration": [
            {"ServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]},
        "PublicAccessBlockConfiguration": public_block,
        "VersioningConfiguration": {"Status": "Enabled"}}}

    def tls_only(bucket_ref: dict[str, Any], extra: list[dict[str, Any]] | None = None,
                 conditional: bool = True) -> dict[str, Any]:
        arn = {"Fn::Sub": ["arn:${AWS::Partition}:s3:::${B}", {"B": bucket_ref}]}
        objects = {"Fn::Sub": ["arn:${AWS::Partition}:s3:::${B}/*", {"B": bucket_ref}]}
        deny = {"Sid": "DenyInsecureTransport", "Effect": "Deny", "Principal": "*", "Action": "s3:*",
                "Resource": [arn, objects], "Condition": {"Bool": {"aws:SecureTransport": "false"}}}
        statements = list(extra or [])
        statements.append({"Fn::If": ["EnforceTls", deny, {"Ref": "AWS::NoValue"}]} if conditional else deny)
        return {"Version": "2012-10-17", "Statement": statements}

    resources["ArtifactBucketPolicy"] = {"Type": "AWS::S3::BucketPolicy", "Condition": "EnforceTls",
                                         "Properties": {"Bucket": {"Ref": "ArtifactBucket"},
                                                        "PolicyDocument": tls_only({"Ref": "ArtifactBucket"},
                                                                                  conditional=False)}}

    # --- queues, rule, trail notifications -------------------------------------------------------
    resources.update(_queue_pair(OPS_EVENTS_QUEUE, retention=1209600, visibility=120))
    resources.update(_queue_pair(CLOUDTRAIL_FILES_QUEUE, retention=4 * 86400, visibility=120))
    resources["OpsEventsRule"] = {"Type": "AWS::Events::Rule", "Properties": {
        "Name": OPS_EVENTS_RULE, "Description": "Operational events to MatCarv AIOps (alert intake)",
        "EventBusName": {"Ref": "EventBusName"}, "State": "ENABLED",
        "EventPattern": {"source": OPS_EVENT_SOURCES},
        "Targets": [{"Id": "ops-events-queue", "Arn": {"Fn::GetAtt": ["AiopsOpsEventsQueue", "Arn"]}}]}}
    resources["OpsEventsQueuePolicy"] = {"Type": "AWS::SQS::QueuePolicy", "Properties": {
        "Queues": [{"Ref": "AiopsOpsEventsQueue"}],
        "PolicyDocument": {"Version": "2012-10-17", "Statement": [{
            "Sid": "EventBridgeRule", "Effect": "Allow", "Principal": {"Service": "events.amazonaws.com"},
            "Action": "sqs:SendMessage", "Resource": {"Fn::GetAtt": ["AiopsOpsEventsQueue", "Arn"]},
            "Condition": {"ArnEquals": {"aws:SourceArn": {"Fn::GetAtt": ["OpsEventsRule", "Arn"]}}}}]}}}
    resources["CloudTrailFilesQueuePolicy"] = {"Type": "AWS::SQS::QueuePolicy", "Properties": {
        "Queues": [{"Ref": "AiopsCloudtrailFilesQueue"}],
        "PolicyDocument": {"Version": "2012-10-17", "Statement": [{
            "Sid": "TrailBucketNotifications", "Effect": "Allow", "Principal": {"Service": "s3.amazonaws.com"},
            "Action": "sqs:SendMessage", "Resource": {"Fn::GetAtt": ["AiopsCloudtrailFilesQueue", "Arn"]},
            "Condition": {"ArnLike": {"aws:SourceArn": {"Fn::Sub": [
                "arn:${AWS::Partition}:s3:::${B}", {"B": trail_bucket_name}]}}}}]}}}
    resources["TrailBucket"] = {"Type": "AWS::S3::Bucket", "Condition": "CreateTrail",
                                "DependsOn": ["CloudTrailFilesQueuePolicy"],
                                "DeletionPolicy": "Retain", "UpdateReplacePolicy": "Retain", "Properties": {
        "BucketName": {"Fn::Sub": TRAIL_BUCKET},
        "BucketEncryption": {"ServerSideEncryptionConfiguration": [
            {"ServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]},
        "PublicAccessBlockConfiguration": public_block,
        "NotificationConfiguration": {"QueueConfigurations": [{
            "Event": "s3:ObjectCreated:*", "Queue": {"Fn::GetAtt": ["AiopsCloudtrailFilesQueue", "Arn"]},
            "Filter": {"S3Key": {"Rules": [{"Name": "prefix", "Value": "AWSLogs/"},
                                           {"Name": "suffix", "Value": ".json.gz"}]}}}]}}}
    trail_arn = {"Fn::Sub": "arn:${AWS::Partition}:s3:::${TrailBucket}"}
    resources["TrailBucketPolicy"] = {"Type": "AWS::S3::BucketPolicy", "Condition": "CreateTrail", "Properties": {
        "Bucket": {"Ref": "TrailBucket"},
        "PolicyDocument": tls_only({"Ref": "TrailBucket"}, [
            {"Sid": "AWSCloudTrailAclCheck", "Effect": "Allow", "Principal": {"Service": "cloudtrail.amazonaws.com"},
             "Action": "s3:GetBucketAcl", "Resource": trail_arn},
            {"Sid": "AWSCloudTrailWrite", "Effect": "Allow", "Principal": {"Service": "cloudtrail.amazonaws.com"},
             "Action": "s3:PutObject",
             "Resource": {"Fn::Sub": "arn:${AWS::Partition}:s3:::${TrailBucket}/AWSLogs/${AWS::AccountId}/*"},
             "Condition": {"StringEquals": {"s3:x-amz-acl": "bucket-owner-full-control"}}}])}}
    resources["Trail"] = {"Type": "AWS::CloudTrail::Trail", "Condition": "CreateTrail",
                          "DependsOn": ["TrailBucketPolicy"], "Properties": {
        "TrailName": TRAIL_NAME, "S3BucketName": {"Ref": "TrailBucket"}, "IsLogging": True,
        "IsMultiRegionTrail": True, "IncludeGlobalServiceEvents": True, "EnableLogFileValidation": True}}

    # --- topics and SES ---------------------------------------------------------------------------
    for team in teams:
        resources[f"Topic{_logical(team)}"] = {"Type": "AWS::SNS::Topic", "Properties": {
            "TopicName": f"aiops-alerts-{team}", "KmsMasterKeyId": "alias/aws/sns",
            "Tags": [{"Key": "team", "Value": team}]}}
    resources["SenderIdentity"] = {"Type": "AWS::SES::EmailIdentity", "Properties": {
        "EmailIdentity": {"Ref": "SenderEmail"}}}

    # --- optional: AWS Config + CIS rules, Security Hub + CIS v3.0.0 -------------------------------
    resources["ConfigRole"] = {"Type": "AWS::IAM::Role", "Condition": "EnableConfig", "Properties": {
        "RoleName": "aiops-config-recorder",
        "AssumeRolePolicyDocument": {"Version": "2012-10-17", "Statement": [{
            "Effect": "Allow", "Principal": {"Service": "config.amazonaws.com"}, "Action": "sts:AssumeRole"}]},
        "ManagedPolicyArns": [{"Fn::Sub": "arn:${AWS::Partition}:iam::aws:policy/service-role/AWS_ConfigRole"}],
        "Policies": [{"PolicyName": "deliver", "PolicyDocument": {"Version": "2012-10-17", "Statement": [{
            "Effect": "Allow", "Action": "s3:PutObject",
            "Resource": {"Fn::Sub": "arn:${AWS::Partition}:s3:::${ArtifactBucket}/config/*"}}]}}]}}
    resources["ConfigRecorder"] = {"Type": "AWS::Config::ConfigurationRecorder", "Condition": "EnableConfig",
                                   "Properties": {
        "Name": "default", "RoleARN": {"Fn::GetAtt": ["ConfigRole", "Arn"]},
        "RecordingGroup": {"AllSupported": True, "IncludeGlobalResourceTypes": True}}}
    resources["ConfigDeliveryChannel"] = {"Type": "AWS::Config::DeliveryChannel", "Condition": "EnableConfig",
                                          "Properties": {
        "Name": "default", "S3BucketName": {"Ref": "ArtifactBucket"}, "S3KeyPrefix": "config"}}
    for name, identifier in CIS_CONFIG_RULES.items():
        props: dict[str, Any] = {"ConfigRuleName": name, "Source": {"Owner": "AWS", "SourceIdentifier": identifier}}
        if identifier in CIS_RULE_INPUTS:
            props["InputParameters"] = CIS_RULE_INPUTS[identifier]
        resources[_logical(name) + "Rule"] = {"Type": "AWS::Config::ConfigRule", "Condition": "EnableConfig",
                                              "DependsOn": ["ConfigRecorder"], "Properties": props}
    resources["SecurityHub"] = {"Type": "AWS::SecurityHub::Hub", "Condition": "EnableSecurityHub",
                                "Properties": {"EnableDefaultStandards": False}}
    resources["SecurityHubCis"] = {"Type": "AWS::SecurityHub::Standard", "Condition": "EnableSecurityHub",
                                   "DependsOn": ["SecurityHub"], "Properties": {
        "StandardsArn": {"Fn::Sub": "arn:${AWS::Partition}:securityhub:${AWS::Region}::" + CIS_STANDARD}}}

    outputs = {
        "ReaderRoleArn": {"Description": "Role of connection aws_default", "Value": {"Fn::GetAtt": ["ReaderRole", "Arn"]}},
        "ExecutorRoleArn": {"Description": "Role of connection aws_executor",
                            "Value": {"Fn::GetAtt": ["ExecutorRole", "Arn"]}},
        "ArtifactBucket": {"Description": "AIOPS_ARTIFACT_BUCKET", "Value": {"Ref": "ArtifactBucket"}},
        "OpsEventsQueueUrl": {"Description": "AIOPS_ALERTING_QUEUE_URL", "Value": {"Ref": "AiopsOpsEventsQueue"}},
        "CloudTrailFilesQueueUrl": {"Description": "AIOPS_SECURITY_QUEUE_URL",
                                    "Value": {"Ref": "AiopsCloudtrailFilesQueue"}},
        "CloudTrailFilesQueueArn": {"Description": "Target of the trail bucket's ObjectCreated notifications",
                                    "Value": {"Fn::GetAtt": ["AiopsCloudtrailFilesQueue", "Arn"]}},
    }
    parameters = {
        "ArtifactBucketName": {"Type": "String", "Default": "matcarv-aiops-artifacts",
                               "Description": "Artifact bucket (AIOPS_ARTIFACT_BUCKET); globally unique",
                               "AllowedPattern": "^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$"},
        "TrailBucketName": {"Type": "String", "Default": "",
                            "Description": "Bucket of an existing trail (empty: the stack creates trail "
                                           "aiops-trail and its bucket). With an existing bucket, add an "
                                           "ObjectCreated notification to CloudTrailFilesQueueArn yourself."},
        "EventBusName": {"Type": "String", "Default": "default", "Description": "Bus of operational events"},
        "SenderEmail": {"Type": "String", "Default": "aiops@matcarv.example",
                        "Description": "From address of the platform's emails (AIOPS_EMAIL_SENDER)"},
        "TrustedPrincipalArn": {"Type": "String", "Default": "",
                                "Description": "Who may assume the two roles (the Airflow workers' role); "
                                               "empty: this account's IAM principals allowed by their policies"},
        "EnforceTls": {"Type": "String", "Default": "true", "AllowedValues": ["true", "false"],
                       "Description": "Deny non-TLS access to the stack's buckets (false only for a plain-http "
                                      "emulator endpoint)"},
        "EnableConfig": {"Type": "String", "Default": "false", "AllowedValues": ["true", "false"],
                         "Description": "Create the AWS Config recorder, delivery channel and CIS rules"},
        "EnableSecurityHub": {"Type": "String", "Default": "false", "AllowedValues": ["true", "false"],
                              "Description": "Enable Security Hub with the CIS AWS Foundations Benchmark v3.0.0"},
    }
    conditions = {
        "CreateTrail": {"Fn::Equals": [{"Ref": "TrailBucketName"}, ""]},
        "HasTrustedPrincipal": {"Fn::Not": [{"Fn::Equals": [{"Ref": "TrustedPrincipalArn"}, ""]}]},
        "EnforceTls": {"Fn::Equals": [{"Ref": "EnforceTls"}, "true"]},
        "EnableConfig": {"Fn::Equals": [{"Ref": "EnableConfig"}, "true"]},
        "EnableSecurityHub": {"Fn::Equals": [{"Ref": "EnableSecurityHub"}, "true"]},
    }
    return {"AWSTemplateFormatVersion": "2010-09-09", "Description": STACK_DESCRIPTION,
            "Parameters": parameters, "Conditions": conditions, "Resources": resources, "Outputs": outputs}


def render_yaml(template: dict[str, Any]) -> str:
    import yaml

    header = ("# GENERATED by `aiops account template` from the permission declarations in src/aiops and\n"
              "# include/runbooks/*.meta.yaml. Do not edit; regenerate (a test fails when it is stale).\n")
    plain = json.loads(json.dumps(template))  # no shared objects: YAML aliases are not CloudFormation
    return header + yaml.safe_dump(plain, sort_keys=False, width=120)


def template_path() -> Path:
    return PROJECT_ROOT / "infra" / "bootstrap.yaml"
