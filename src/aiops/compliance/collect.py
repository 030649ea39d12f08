"""Collectors: page through each service once per region (``settings.regions``) into records.

Every record is a JSON-able dict with ``id``, ``type`` (ASFF resource type), ``region``, ``arn``,
``name``, ``tags`` plus the attributes the checks read. A collector that fails (AccessDenied, an
API the account or emulator lacks) records the reason in ``Inventory.errors[kind]``; the checks
that need that kind are reported as not evaluated, the rest run.

IAM permissions (read-only; the AWS managed ``SecurityAudit`` policy covers them): iam:Get*/List*,
iam:GenerateCredentialReport, s3:GetBucket*/ListAllMyBuckets/GetEncryptionConfiguration/
GetBucketPublicAccessBlock, ec2:Describe*/GetEbsEncryptionByDefault, rds:Describe*, kms:List*/
DescribeKey/GetKeyRotationStatus, cloudtrail:DescribeTrails/GetTrailStatus, config:Describe*,
logs:DescribeLogGroups, sts:GetCallerIdentity.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote

from botocore.exceptions import ClientError

from aiops.account.permissions import permissions
from aiops.compliance.model import Inventory
from aiops.core import aws
from aiops.core.settings import get_settings
from aiops.core.times import iso as _iso

PERMISSIONS = permissions(
    "the compliance inventory (read-only describes of every checked service)",
    reader=(
        "sts:GetCallerIdentity",
        "cloudtrail:DescribeTrails",
        "cloudtrail:GetTrailStatus",
        "config:DescribeConfigurationRecorderStatus",
        "config:DescribeConfigurationRecorders",
        "ec2:DescribeFlowLogs",
        "ec2:DescribeInstances",
        "ec2:DescribeNetworkAcls",
        "ec2:DescribeSecurityGroups",
        "ec2:DescribeSnapshotAttribute",
        "ec2:DescribeSnapshots",
        "ec2:DescribeVolumes",
        "ec2:DescribeVpcs",
        "ec2:GetEbsEncryptionByDefault",
        "iam:GenerateCredentialReport",
        "iam:GetAccessKeyLastUsed",
        "iam:GetAccountPasswordPolicy",
        "iam:GetAccountSummary",
        "iam:GetCredentialReport",
        "iam:GetLoginProfile",
        "iam:GetPolicyVersion",
        "iam:GetUser",
        "iam:ListAccessKeys",
        "iam:ListAttachedUserPolicies",
        "iam:ListMFADevices",
        "iam:ListPolicies",
        "iam:ListPolicyTags",
        "iam:ListUserPolicies",
        "iam:ListUserTags",
        "iam:ListUsers",
        "kms:DescribeKey",
        "kms:GetKeyRotationStatus",
        "kms:ListKeys",
        "kms:ListResourceTags",
        "logs:DescribeLogGroups",
        "rds:DescribeDBInstances",
        "rds:DescribeDBSnapshotAttributes",
        "rds:DescribeDBSnapshots",
        "s3:ListAllMyBuckets",
        "s3:GetBucketLocation",
        "s3:GetBucketPublicAccessBlock",
        "s3:GetBucketPolicy",
        "s3:GetEncryptionConfiguration",
        "s3:GetBucketAcl",
        "s3:GetBucketLogging",
        "s3:GetBucketTagging",
    ),
)

log = logging.getLogger(__name__)

Collector = Callable[[Inventory, str], None]
GLOBAL: dict[str, Collector] = {}  # collected once (IAM, S3 bucket list)
REGIONAL: dict[str, Collector] = {}  # collected per region


def collector(kind: str, *, regional: bool) -> Callable[[Collector], Collector]:
    def register(fn: Collector) -> Collector:
        target = REGIONAL if regional else GLOBAL
        if kind in GLOBAL or kind in REGIONAL:
            raise ValueError(f"collector {kind!r} registered twice")
        target[kind] = fn
        return fn
    return register


def _tags(items: list[dict[str, Any]] | None, key: str = "Key", value: str = "Value") -> dict[str, str]:
    return {t[key]: t[value] for t in items or []}




def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _pages(client: Any, op: str, key: str, **kwargs: Any) -> list[Any]:
    out: list[Any] = []
    for page in client.get_paginator(op).paginate(**kwargs):
        out.extend(page.get(key, []))
    return out


def collect(regions: list[str] | None = None, kinds: list[str] | None = None,
            as_of: datetime | None = None) -> Inventory:
    """One sweep's inventory of the account (``regions`` default: settings); ages are measured
    against ``as_of`` (default now)."""
    regions = regions or list(get_settings().regions)
    ident = aws.client("sts").get_caller_identity()
    partition = ident["Arn"].split(":")[1] if ident.get("Arn", "").startswith("arn:") else "aws"
    inv = Inventory(account_id=ident["Account"], partition=partition, regions=regions,
                    collected_at=(as_of or datetime.now(UTC)).astimezone(UTC).isoformat())
    for kind, fn in GLOBAL.items():
        if kinds is None or kind in kinds:
            _run(inv, kind, fn, regions[0])
    for region in regions:
        for kind, fn in REGIONAL.items():
            if kinds is None or kind in kinds:
                _run(inv, kind, fn, region)
    return inv


def _run(inv: Inventory, kind: str, fn: Collector, region: str) -> None:
    import time

    started, before = time.monotonic(), len(inv.of(kind))
    try:
        fn(inv, region)
        log.info("collected %d %s in %s (%.1fs)", len(inv.of(kind)) - before, kind, region,
                 time.monotonic() - started)
    except ClientError as exc:
        inv.errors[kind] = f"{_code(exc)}: {exc.response.get('Error', {}).get('Message', '')} ({region})"
        log.warning("collector %s failed in %s: %s", kind, region, exc)


# -- IAM (global) -------------------------------------------------------------------------------


@collector("account", regional=False)
def account(inv: Inventory, region: str) -> None:
    iam = aws.client("iam")
    summary = iam.get_account_summary()["SummaryMap"]
    try:
        policy: dict[str, Any] | None = iam.get_account_password_policy()["PasswordPolicy"]
    except ClientError as exc:
        if _code(exc) != "NoSuchEntity":
            raise
        policy = None
    root = _root_row(iam)
    inv.add("account", {
        "id": inv.account_id, "type": "AwsAccount", "region": region,
        "arn": f"AWS::::Account:{inv.account_id}", "name": inv.account_id, "tags": {},
        "summary": summary, "password_policy": policy, "root": root,
    })


def _root_row(iam: Any) -> dict[str, str] | None:
    """The credential report's ``<root_account>`` row (real AWS has one; moto does not)."""
    import csv
    import io
    import time

    for _ in range(50):  # the report takes a few seconds on a fresh account
        if iam.generate_credential_report().get("State") == "COMPLETE":
            break
        time.sleep(0.2)
    content = iam.get_credential_report()["Content"]
    text = content.decode() if isinstance(content, bytes) else content
    for row in csv.DictReader(io.StringIO(text)):
        if row.get("user") == "<root_account>":
            return dict(row)
    return None


