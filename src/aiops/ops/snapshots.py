"""EBS snapshot lifecycle: tag-driven policies create one snapshot per volume per day (volume tags
copied) and expire the old ones — never a snapshot an AMI uses, one tagged ``aiops:keep=true`` or
``aiops:protected=true``, and nothing of a protected volume or instance.

collect (:func:`collect`, EC2 describe calls) -> plan (:func:`plan_snapshots`, pure) -> act (the
actions ``ec2.create_snapshot`` and ``ec2.delete_snapshot``, run by the change engine).

A created snapshot carries ``aiops:snapshot-key=<policy>/<volume>/<day>``: the plan of a re-run
finds it and creates nothing, and the executor checks again right before creating.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from aiops.account.connections import executor_client
from aiops.account.permissions import permissions
from aiops.core import aws
from aiops.ops.plan import KEEP_TAG, Change, Skip, is_protected, tag_dict
from aiops.ops.policy import SnapshotPolicy
from aiops.remediation.actions import action
from aiops.remediation.guards import TargetInfo

PERMISSIONS = permissions(
    "snapshot lifecycle",
    reader=(
        "ec2:DescribeImages",
        "ec2:DescribeInstances",
        "ec2:DescribeSnapshots",
        "ec2:DescribeVolumes",
    ),
    executor=(
        "ec2:CreateSnapshot",
        "ec2:CreateTags",
        "ec2:DeleteSnapshot",
        "ec2:DescribeSnapshots",
    ),
)

log = logging.getLogger(__name__)

WORKFLOW = "ops_snapshots"
POLICY_TAG = "aiops:snapshot-policy"
KEY_TAG = "aiops:snapshot-key"
CREATED_BY_TAG = "aiops:created-by"
RETENTION_TAG = "aiops:retention-days"


@dataclass(frozen=True)
class Volume:
    id: str
    tags: dict[str, str]
    instance_ids: tuple[str, ...] = ()
    state: str = "in-use"
    size: int = 0


@dataclass(frozen=True)
class Snapshot:
    id: str
    volume_id: str
    start_time: datetime
    tags: dict[str, str] = field(default_factory=dict)
    state: str = "completed"


@dataclass
class Inventory:
    volumes: list[Volume]
    instance_tags: dict[str, dict[str, str]]
    snapshots: list[Snapshot]
    ami_snapshots: dict[str, str]  # snapshot id -> image id using it


def collect(region: str | None = None) -> Inventory:
    """One paginated pass over volumes, instances, own snapshots and own AMIs."""
    ec2 = aws.client("ec2", region=region)
    volumes = [Volume(v["VolumeId"], tag_dict(v.get("Tags")),
                      tuple(a["InstanceId"] for a in v.get("Attachments", []) if a.get("InstanceId")),
                      v.get("State", ""), int(v.get("Size", 0)))
               for page in ec2.get_paginator("describe_volumes").paginate() for v in page["Volumes"]]
    instance_tags = {i["InstanceId"]: tag_dict(i.get("Tags"))
                     for page in ec2.get_paginator("describe_instances").paginate()
                     for r in page["Reservations"] for i in r["Instances"]}
    snapshots = [Snapshot(s["SnapshotId"], s.get("VolumeId", ""), _aware(s["StartTime"]), tag_dict(s.get("Tags")),
                          s.get("State", ""))
                 for page in ec2.get_paginator("describe_snapshots").paginate(OwnerIds=["self"])
                 for s in page["Snapshots"]]
    ami_snapshots: dict[str, str] = {}
    for image in ec2.describe_images(Owners=["self"])["Images"]:
        for bdm in image.get("BlockDeviceMappings", []):
            snap = (bdm.get("Ebs") or {}).get("SnapshotId")
            if snap:
                ami_snapshots[snap] = image["ImageId"]
    return Inventory(volumes, instance_tags, snapshots, ami_snapshots)


def _aware(moment: datetime) -> datetime:
    """A plain UTC-aware datetime (a naive time is UTC; a pendulum time loses its zone in arithmetic)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return datetime.fromtimestamp(moment.timestamp(), UTC)


