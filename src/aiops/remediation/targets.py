"""Describe the resources a runbook would act on: existence, state and tags (for guards and plans).

One function per target kind, registered in :data:`RESOLVERS`; each returns one
:class:`~aiops.remediation.guards.TargetInfo` per id, ``exists=False`` for ids AWS does not know.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from botocore.exceptions import ClientError

from aiops.account.permissions import permissions
from aiops.core import aws
from aiops.remediation.guards import TargetInfo

PERMISSIONS = permissions(
    "the resources whose metrics are collected",
    reader=(
        "autoscaling:DescribeAutoScalingGroups",
        "ec2:DescribeAddresses",
        "ec2:DescribeInstances",
        "ec2:DescribeSecurityGroups",
        "ec2:DescribeSnapshots",
        "ec2:DescribeVolumes",
        "logs:DescribeLogGroups",
        "logs:ListTagsLogGroup",
        "rds:DescribeDBInstances",
        "rds:ListTagsForResource",
        "s3:GetBucketTagging",
        "s3:ListBucket",
        "s3:ListAllMyBuckets",
    ),
)

Resolver = Callable[[list[str]], list[TargetInfo]]
RESOLVERS: dict[str, Resolver] = {}


def resolver(kind: str) -> Callable[[Resolver], Resolver]:
    def register(fn: Resolver) -> Resolver:
        if kind in RESOLVERS:
            raise ValueError(f"target kind {kind!r} registered twice")
        RESOLVERS[kind] = fn
        return fn
    return register


def _tags(items: list[dict[str, Any]] | None) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in items or []}


def _missing(ids: list[str], found: dict[str, TargetInfo], kind: str) -> list[TargetInfo]:
    return [found.get(i) or TargetInfo(id=i, kind=kind, tags={}, exists=False, state=None) for i in ids]


@resolver("ec2:instance")
def ec2_instances(ids: list[str]) -> list[TargetInfo]:
    found: dict[str, TargetInfo] = {}
    for i in ids:  # one call per id: a single unknown id fails a batched call entirely
        try:
            resp = aws.client("ec2").describe_instances(InstanceIds=[i])
        except ClientError as exc:
            if "NotFound" in exc.response["Error"]["Code"] or "Malformed" in exc.response["Error"]["Code"]:
                continue
            raise
        for res in resp.get("Reservations", []):
            for inst in res.get("Instances", []):
                tags = _tags(inst.get("Tags"))
                found[inst["InstanceId"]] = TargetInfo(
                    id=inst["InstanceId"], kind="ec2:instance", tags=tags, exists=True,
                    state=inst.get("State", {}).get("Name"),
                    detail={"name": tags.get("Name", ""), "type": inst.get("InstanceType", "")})
    return _missing(ids, found, "ec2:instance")


@resolver("ec2:security-group")
def security_groups(ids: list[str]) -> list[TargetInfo]:
    found: dict[str, TargetInfo] = {}
    for i in ids:
        try:
            groups = aws.client("ec2").describe_security_groups(GroupIds=[i])["SecurityGroups"]
        except ClientError as exc:
            if "NotFound" in exc.response["Error"]["Code"] or "Malformed" in exc.response["Error"]["Code"]:
                continue
            raise
        for g in groups:
            found[g["GroupId"]] = TargetInfo(id=g["GroupId"], kind="ec2:security-group", tags=_tags(g.get("Tags")),
                                             exists=True, state=None, detail={"name": g.get("GroupName", "")})
    return _missing(ids, found, "ec2:security-group")


@resolver("ec2:volume")
def volumes(ids: list[str]) -> list[TargetInfo]:
    found: dict[str, TargetInfo] = {}
    for i in ids:
        try:
            vols = aws.client("ec2").describe_volumes(VolumeIds=[i])["Volumes"]
        except ClientError as exc:
            if "NotFound" in exc.response["Error"]["Code"] or "Malformed" in exc.response["Error"]["Code"]:
                continue
            raise
        for v in vols:
            tags = _tags(v.get("Tags"))
            found[v["VolumeId"]] = TargetInfo(id=v["VolumeId"], kind="ec2:volume", tags=tags, exists=True,
                                              state=v.get("State"),
                                              detail={"name": tags.get("Name", ""), "type": v.get("VolumeType", ""),
                                                      "size_gib": v.get("Size")})
    return _missing(ids, found, "ec2:volume")


@resolver("ec2:elastic-ip")
def elastic_ips(ids: list[str]) -> list[TargetInfo]:
    """Elastic IPs by allocation id; state ``associated``/``unassociated``, ``released`` once gone."""
    out = []
    for i in ids:
        try:
            addresses = aws.client("ec2").describe_addresses(AllocationIds=[i])["Addresses"]
        except ClientError as exc:
            if "NotFound" in exc.response["Error"]["Code"] or "Malformed" in exc.response["Error"]["Code"]:
                addresses = []
            else:
                raise
        if not addresses:
            out.append(TargetInfo(id=i, kind="ec2:elastic-ip", tags={}, exists=False, state="released"))
            continue
        a = addresses[0]
        tags = _tags(a.get("Tags"))
        out.append(TargetInfo(id=i, kind="ec2:elastic-ip", tags=tags, exists=True,
                              state="associated" if a.get("AssociationId") else "unassociated",
                              detail={"name": tags.get("Name", ""), "public_ip": a.get("PublicIp", "")}))
    return out


@resolver("ec2:snapshot")
def snapshots(ids: list[str]) -> list[TargetInfo]:
    """EBS snapshots; state as EC2 reports it (``completed`` ...), ``deleted`` once gone."""
    out = []
    for i in ids:
        try:
            snaps = aws.client("ec2").describe_snapshots(SnapshotIds=[i])["Snapshots"]
        except ClientError as exc:
            if "NotFound" in exc.response["Error"]["Code"] or "Malformed" in exc.response["Error"]["Code"]:
                snaps = []
            else:
                raise
        if not snaps:
            out.append(TargetInfo(id=i, kind="ec2:snapshot", tags={}, exists=False, state="deleted"))
            continue
        tags = _tags(snaps[0].get("Tags"))
        out.append(TargetInfo(id=i, kind="ec2:snapshot", tags=tags, exists=True, state=snaps[0].get("State"),
                              detail={"name": tags.get("Name", ""), "size_gib": snaps[0].get("VolumeSize"),
                                      "volume": snaps[0].get("VolumeId", "")}))
    return out


@resolver("autoscaling:group")
def auto_scaling_groups(ids: list[str]) -> list[TargetInfo]:
    resp = aws.client("autoscaling").describe_auto_scaling_groups(AutoScalingGroupNames=ids)
    found = {g["AutoScalingGroupName"]: TargetInfo(
        id=g["AutoScalingGroupName"], kind="autoscaling:group", tags=_tags(g.get("Tags")), exists=True,
        state=None, detail={"desired": g.get("DesiredCapacity"), "max": g.get("MaxSize")})
        for g in resp.get("AutoScalingGroups", [])}
    return _missing(ids, found, "autoscaling:group")


@resolver("logs:log-group")
def log_groups(ids: list[str]) -> list[TargetInfo]:
    """CloudWatch Logs groups by name; tags read fail-closed (an error refuses, never "untagged")."""
    logs = aws.client("logs")
    found: dict[str, TargetInfo] = {}
    for name in ids:
        pages = logs.get_paginator("describe_log_groups").paginate(logGroupNamePrefix=name)
        if any(g["logGroupName"] == name for page in pages for g in page["logGroups"]):
            tags = logs.list_tags_log_group(logGroupName=name).get("tags", {})
            found[name] = TargetInfo(id=name, kind="logs:log-group", tags=dict(tags), exists=True, state=None)
    return _missing(ids, found, "logs:log-group")


@resolver("rds:db")
def rds_instances(ids: list[str]) -> list[TargetInfo]:
    rds = aws.client("rds")
    found: dict[str, TargetInfo] = {}
    for i in ids:
        try:
            dbs = rds.describe_db_instances(DBInstanceIdentifier=i)["DBInstances"]
        except ClientError as exc:
            if exc.response["Error"]["Code"] in {"DBInstanceNotFound", "DBInstanceNotFoundFault"}:
                continue
            raise
        for db in dbs:
            tags = _tags(db.get("TagList")) or _tags(rds.list_tags_for_resource(
                ResourceName=db["DBInstanceArn"]).get("TagList"))
            found[db["DBInstanceIdentifier"]] = TargetInfo(
                id=db["DBInstanceIdentifier"], kind="rds:db", tags=tags, exists=True,
                state=db.get("DBInstanceStatus"), detail={"class": db.get("DBInstanceClass", "")})
    return _missing(ids, found, "rds:db")


@resolver("s3:bucket")
def buckets(ids: list[str]) -> list[TargetInfo]:
    s3 = aws.client("s3")
    out = []
    for name in ids:
        # Fail closed: only "no such bucket" means missing and only "no tag set" means untagged;
        # AccessDenied or any other error refuses (a protected bucket must never look untagged).
        try:
            s3.head_bucket(Bucket=name)
        except ClientError as exc:
            if exc.response["Error"]["Code"] in {"404", "NoSuchBucket", "NotFound"}:
                out.append(TargetInfo(id=name, kind="s3:bucket", tags={}, exists=False, state=None))
                continue
            raise
        try:
            tags = _tags(s3.get_bucket_tagging(Bucket=name).get("TagSet"))
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "NoSuchTagSet":
                raise
            tags = {}
        out.append(TargetInfo(id=name, kind="s3:bucket", tags=tags, exists=True, state=None))
    return out


@resolver("account")
def account(ids: list[str]) -> list[TargetInfo]:
    me = aws.account_id()
    return [TargetInfo(id=i, kind="account", tags={}, exists=i in {me, "self", ""}, state=None) for i in ids]


def describe_targets(kind: str, ids: list[str]) -> list[TargetInfo]:
    try:
        fn = RESOLVERS[kind]
    except KeyError:
        raise ValueError(f"no resolver for target kind {kind!r} (known: {sorted(RESOLVERS)})") from None
    return fn(list(ids))