@collector("iam_users", regional=False)
def iam_users(inv: Inventory, region: str) -> None:
    iam = aws.client("iam")
    for user in _pages(iam, "list_users", "Users"):
        name = user["UserName"]
        try:
            iam.get_login_profile(UserName=name)
            console = True
        except ClientError as exc:
            if _code(exc) != "NoSuchEntity":
                raise
            console = False
        mfa = iam.list_mfa_devices(UserName=name)["MFADevices"]
        keys = []
        for k in iam.list_access_keys(UserName=name)["AccessKeyMetadata"]:
            used = iam.get_access_key_last_used(AccessKeyId=k["AccessKeyId"]).get("AccessKeyLastUsed", {})
            keys.append({"id": k["AccessKeyId"], "status": k["Status"], "created": _iso(k["CreateDate"]),
                         "last_used": _iso(used.get("LastUsedDate"))})
        detail = iam.get_user(UserName=name)["User"]
        inv.add("iam_users", {
            "id": name, "type": "AwsIamUser", "region": region, "arn": user["Arn"], "name": name,
            "tags": _tags(iam.list_user_tags(UserName=name).get("Tags")),
            "created": _iso(user.get("CreateDate")), "console": console, "mfa_devices": len(mfa),
            "password_last_used": _iso(detail.get("PasswordLastUsed")), "access_keys": keys,
            "attached_policies": [p["PolicyArn"] for p in _pages(
                iam, "list_attached_user_policies", "AttachedPolicies", UserName=name)],
            "inline_policies": _pages(iam, "list_user_policies", "PolicyNames", UserName=name),
        })


@collector("iam_policies", regional=False)
def iam_policies(inv: Inventory, region: str) -> None:
    iam = aws.client("iam")
    for p in _pages(iam, "list_policies", "Policies", Scope="Local"):
        version = iam.get_policy_version(PolicyArn=p["Arn"], VersionId=p["DefaultVersionId"])["PolicyVersion"]
        doc = version["Document"]
        if isinstance(doc, str):
            doc = json.loads(unquote(doc))
        inv.add("iam_policies", {
            "id": p["PolicyName"], "type": "AwsIamPolicy", "region": region, "arn": p["Arn"],
            "name": p["PolicyName"], "tags": _tags(iam.list_policy_tags(PolicyArn=p["Arn"]).get("Tags")),
            "attachment_count": p.get("AttachmentCount", 0), "document": doc,
        })