def _matches(selector: dict[str, str], tags: dict[str, str]) -> bool:
    return all(tags.get(k) == v for k, v in selector.items())


def select_policy(policies: list[SnapshotPolicy], volume: Volume,
                  instance_tags: dict[str, dict[str, str]]) -> SnapshotPolicy | None:
    """The first policy whose selector matches the volume's tags (or an attached instance's)."""
    for policy in policies:
        if _matches(policy.selector, volume.tags):
            return policy
        if policy.match_instance_tags and any(_matches(policy.selector, instance_tags.get(i, {}))
                                              for i in volume.instance_ids):
            return policy
    return None


def retention_days(policy: SnapshotPolicy, volume: Volume) -> int:
    override = volume.tags.get(RETENTION_TAG, "").strip()
    return int(override) if override.isdigit() and int(override) > 0 else policy.retention_days


def volume_label(volume: Volume, instance_tags: dict[str, dict[str, str]]) -> str:
    """The volume's Name, else ``<instance Name>-<volume id>`` (root volumes carry no tags)."""
    if volume.tags.get("Name"):
        return volume.tags["Name"]
    owner = next((instance_tags.get(i, {}).get("Name") for i in volume.instance_ids
                  if instance_tags.get(i, {}).get("Name")), None)
    return f"{owner}-{volume.id}" if owner else volume.id


def snapshot_tags(policy: SnapshotPolicy, volume: Volume, day: str, retention: int, label: str = "") -> dict[str, str]:
    tags = {k: v for k, v in volume.tags.items()
            if policy.copy_tags and not k.startswith("aws:") and k not in {RETENTION_TAG, KEEP_TAG}}
    tags.update({"Name": f"{label or volume.tags.get('Name', volume.id)}-{day}", POLICY_TAG: policy.id,
                 KEY_TAG: f"{policy.id}/{volume.id}/{day}", CREATED_BY_TAG: WORKFLOW,
                 RETENTION_TAG: str(retention)})
    return tags


def plan_snapshots(policies: list[SnapshotPolicy], inv: Inventory, at: datetime) -> tuple[list[Change], list[Skip]]:
    """Snapshots to create and to expire at ``at`` (the run's time; the day keys creation)."""
    at = _aware(at)
    day = at.date().isoformat()
    changes: list[Change] = []
    skipped: list[Skip] = []
    by_volume: dict[str, list[Snapshot]] = {}
    for snap in inv.snapshots:
        by_volume.setdefault(snap.volume_id, []).append(snap)
        # A managed snapshot names its volume in its key tag: a copy, or one an AMI was registered
        # from, may carry another VolumeId but is still the policy's to expire.
        keyed = snap.tags.get(KEY_TAG, "").split("/")
        if len(keyed) == 3 and keyed[1] != snap.volume_id:
            by_volume.setdefault(keyed[1], []).append(snap)
    for volume in sorted(inv.volumes, key=lambda v: v.id):
        policy = select_policy(policies, volume, inv.instance_tags)
        if policy is None:
            continue
        protected_by = [volume.id] if is_protected(volume.tags) else [
            i for i in volume.instance_ids if is_protected(inv.instance_tags.get(i, {}))]
        if protected_by:
            skipped.append(Skip(volume.id, policy.id, f"protected (aiops:protected=true on {', '.join(protected_by)})"))
            continue
        if volume.state not in {"in-use", "available"}:
            skipped.append(Skip(volume.id, policy.id, f"volume is {volume.state}"))
            continue
        keep_days = retention_days(policy, volume)
        label = volume_label(volume, inv.instance_tags)
        key = f"{policy.id}/{volume.id}/{day}"
        existing = [s for s in by_volume.get(volume.id, []) if s.tags.get(KEY_TAG) == key]
        if existing:
            skipped.append(Skip(volume.id, policy.id, f"already snapshotted for {day} ({existing[0].id})"))
        else:
            changes.append(Change(
                "ec2.create_snapshot", volume.id, policy.id, policy.mode,
                f"daily snapshot, kept {keep_days} days",
                {"description": f"{policy.id} {day} {label}", "volume": label,
                 "tags": snapshot_tags(policy, volume, day, keep_days, label), "snapshot_key": key}))
        cutoff = at - timedelta(days=keep_days)
        for snap in sorted(by_volume.get(volume.id, []), key=lambda s: s.start_time):
            managed = snap.tags.get(POLICY_TAG) == policy.id
            if policy.expire_scope == "managed" and not managed:
                continue
            if snap.start_time >= cutoff:
                continue
            age = (at - snap.start_time).days
            if snap.id in inv.ami_snapshots:
                skipped.append(Skip(snap.id, policy.id, f"{age} days old but used by AMI {inv.ami_snapshots[snap.id]}"))
            elif snap.tags.get(KEEP_TAG, "").lower() == "true":
                skipped.append(Skip(snap.id, policy.id, f"{age} days old but tagged {KEEP_TAG}=true"))
            elif is_protected(snap.tags):
                skipped.append(Skip(snap.id, policy.id, f"{age} days old but tagged aiops:protected=true"))
            elif snap.state not in {"completed", ""}:
                skipped.append(Skip(snap.id, policy.id, f"{age} days old but {snap.state}"))
            else:
                changes.append(Change("ec2.delete_snapshot", snap.id, policy.id, policy.mode,
                                      f"{age} days old, retention {keep_days} days",
                                      {"volume_id": volume.id, "created": snap.start_time.isoformat()}))
    return changes, skipped


