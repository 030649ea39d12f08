"""CloudFormation resource types moto 5.2.5 lacks, so the bootstrap stack deploys in the emulator.

moto's CloudFormation skips (with a warning) every resource type it has no model for, and its
``AWS::S3::Bucket`` ignores ``PublicAccessBlockConfiguration``, ``NotificationConfiguration`` and
``VersioningConfiguration``. The bootstrap template (``infra/bootstrap.yaml``) uses them, so the
emulator adds small models that create the same state through moto's own backends:

========================================  ============================================================
``AWS::S3::BucketPolicy``                 ``PutBucketPolicy``
``AWS::SQS::QueuePolicy``                 ``SetQueueAttributes(Policy)`` on each queue
``AWS::SES::EmailIdentity``               ``VerifyEmailIdentity`` / ``VerifyDomainIdentity`` (moto
                                          marks identities verified at once; AWS waits for the link
                                          in the verification mail / the DKIM records)
``AWS::CloudTrail::Trail``                ``CreateTrail`` (+ ``StartLogging`` when ``IsLogging``)
``AWS::Config::ConfigurationRecorder``    ``PutConfigurationRecorder`` + ``StartConfigurationRecorder``
``AWS::Config::DeliveryChannel``          ``PutDeliveryChannel``
``AWS::Config::ConfigRule``               ``PutConfigRule`` (moto keeps rules; it never evaluates them)
``AWS::SecurityHub::Hub``                 ``EnableSecurityHub``
``AWS::SecurityHub::Standard``            recorded only (moto has no standards API): :data:`STANDARDS`
``AWS::S3::Bucket`` (extra properties)    ``PutPublicAccessBlock``, ``PutBucketNotificationConfiguration``,
                                          ``PutBucketVersioning``
``AWS::IAM::Role`` ``Policies``           stored as JSON text (moto stores the template's dict, which
                                          its own IAM enforcement then cannot read: HTTP 500)
========================================  ============================================================

Deleting a stack does not remove what these models created (the bootstrap stack is not deleted in
tests). Installed by :func:`aiops_sandbox.emulator.install_extensions`.
"""

from __future__ import annotations

import json
from typing import Any

#: (account, region) -> StandardsArns "enabled" by AWS::SecurityHub::Standard
STANDARDS: dict[tuple[str, str], set[str]] = {}


def _policy_text(document: Any) -> str:
    return document if isinstance(document, str) else json.dumps(document)


def _partition(region: str) -> str:
    from moto.utilities.utils import get_partition

    return get_partition(region)