# -- S3 (global list; each bucket's own region) -------------------------------------------------


def _optional(call: Callable[..., Any], missing: str, **kwargs: Any) -> Any:
    """``call(**kwargs)``, or None when AWS answers the ``missing`` error code (not configured)."""
    try:
        return call(**kwargs)
    except ClientError as exc:
        if _code(exc) == missing:
            return None
        raise


@collector("buckets", regional=False)
def buckets(inv: Inventory, region: str) -> None:
    s3 = aws.client("s3")
    for b in s3.list_buckets().get("Buckets", []):
        name = b["Name"]
        loc = _optional(s3.get_bucket_location, "NoSuchBucket", Bucket=name)
        if loc is None:
            continue
        bucket_region = loc.get("LocationConstraint") or "us-east-1"
        pab = (_optional(s3.get_public_access_block, "NoSuchPublicAccessBlockConfiguration", Bucket=name)
               or {}).get("PublicAccessBlockConfiguration")
        policy_text = (_optional(s3.get_bucket_policy, "NoSuchBucketPolicy", Bucket=name) or {}).get("Policy")
        enc = (_optional(s3.get_bucket_encryption, "ServerSideEncryptionConfigurationNotFoundError", Bucket=name)
               or {}).get("ServerSideEncryptionConfiguration")
        acl = s3.get_bucket_acl(Bucket=name).get("Grants", [])
        logging_cfg = s3.get_bucket_logging(Bucket=name).get("LoggingEnabled")
        tags = (_optional(s3.get_bucket_tagging, "NoSuchTagSet", Bucket=name) or {}).get("TagSet")
        inv.add("buckets", {
            "id": name, "type": "AwsS3Bucket", "region": bucket_region, "arn": f"arn:{inv.partition}:s3:::{name}",
            "name": name, "tags": _tags(tags), "public_access_block": pab,
            "policy": json.loads(policy_text) if policy_text else None, "encryption": enc,
            "acl_grants": acl, "logging": logging_cfg,
        })


# -- CloudTrail (trails are listed from every region; keep each trail once, from its home) ------


@collector("trails", regional=True)
def trails(inv: Inventory, region: str) -> None:
    ct = aws.client("cloudtrail", region=region)
    seen = {t["arn"] for t in inv.of("trails")}
    for t in ct.describe_trails(includeShadowTrails=True).get("trailList", []):
        if t["TrailARN"] in seen:
            continue
        status = ct.get_trail_status(Name=t["TrailARN"])
        inv.add("trails", {
            "id": t["Name"], "type": "AwsCloudTrailTrail", "region": t.get("HomeRegion", region),
            "arn": t["TrailARN"], "name": t["Name"], "tags": {},
            "multi_region": bool(t.get("IsMultiRegionTrail")),
            "log_file_validation": bool(t.get("LogFileValidationEnabled")),
            "kms_key_id": t.get("KmsKeyId"), "bucket": t.get("S3BucketName"),
            "is_logging": bool(status.get("IsLogging")),
            "include_global_service_events": bool(t.get("IncludeGlobalServiceEvents")),
        })


@collector("config_recorders", regional=True)
def config_recorders(inv: Inventory, region: str) -> None:
    cfg = aws.client("config", region=region)
    recorders = cfg.describe_configuration_recorders().get("ConfigurationRecorders", [])
    statuses = {s["name"]: s for s in cfg.describe_configuration_recorder_status().get(
        "ConfigurationRecordersStatus", [])}
    inv.add("config_recorders", {
        "id": f"{inv.account_id}/{region}", "type": "AwsAccount", "region": region,
        "arn": f"AWS::::Account:{inv.account_id}", "name": f"AWS Config in {region}", "tags": {},
        "recorders": [{"name": r["name"], "all_supported": r.get("recordingGroup", {}).get("allSupported", False),
                       "recording": bool(statuses.get(r["name"], {}).get("recording"))} for r in recorders],
    })


# -- EC2 / VPC ----------------------------------------------------------------------------------