# -- act -------------------------------------------------------------------------------------------


def _not_kept_or_in_an_ami(target: TargetInfo, change: Change) -> str | None:
    if target.tags.get(KEEP_TAG, "").lower() == "true":
        return f"{change.resource_id} is tagged {KEEP_TAG}=true"
    images = aws.client("ec2").describe_images(Owners=["self"])["Images"]
    used = [i["ImageId"] for i in images
            if any((m.get("Ebs") or {}).get("SnapshotId") == change.resource_id for m in i.get("BlockDeviceMappings", []))]
    return f"{change.resource_id} is used by AMI {', '.join(used)}" if used else None


@action("ec2.create_snapshot", resource_type="ec2:volume", destructive=False,
        permissions=("ec2:CreateSnapshot", "ec2:CreateTags", "ec2:DescribeSnapshots"))
def create_snapshot(change: Change) -> dict[str, Any]:
    """Snapshot a volume with its policy's tags (once per key: an earlier attempt's snapshot is found)."""
    ec2 = executor_client("ec2")
    key = change.params["snapshot_key"]
    found = ec2.describe_snapshots(OwnerIds=["self"], Filters=[{"Name": f"tag:{KEY_TAG}", "Values": [key]}])
    if found["Snapshots"]:  # created by an earlier attempt whose record was lost
        return {"snapshot_id": found["Snapshots"][0]["SnapshotId"], "existing": True}
    tags = [{"Key": k, "Value": v} for k, v in change.params["tags"].items()]
    snap = ec2.create_snapshot(VolumeId=change.resource_id, Description=change.params["description"],
                               TagSpecifications=[{"ResourceType": "snapshot", "Tags": tags}])
    return {"snapshot_id": snap["SnapshotId"]}


@action("ec2.delete_snapshot", resource_type="ec2:snapshot", destructive=True,
        permissions=("ec2:DeleteSnapshot",), checks=(_not_kept_or_in_an_ami,))
def delete_snapshot(change: Change) -> dict[str, Any]:
    """Delete a snapshot past its retention (not one tagged keep or used by an AMI, checked live)."""
    from botocore.exceptions import ClientError

    ec2 = executor_client("ec2")
    try:
        ec2.delete_snapshot(SnapshotId=change.resource_id)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "InvalidSnapshot.NotFound":
            return {"deleted": False, "already_gone": True}
        raise
    return {"deleted": True}
