"""Collectors for right-sizing: what exists, its type, size, state and tags, read with describe calls
(paged, once per region). The records are plain dataclasses; the rules never call AWS."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from aiops.account.permissions import permissions
from aiops.core import aws

PERMISSIONS = permissions(
    "the cost inventory",
    reader=(
        "ec2:DescribeAddresses",
        "ec2:DescribeInstances",
        "ec2:DescribeSnapshots",
        "ec2:DescribeVolumes",
        "elasticloadbalancing:DescribeLoadBalancers",
        "elasticloadbalancing:DescribeTags",
        "rds:DescribeDBInstances",
        "rds:ListTagsForResource",
    ),
)

PROTECTED_TAG = "aiops:protected"
KEEP_TAG = "aiops:keep"


def _tags(items: list[dict[str, Any]] | None) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in items or []}


def is_true(tags: dict[str, str], key: str) -> bool:
    return any(k.strip().lower() == key and str(v).strip().lower() == "true" for k, v in tags.items())


@dataclass(frozen=True)
class Resource:
    id: str
    region: str
    tags: dict[str, str]

    @property
    def protected(self) -> bool:
        return is_true(self.tags, PROTECTED_TAG)

    @property
    def name(self) -> str:
        return self.tags.get("Name", "")


@dataclass(frozen=True)
class Instance(Resource):
    instance_type: str = ""
    state: str = ""
    platform: str = "linux"

    @property
    def auto_scaling_group(self) -> str | None:
        return self.tags.get("aws:autoscaling:groupName")


@dataclass(frozen=True)
class Volume(Resource):
    volume_type: str = ""
    size_gib: int = 0
    state: str = ""
    attached_to: list[str] = field(default_factory=list)
    created: datetime | None = None


@dataclass(frozen=True)
class Snapshot(Resource):
    volume_size_gib: int = 0
    started: datetime | None = None
    volume_id: str = ""
    description: str = ""


@dataclass(frozen=True)
class ElasticIp(Resource):
    public_ip: str = ""
    association_id: str | None = None


@dataclass(frozen=True)
class Database(Resource):
    instance_class: str = ""
    status: str = ""
    engine: str = ""


@dataclass(frozen=True)
class LoadBalancer(Resource):
    name_: str = ""
    dimension: str = ""  # CloudWatch LoadBalancer dimension: app/<name>/<id>
    lb_type: str = "application"


@dataclass
class Inventory:
    instances: list[Instance] = field(default_factory=list)
    volumes: list[Volume] = field(default_factory=list)
    snapshots: list[Snapshot] = field(default_factory=list)
    elastic_ips: list[ElasticIp] = field(default_factory=list)
    databases: list[Database] = field(default_factory=list)
    load_balancers: list[LoadBalancer] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        return {k: len(v) for k, v in vars(self).items()}


def collect_inventory(regions: list[str]) -> Inventory:
    inv = Inventory()
    for region in regions:
        ec2 = aws.client("ec2", region=region)
        for page in ec2.get_paginator("describe_instances").paginate():
            for res in page["Reservations"]:
                for i in res["Instances"]:
                    inv.instances.append(Instance(
                        id=i["InstanceId"], region=region, tags=_tags(i.get("Tags")),
                        instance_type=i["InstanceType"], state=i["State"]["Name"],
                        platform=(i.get("PlatformDetails") or "Linux/UNIX").lower()))
        for page in ec2.get_paginator("describe_volumes").paginate():
            for v in page["Volumes"]:
                inv.volumes.append(Volume(
                    id=v["VolumeId"], region=region, tags=_tags(v.get("Tags")), volume_type=v["VolumeType"],
                    size_gib=int(v["Size"]), state=v["State"],
                    attached_to=[a["InstanceId"] for a in v.get("Attachments", [])], created=v.get("CreateTime")))
        for page in ec2.get_paginator("describe_snapshots").paginate(OwnerIds=["self"]):
            for s in page["Snapshots"]:
                inv.snapshots.append(Snapshot(
                    id=s["SnapshotId"], region=region, tags=_tags(s.get("Tags")),
                    volume_size_gib=int(s.get("VolumeSize") or 0), started=s.get("StartTime"),
                    volume_id=s.get("VolumeId", ""), description=s.get("Description", "")))
        for a in ec2.describe_addresses().get("Addresses", []):
            inv.elastic_ips.append(ElasticIp(
                id=a.get("AllocationId") or a["PublicIp"], region=region, tags=_tags(a.get("Tags")),
                public_ip=a.get("PublicIp", ""), association_id=a.get("AssociationId")))
        rds = aws.client("rds", region=region)
        for page in rds.get_paginator("describe_db_instances").paginate():
            for db in page["DBInstances"]:
                tags = _tags(db.get("TagList")) or _tags(
                    rds.list_tags_for_resource(ResourceName=db["DBInstanceArn"]).get("TagList"))
                inv.databases.append(Database(
                    id=db["DBInstanceIdentifier"], region=region, tags=tags, instance_class=db["DBInstanceClass"],
                    status=db.get("DBInstanceStatus", ""), engine=db.get("Engine", "")))
        elb = aws.client("elbv2", region=region)
        lbs = [lb for page in elb.get_paginator("describe_load_balancers").paginate()
               for lb in page["LoadBalancers"]]
        tags_by_arn: dict[str, dict[str, str]] = {}
        for k in range(0, len(lbs), 20):  # DescribeTags takes at most 20 ARNs
            arns = [lb["LoadBalancerArn"] for lb in lbs[k:k + 20]]
            for d in elb.describe_tags(ResourceArns=arns).get("TagDescriptions", []):
                tags_by_arn[d["ResourceArn"]] = _tags(d.get("Tags"))
        for lb in lbs:
            arn = lb["LoadBalancerArn"]
            inv.load_balancers.append(LoadBalancer(
                id=arn, region=region, tags=tags_by_arn.get(arn, {}), name_=lb["LoadBalancerName"],
                dimension=arn.split(":loadbalancer/", 1)[-1], lb_type=lb.get("Type", "application")))
    return inv