@collector("vpcs", regional=True)
def vpcs(inv: Inventory, region: str) -> None:
    ec2 = aws.client("ec2", region=region)
    flows: dict[str, list[dict[str, Any]]] = {}
    for f in _pages(ec2, "describe_flow_logs", "FlowLogs"):
        flows.setdefault(f["ResourceId"], []).append({"id": f["FlowLogId"], "status": f.get("FlowLogStatus"),
                                                      "traffic": f.get("TrafficType")})
    for v in _pages(ec2, "describe_vpcs", "Vpcs"):
        tags = _tags(v.get("Tags"))
        inv.add("vpcs", {
            "id": v["VpcId"], "type": "AwsEc2Vpc", "region": region,
            "arn": f"arn:{inv.partition}:ec2:{region}:{v.get('OwnerId', inv.account_id)}:vpc/{v['VpcId']}",
            "name": tags.get("Name"), "tags": tags, "is_default": bool(v.get("IsDefault")),
            "flow_logs": flows.get(v["VpcId"], []),
        })


@collector("security_groups", regional=True)
def security_groups(inv: Inventory, region: str) -> None:
    ec2 = aws.client("ec2", region=region)
    for g in _pages(ec2, "describe_security_groups", "SecurityGroups"):
        inv.add("security_groups", {
            "id": g["GroupId"], "type": "AwsEc2SecurityGroup", "region": region,
            "arn": f"arn:{inv.partition}:ec2:{region}:{g.get('OwnerId', inv.account_id)}:security-group/{g['GroupId']}",
            "name": g.get("GroupName"), "tags": _tags(g.get("Tags")), "vpc_id": g.get("VpcId"),
            "ingress": g.get("IpPermissions", []), "egress": g.get("IpPermissionsEgress", []),
        })


@collector("network_acls", regional=True)
def network_acls(inv: Inventory, region: str) -> None:
    ec2 = aws.client("ec2", region=region)
    for n in _pages(ec2, "describe_network_acls", "NetworkAcls"):
        tags = _tags(n.get("Tags"))
        inv.add("network_acls", {
            "id": n["NetworkAclId"], "type": "AwsEc2NetworkAcl", "region": region,
            "arn": f"arn:{inv.partition}:ec2:{region}:{n.get('OwnerId', inv.account_id)}:network-acl/{n['NetworkAclId']}",
            "name": tags.get("Name"), "tags": tags, "entries": n.get("Entries", []),
            "is_default": bool(n.get("IsDefault")),
        })


@collector("instances", regional=True)
def instances(inv: Inventory, region: str) -> None:
    ec2 = aws.client("ec2", region=region)
    for res in _pages(ec2, "describe_instances", "Reservations"):
        for i in res.get("Instances", []):
            if i.get("State", {}).get("Name") == "terminated":
                continue
            tags = _tags(i.get("Tags"))
            inv.add("instances", {
                "id": i["InstanceId"], "type": "AwsEc2Instance", "region": region,
                "arn": f"arn:{inv.partition}:ec2:{region}:{res.get('OwnerId', inv.account_id)}:instance/{i['InstanceId']}",
                "name": tags.get("Name"), "tags": tags,
                "http_tokens": i.get("MetadataOptions", {}).get("HttpTokens"),
                "http_endpoint": i.get("MetadataOptions", {}).get("HttpEndpoint", "enabled"),
            })


@collector("ebs_regions", regional=True)
def ebs_regions(inv: Inventory, region: str) -> None:
    ec2 = aws.client("ec2", region=region)
    inv.add("ebs_regions", {
        "id": f"{inv.account_id}/{region}", "type": "AwsAccount", "region": region,
        "arn": f"AWS::::Account:{inv.account_id}", "name": f"EBS defaults in {region}", "tags": {},
        "encryption_by_default": bool(ec2.get_ebs_encryption_by_default().get("EbsEncryptionByDefault")),
    })


@collector("volumes", regional=True)
def volumes(inv: Inventory, region: str) -> None:
    ec2 = aws.client("ec2", region=region)
    for v in _pages(ec2, "describe_volumes", "Volumes"):
        tags = _tags(v.get("Tags"))
        inv.add("volumes", {
            "id": v["VolumeId"], "type": "AwsEc2Volume", "region": region,
            "arn": f"arn:{inv.partition}:ec2:{region}:{inv.account_id}:volume/{v['VolumeId']}",
            "name": tags.get("Name"), "tags": tags, "encrypted": bool(v.get("Encrypted")),
        })