def _models() -> list[type]:
    from moto.core.common_models import CloudFormationModel

    class _Simple:
        """Mixin: the models below subclass CloudFormationModel directly (moto lists direct subclasses)."""

        def __init__(self, physical_id: str) -> None:
            self.physical_id = physical_id

        @property
        def physical_resource_id(self) -> str:
            return self.physical_id

        @staticmethod
        def cloudformation_name_type() -> str:
            return ""

        @classmethod
        def create_from_cloudformation_json(cls, resource_name: str, cloudformation_json: Any, account_id: str,
                                            region_name: str, **kwargs: Any) -> Any:
            props = cloudformation_json.get("Properties", {})
            return cls(cls.apply(props, account_id, region_name) or resource_name)

        @classmethod
        def update_from_cloudformation_json(cls, original_resource: Any, new_resource_name: str,
                                            cloudformation_json: Any, account_id: str, region_name: str) -> Any:
            return cls.create_from_cloudformation_json(new_resource_name, cloudformation_json, account_id,
                                                       region_name)

        @classmethod
        def delete_from_cloudformation_json(cls, resource_name: str, cloudformation_json: Any, account_id: str,
                                            region_name: str) -> None:
            return None

        @classmethod
        def apply(cls, props: dict[str, Any], account_id: str, region: str) -> str | None:
            raise NotImplementedError

        @classmethod
        def has_cfn_attr(cls, attr: str) -> bool:
            return False

    class BucketPolicy(_Simple, CloudFormationModel):
        @staticmethod
        def cloudformation_type() -> str:
            return "AWS::S3::BucketPolicy"

        @classmethod
        def apply(cls, props: dict[str, Any], account_id: str, region: str) -> str | None:
            from moto.s3.models import s3_backends

            bucket = props["Bucket"]
            s3_backends[account_id][_partition(region)].put_bucket_policy(
                bucket, _policy_text(props["PolicyDocument"]).encode())
            return f"{bucket}-policy"

    class QueuePolicy(_Simple, CloudFormationModel):
        @staticmethod
        def cloudformation_type() -> str:
            return "AWS::SQS::QueuePolicy"

        @classmethod
        def apply(cls, props: dict[str, Any], account_id: str, region: str) -> str | None:
            from moto.sqs.models import sqs_backends

            for url in props.get("Queues", []):
                sqs_backends[account_id][region].set_queue_attributes(
                    str(url).rstrip("/").split("/")[-1], {"Policy": _policy_text(props["PolicyDocument"])})
            return None

    class EmailIdentity(_Simple, CloudFormationModel):
        @staticmethod
        def cloudformation_type() -> str:
            return "AWS::SES::EmailIdentity"

        @classmethod
        def apply(cls, props: dict[str, Any], account_id: str, region: str) -> str | None:
            from moto.ses.models import ses_backends

            identity = str(props["EmailIdentity"])
            backend = ses_backends[account_id][region]
            if "@" in identity:
                backend.verify_email_identity(identity)
            else:
                backend.verify_domain(identity)
            return identity

    class Trail(_Simple, CloudFormationModel):
        @staticmethod
        def cloudformation_type() -> str:
            return "AWS::CloudTrail::Trail"

        @classmethod
        def apply(cls, props: dict[str, Any], account_id: str, region: str) -> str | None:
            from moto.cloudtrail.models import cloudtrail_backends

            backend = cloudtrail_backends[account_id][region]
            name = props["TrailName"]
            opt: Any = props  # moto accepts None for the optional ones (its hints say str)
            backend.create_trail(
                name, props["S3BucketName"], opt.get("S3KeyPrefix"), opt.get("SnsTopicName"),
                _bool(props.get("IncludeGlobalServiceEvents", True)), _bool(props.get("IsMultiRegionTrail", False)),
                _bool(props.get("EnableLogFileValidation", False)), _bool(props.get("IsOrganizationTrail", False)),
                opt.get("CloudWatchLogsLogGroupArn"), opt.get("CloudWatchLogsRoleArn"), opt.get("KMSKeyId"),
                props.get("Tags", []))
            if _bool(props.get("IsLogging", True)):
                backend.start_logging(name)
            return name

    class ConfigurationRecorder(_Simple, CloudFormationModel):
        @staticmethod
        def cloudformation_type() -> str:
            return "AWS::Config::ConfigurationRecorder"

        @classmethod
        def apply(cls, props: dict[str, Any], account_id: str, region: str) -> str | None:
            from moto.config.models import config_backends

            group = props.get("RecordingGroup") or {}
            backend = config_backends[account_id][region]
            name = props.get("Name", "default")
            backend.put_configuration_recorder({
                "name": name, "roleARN": props["RoleARN"],
                "recordingGroup": {"allSupported": _bool(group.get("AllSupported", True)),
                                   "includeGlobalResourceTypes": _bool(group.get("IncludeGlobalResourceTypes",
                                                                                 False))}})
            return name

    class DeliveryChannel(_Simple, CloudFormationModel):
        @staticmethod
        def cloudformation_type() -> str:
            return "AWS::Config::DeliveryChannel"

        @classmethod
        def apply(cls, props: dict[str, Any], account_id: str, region: str) -> str | None:
            from moto.config.models import config_backends

            backend = config_backends[account_id][region]
            name = props.get("Name", "default")
            channel: dict[str, Any] = {"name": name, "s3BucketName": props["S3BucketName"]}
            if props.get("S3KeyPrefix"):
                channel["s3KeyPrefix"] = props["S3KeyPrefix"]
            backend.put_delivery_channel(channel)
            for recorder in list(backend.recorders):  # AWS starts recording once a channel exists
                backend.start_configuration_recorder(recorder)
            return name

    class ConfigRule(_Simple, CloudFormationModel):
        @staticmethod
        def cloudformation_type() -> str:
            return "AWS::Config::ConfigRule"

        @classmethod
        def apply(cls, props: dict[str, Any], account_id: str, region: str) -> str | None:
            from moto.config.models import config_backends

            rule: dict[str, Any] = {"ConfigRuleName": props["ConfigRuleName"], "Source": props["Source"]}
            if props.get("InputParameters"):
                rule["InputParameters"] = _policy_text(props["InputParameters"])
            config_backends[account_id][region].put_config_rule(rule)
            return str(props["ConfigRuleName"])

    class Hub(_Simple, CloudFormationModel):
        @staticmethod
        def cloudformation_type() -> str:
            return "AWS::SecurityHub::Hub"

        @classmethod
        def apply(cls, props: dict[str, Any], account_id: str, region: str) -> str | None:
            from moto.securityhub.models import securityhub_backends

            securityhub_backends[account_id][region].enable_security_hub(
                enable_default_standards=_bool(props.get("EnableDefaultStandards", False)))
            return f"arn:{_partition(region)}:securityhub:{region}:{account_id}:hub/default"

    class Standard(_Simple, CloudFormationModel):
        @staticmethod
        def cloudformation_type() -> str:
            return "AWS::SecurityHub::Standard"

        @classmethod
        def apply(cls, props: dict[str, Any], account_id: str, region: str) -> str | None:
            arn = str(props["StandardsArn"])
            STANDARDS.setdefault((account_id, region), set()).add(arn)
            return arn

    return [BucketPolicy, QueuePolicy, EmailIdentity, Trail, ConfigurationRecorder, DeliveryChannel, ConfigRule,
            Hub, Standard]