@collector("ebs_snapshots", regional=True)
def ebs_snapshots(inv: Inventory, region: str) -> None:
    """Owned snapshots; public ones are the candidates ``RestorableByUserIds=["all"]`` returns, each
    confirmed by its createVolumePermission attribute (moto ignores the filter: all are confirmed)."""
    from concurrent.futures import ThreadPoolExecutor

    ec2 = aws.client("ec2", region=region)
    owned = _pages(ec2, "describe_snapshots", "Snapshots", OwnerIds=["self"])
    candidates = [s["SnapshotId"] for s in _pages(ec2, "describe_snapshots", "Snapshots", OwnerIds=["self"],
                                                   RestorableByUserIds=["all"])]

    def is_public(snapshot_id: str) -> bool:
        perms = ec2.describe_snapshot_attribute(SnapshotId=snapshot_id, Attribute="createVolumePermission")
        return any(p.get("Group") == "all" for p in perms.get("CreateVolumePermissions", []))

    with ThreadPoolExecutor(max_workers=8) as pool:
        public = {sid for sid, pub in zip(candidates, pool.map(is_public, candidates), strict=True) if pub}
    for s in owned:
        tags = _tags(s.get("Tags"))
        inv.add("ebs_snapshots", {
            "id": s["SnapshotId"], "type": "AwsEc2Snapshot", "region": region,
            "arn": f"arn:{inv.partition}:ec2:{region}::snapshot/{s['SnapshotId']}",
            "name": tags.get("Name"), "tags": tags, "public": s["SnapshotId"] in public,
        })


# -- RDS ----------------------------------------------------------------------------------------


@collector("rds_instances", regional=True)
def rds_instances(inv: Inventory, region: str) -> None:
    rds = aws.client("rds", region=region)
    for d in _pages(rds, "describe_db_instances", "DBInstances"):
        inv.add("rds_instances", {
            "id": d["DBInstanceIdentifier"], "type": "AwsRdsDbInstance", "region": region,
            "arn": d["DBInstanceArn"], "name": d["DBInstanceIdentifier"], "tags": _tags(d.get("TagList")),
            "encrypted": bool(d.get("StorageEncrypted")), "public": bool(d.get("PubliclyAccessible")),
            "auto_minor_version_upgrade": bool(d.get("AutoMinorVersionUpgrade", True)),
        })


@collector("rds_snapshots", regional=True)
def rds_snapshots(inv: Inventory, region: str) -> None:
    rds = aws.client("rds", region=region)
    for s in _pages(rds, "describe_db_snapshots", "DBSnapshots", SnapshotType="manual"):
        attrs = rds.describe_db_snapshot_attributes(DBSnapshotIdentifier=s["DBSnapshotIdentifier"])
        restore = [a for a in attrs["DBSnapshotAttributesResult"].get("DBSnapshotAttributes", [])
                   if a.get("AttributeName") == "restore"]
        inv.add("rds_snapshots", {
            "id": s["DBSnapshotIdentifier"], "type": "AwsRdsDbSnapshot", "region": region,
            "arn": s["DBSnapshotArn"], "name": s["DBSnapshotIdentifier"], "tags": _tags(s.get("TagList")),
            "public": any("all" in a.get("AttributeValues", []) for a in restore),
        })


# -- KMS / Logs ---------------------------------------------------------------------------------


@collector("kms_keys", regional=True)
def kms_keys(inv: Inventory, region: str) -> None:
    kms = aws.client("kms", region=region)
    for k in _pages(kms, "list_keys", "Keys"):
        meta = kms.describe_key(KeyId=k["KeyId"])["KeyMetadata"]
        if meta.get("KeyManager") != "CUSTOMER" or meta.get("KeyState") != "Enabled":
            continue
        symmetric = meta.get("KeySpec", meta.get("CustomerMasterKeySpec")) == "SYMMETRIC_DEFAULT"
        rotation = (kms.get_key_rotation_status(KeyId=k["KeyId"]).get("KeyRotationEnabled")
                    if symmetric else None)
        inv.add("kms_keys", {
            "id": meta["KeyId"], "type": "AwsKmsKey", "region": region, "arn": meta["Arn"],
            "name": meta.get("Description") or meta["KeyId"],
            "tags": _tags(kms.list_resource_tags(KeyId=k["KeyId"]).get("Tags"), "TagKey", "TagValue"),
            "symmetric": symmetric, "rotation_enabled": rotation,
        })


@collector("log_groups", regional=True)
def log_groups(inv: Inventory, region: str) -> None:
    logs = aws.client("logs", region=region)
    for g in _pages(logs, "describe_log_groups", "logGroups"):
        arn = g.get("arn", "").removesuffix(":*") or None
        tags = (_optional(logs.list_tags_log_group, "ResourceNotFoundException", logGroupName=g["logGroupName"])
                or {}).get("tags", {})
        inv.add("log_groups", {
            "id": g["logGroupName"], "type": "AwsLogsLogGroup", "region": region, "arn": arn,
            "name": g["logGroupName"], "tags": tags, "retention_days": g.get("retentionInDays"),
        })