def _bool(value: Any) -> bool:
    return value if isinstance(value, bool) else str(value).lower() == "true"


def _install_bucket_properties() -> None:
    from moto.s3.models import FakeBucket, s3_backends

    if getattr(FakeBucket, "_aiops_cfn_props", False):
        return
    original = FakeBucket.create_from_cloudformation_json.__func__  # type: ignore[attr-defined]

    def create(cls: Any, resource_name: str, cloudformation_json: Any, account_id: str, region_name: str,
               **kwargs: Any) -> Any:
        bucket = original(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs)
        props = cloudformation_json.get("Properties", {})
        backend = s3_backends[account_id][_partition(region_name)]
        block = props.get("PublicAccessBlockConfiguration")
        if block:
            backend.put_public_access_block(bucket.name, {k: str(_bool(v)).lower() for k, v in block.items()})
        versioning = (props.get("VersioningConfiguration") or {}).get("Status")
        if versioning:
            backend.put_bucket_versioning(bucket.name, versioning)
        queues = (props.get("NotificationConfiguration") or {}).get("QueueConfigurations") or []
        if queues:
            backend.put_bucket_notification_configuration(bucket.name, {"QueueConfiguration": [{
                "Queue": q["Queue"], "Event": [q["Event"]],
                **({"Filter": {"S3Key": {"FilterRule": q["Filter"]["S3Key"]["Rules"]}}} if q.get("Filter") else {}),
            } for q in queues]})
        return bucket

    FakeBucket.create_from_cloudformation_json = classmethod(create)  # type: ignore[method-assign, assignment]
    FakeBucket._aiops_cfn_props = True  # type: ignore[attr-defined]


def _install_role_policy_fix() -> None:
    from moto.iam.models import Role

    if getattr(Role, "_aiops_policy_fix", False):
        return
    original = Role.put_policy

    def put_policy(self: Any, policy_name: str, policy_json: Any) -> None:
        original(self, policy_name, _policy_text(policy_json))

    Role.put_policy = put_policy  # type: ignore[method-assign]
    Role._aiops_policy_fix = True  # type: ignore[attr-defined]


_installed: list[type] = []


def install() -> None:
    """Register the models with moto's CloudFormation (idempotent)."""
    if _installed:
        return
    from moto.cloudformation import parsing

    _installed.extend(_models())
    _install_bucket_properties()
    _install_role_policy_fix()
    for cache in (parsing.get_model_list, parsing.get_model_map, parsing.get_name_type_map):
        cache.cache_clear()
