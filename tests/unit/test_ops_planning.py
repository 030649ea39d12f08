"""Routine operations: pure planning (snapshots, log retention, schedules, patching), the shared
guards (protected, per-run limit, dry-run) and policy validation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from aiops.ops import log_retention, patching, scheduling, snapshots
from aiops.ops.plan import finish_plan
from aiops.ops.policy import (
    AsgSchedule,
    InstanceSchedule,
    LogRetentionPolicy,
    PatchPolicy,
    SnapshotPolicy,
    load_policies,
)

AT = datetime(2026, 11, 20, 1, tzinfo=UTC)  # a Friday
DAILY = SnapshotPolicy(id="daily", selector={"aiops:backup": "daily"}, retention_days=7, mode="enforce")


def snap(sid: str, vol: str, days: float, **tags: str) -> snapshots.Snapshot:
    return snapshots.Snapshot(sid, vol, AT - timedelta(days=days),
                              {k.replace("__", ":").replace("_", "-"): v for k, v in tags.items()})


def managed(sid: str, vol: str, days: float, **tags: str) -> snapshots.Snapshot:
    return snap(sid, vol, days, aiops__snapshot_policy="daily", **tags)


def inventory(*snaps: snapshots.Snapshot, amis: dict[str, str] | None = None) -> snapshots.Inventory:
    volumes = [
        snapshots.Volume("vol-a", {"Name": "data", "aiops:backup": "daily", "team": "t"}, ("i-1",)),
        snapshots.Volume("vol-root", {}, ("i-2",)),  # selected through its instance's tag
        snapshots.Volume("vol-p", {"aiops:backup": "daily"}, ("i-3",)),  # instance protected
        snapshots.Volume("vol-x", {"team": "t"}, ("i-4",)),  # not selected
    ]
    instance_tags = {"i-1": {}, "i-2": {"aiops:backup": "daily"}, "i-3": {"aiops:protected": "true"}, "i-4": {}}
    return snapshots.Inventory(volumes, instance_tags, list(snaps), amis or {})


def by_action(changes):
    out: dict[str, list[str]] = {}
    for c in changes:
        out.setdefault(c.action, []).append(c.resource_id)
    return out


def test_snapshot_plan_creates_per_selected_volume_and_copies_tags():
    changes, skipped = snapshots.plan_snapshots([DAILY], inventory(), AT)
    assert by_action(changes) == {"ec2.create_snapshot": ["vol-a", "vol-root"]}
    assert changes[1].params["volume"] == "vol-root"  # no Name anywhere: the id
    tags = changes[0].params["tags"]
    assert tags["team"] == "t"
    assert tags["aiops:snapshot-key"] == "daily/vol-a/2026-11-20"
    assert [s.resource_id for s in skipped] == ["vol-p"]
    assert "protected" in skipped[0].reason


def test_snapshot_plan_does_not_create_twice_on_the_same_day():
    today = snap("snap-t", "vol-a", 0.01, aiops__snapshot_key="daily/vol-a/2026-11-20")
    changes, skipped = snapshots.plan_snapshots([DAILY], inventory(today), AT)
    assert by_action(changes)["ec2.create_snapshot"] == ["vol-root"]
    assert any("already snapshotted" in s.reason for s in skipped)


@pytest.mark.parametrize(("snapshot", "amis", "expired", "reason"), [
    pytest.param(managed("snap-old", "vol-a", 9), {}, True, None, id="past_retention_expires"),
    pytest.param(managed("snap-new", "vol-a", 6), {}, False, None, id="within_retention_kept"),
    pytest.param(managed("snap-ami", "vol-a", 30), {"snap-ami": "ami-1"}, False, "used by AMI ami-1", id="ami_in_use"),
    pytest.param(managed("snap-keep", "vol-a", 30, aiops__keep="true"), {}, False, "aiops:keep=true", id="keep_tag"),
    pytest.param(managed("snap-prot", "vol-a", 30, aiops__protected="true"), {}, False, "protected",
                 id="protected_snapshot"),
    pytest.param(snap("snap-manual", "vol-a", 300), {}, False, None, id="unmanaged_not_in_scope"),
    pytest.param(managed("snap-pvol", "vol-p", 30), {}, False, None, id="protected_volume"),
])
def test_snapshot_expiry_guards(snapshot, amis, expired, reason):
    changes, skipped = snapshots.plan_snapshots([DAILY], inventory(snapshot, amis=amis), AT)
    assert (snapshot.id in by_action(changes).get("ec2.delete_snapshot", [])) is expired
    if reason:
        assert any(s.resource_id == snapshot.id and reason in s.reason for s in skipped)


def test_volume_retention_tag_overrides_policy_and_scope_volume_adopts_old_snapshots():
    inv = inventory(snap("snap-manual", "vol-a", 20))
    inv.volumes[0] = snapshots.Volume("vol-a", {"aiops:backup": "daily", "aiops:retention-days": "30"}, ("i-1",))
    wide = DAILY.model_copy(update={"expire_scope": "volume"})
    assert "ec2.delete_snapshot" not in by_action(snapshots.plan_snapshots([wide], inv, AT)[0])  # 20 < 30 days
    inv.volumes[0] = snapshots.Volume("vol-a", {"aiops:backup": "daily"}, ("i-1",))
    assert by_action(snapshots.plan_snapshots([wide], inv, AT)[0])["ec2.delete_snapshot"] == ["snap-manual"]


LOG_POLICIES = [
    LogRetentionPolicy(id="prod", patterns=["/app/*/prod"], retention_days=90, mode="enforce"),
    LogRetentionPolicy(id="short", patterns=["/tmp/*"], retention_days=7, allow_decrease=True, mode="enforce"),
]


@pytest.mark.parametrize(("group", "action", "days", "skip"), [
    pytest.param(log_retention.LogGroup("/app/a/prod", None), "enforce", 90, None, id="forever_gets_policy"),
    pytest.param(log_retention.LogGroup("/app/a/prod", 30), "enforce", 90, None, id="raised"),
    pytest.param(log_retention.LogGroup("/app/a/prod", 90), None, None, None, id="compliant_untouched"),
    pytest.param(log_retention.LogGroup("/app/a/prod", 365), None, None, "deletes logs", id="no_silent_shortening"),
    pytest.param(log_retention.LogGroup("/tmp/x", 30), "enforce", 7, None, id="shortening_when_allowed"),
    pytest.param(log_retention.LogGroup("/app/a/prod", None, {"aiops:protected": "true"}), None, None, "protected",
                 id="protected"),
    pytest.param(log_retention.LogGroup("/other", None), "dry-run", 30, None, id="no_policy_default_dry_run"),
    pytest.param(log_retention.LogGroup("/other", 60), None, None, None, id="no_policy_with_retention_reported_only"),
])
def test_log_retention_plan(group, action, days, skip):
    changes, skipped, findings = log_retention.plan_retention(LOG_POLICIES, [group], default_days=30,
                                                              default_mode="dry-run")
    assert [c.mode for c in changes] == ([action] if action else [])
    if days:
        assert changes[0].params["retention_days"] == days
    assert bool(skipped) is bool(skip)
    if skip:
        assert skip in skipped[0].reason
    assert bool(findings) is group.name.startswith("/other")


OFFICE = InstanceSchedule(id="office-hours", days=["mon", "tue", "wed", "thu", "fri"], start="08:00", stop="19:00",
                          timezone="Europe/London", mode="enforce")


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def sched_plan(instances, start, end, schedules=(OFFICE,), asgs=(), groups=(), **kw):
    return scheduling.plan_schedules(list(schedules), list(asgs), instances, list(groups), start, end, **kw)


STAGING = scheduling.Instance("i-s", "running", {"aiops:schedule": "office-hours", "env": "staging", "Name": "web"})


@pytest.mark.parametrize(("instance", "start", "end", "expected"), [
    pytest.param(STAGING, utc(2026, 11, 20, 18, 45), utc(2026, 11, 20, 19), "ec2.stop_instance", id="stop_at_19_gmt"),
    pytest.param(STAGING, utc(2026, 7, 10, 17, 45), utc(2026, 7, 10, 18), "ec2.stop_instance", id="stop_at_19_bst"),
    pytest.param(scheduling.Instance("i-s", "stopped", STAGING.tags), utc(2026, 11, 23, 7, 45), utc(2026, 11, 23, 8),
                 "ec2.start_instance", id="start_monday_08"),
    pytest.param(scheduling.Instance("i-s", "stopped", STAGING.tags), utc(2026, 11, 21, 7, 45), utc(2026, 11, 21, 8),
                 None, id="no_start_on_saturday"),
    pytest.param(STAGING, utc(2026, 11, 20, 21), utc(2026, 11, 20, 21, 15), None,
                 id="started_by_hand_at_night_is_left_alone"),
    pytest.param(scheduling.Instance("i-p", "running", {**STAGING.tags, "env": "prod"}), utc(2026, 11, 20, 18, 45),
                 utc(2026, 11, 20, 19), None, id="prod_never"),
    pytest.param(scheduling.Instance("i-q", "running", {**STAGING.tags, "aiops:protected": "true"}),
                 utc(2026, 11, 20, 18, 45), utc(2026, 11, 20, 19), None, id="protected_never"),
])
def test_instance_schedule(instance, start, end, expected):
    changes, _skipped, _ = sched_plan([instance], start, end)
    assert [c.action for c in changes] == ([expected] if expected else [])


def test_reconcile_and_enforce_state_act_outside_boundaries():
    night = (utc(2026, 11, 20, 21), utc(2026, 11, 20, 21, 15))
    assert [c.action for c in sched_plan([STAGING], *night, reconcile=True)[0]] == ["ec2.stop_instance"]
    strict = OFFICE.model_copy(update={"enforce_state": True})
    assert [c.action for c in sched_plan([STAGING], *night, schedules=(strict,))[0]] == ["ec2.stop_instance"]


def test_unknown_schedule_is_a_finding():
    inst = scheduling.Instance("i-u", "running", {"aiops:schedule": "weekends"})
    changes, _, findings = sched_plan([inst], utc(2026, 11, 20, 18, 45), utc(2026, 11, 20, 19))
    assert changes == []
    assert findings[0]["kind"] == "unknown_schedule"


def test_asg_capacity_step_due_in_interval_and_new_policy_is_dry_run():
    policy = AsgSchedule.model_validate({"id": "peak", "asg": "web", "steps": [
        {"at": "17:00", "min": 3, "max": 9, "desired": 5}, {"at": "22:00", "min": 3, "max": 9, "desired": 3}]})
    group = scheduling.Group("web", 3, 9, 3)
    changes, _, _ = sched_plan([], utc(2026, 11, 20, 16, 45), utc(2026, 11, 20, 17), schedules=(), asgs=(policy,),
                               groups=(group,))
    assert [(c.action, c.mode, c.params["desired"]) for c in changes] == [("autoscaling.set_capacity", "dry-run", 5)]
    later, _, _ = sched_plan([], utc(2026, 11, 20, 17), utc(2026, 11, 20, 17, 15), schedules=(), asgs=(policy,),
                             groups=(group,))
    assert later == []


WINDOW = {"days": ["sun"], "start": "23:00", "duration_minutes": 240, "timezone": "UTC"}


def patch_policy(**kw) -> PatchPolicy:
    return PatchPolicy.model_validate({"id": "p", "selector": {"PatchGroup": "g"}, "maintenance_window": WINDOW,
                                       "mode": "enforce", **kw})


def fleet(n: int, env: str = "staging", **extra: str) -> list[patching.Instance]:
    return [patching.Instance(f"i-{k}", "running", {"env": env, "Name": f"h{k}", **extra}) for k in range(n)]


@pytest.mark.parametrize(("at", "open_"), [
    pytest.param(utc(2026, 11, 22, 23, 30), True, id="inside"),
    pytest.param(utc(2026, 11, 23, 2, 59), True, id="past_midnight"),
    pytest.param(utc(2026, 11, 23, 3), False, id="closed_at_end"),
    pytest.param(utc(2026, 11, 22, 22, 59), False, id="before_start"),
])
def test_maintenance_window(at, open_):
    assert (patching.window_bounds(patch_policy().maintenance_window, at) is not None) is open_


def test_patch_plan_batches_and_approval_for_prod():
    at = utc(2026, 11, 22, 23, 30)
    _changes, _skipped, extra = patching.plan_patching([patch_policy(batch_size=2)], {"p": fleet(5)}, at,
                                                     default_batch_size=3)
    assert [len(b) for b in extra["install"][0]["batches"]] == [2, 2, 1]
    assert extra["needs_approval"] is False
    assert len(extra["scan"]["instance_ids"]) == 5
    _, _, prod = patching.plan_patching([patch_policy(approvers=["alice"])], {"p": fleet(2, "prod")}, at,
                                        default_batch_size=3)
    assert prod["needs_approval"] is True
    assert prod["approvers"] == ["alice"]


def test_patch_plan_skips_protected_and_stopped_and_closed_window_scans_only():
    instances = [*fleet(1), patching.Instance("i-prot", "running", {"aiops:protected": "true"}),
                 patching.Instance("i-off", "stopped", {})]
    changes, skipped, extra = patching.plan_patching([patch_policy()], {"p": instances}, utc(2026, 11, 20, 12),
                                                     default_batch_size=2)
    assert changes == []
    assert extra["scan"]["instance_ids"] == ["i-0"]
    reasons = {s.resource_id: s.reason for s in skipped}
    assert "protected" in reasons["i-prot"]
    assert "stopped" in reasons["i-off"]
    assert "window closed" in reasons["i-0"]


def test_plan_over_the_per_run_limit_is_refused_whole():
    from aiops.ops.plan import Change

    changes = [Change("ec2.stop_instance", f"i-{k}", "p", "enforce", "x") for k in range(4)]
    plan = finish_plan("ops_scheduling", "2026-11-20T19:00", AT, changes, [], max_changes=3)
    assert plan["refused"]
    assert "Refused" in plan["markdown"]
    assert plan["changes"][0]["key"] == "ops_scheduling/2026-11-20T19:00/ec2.stop_instance/i-0"
    dry = [Change("ec2.stop_instance", f"i-{k}", "p", "dry-run", "x") for k in range(4)]
    assert finish_plan("ops_scheduling", "t", AT, dry, [], max_changes=3)["refused"] is None  # dry-run is free


def write(tmp_path: Path, name: str, text: str) -> Path:
    (tmp_path / name).write_text(text)
    return tmp_path


def test_new_policy_defaults_to_dry_run(tmp_path):
    write(tmp_path, "a.yaml", "snapshots:\n  - id: weekly\n    selector: {backup: weekly}\n    retention_days: 30\n")
    loaded = load_policies("snapshots", tmp_path)
    assert [p.mode for p in loaded.policies] == ["dry-run"]


@pytest.mark.parametrize(("kind", "text", "field", "message"), [
    pytest.param("log_retention", "log_retention:\n  - {id: a, patterns: ['*'], retention_days: 31}\n",
                 "log_retention[0].retention_days", "not a CloudWatch Logs retention", id="bad_retention"),
    pytest.param("schedules", "schedules:\n  - {id: a, days: [mon], start: '19:00', stop: '08:00'}\n",
                 "schedules[0]", "start must be before stop", id="start_after_stop"),
    pytest.param("schedules", "schedules:\n  - {id: a, days: [mon], start: '08:00', stop: '19:00', timezone: Mars/Base}\n",
                 "schedules[0].timezone", "unknown time zone", id="bad_timezone"),
    pytest.param("patching", "patching:\n  - {id: a, selector: {x: y}, maintenance_window: {days: [funday], "
                 "start: '02:00', duration_minutes: 60}}\n", "patching[0].maintenance_window.days", "unknown day",
                 id="bad_day"),
    pytest.param("snapshots", "snapshots:\n  - {id: a, selector: {x: y}, retention_days: 7, mode: yolo}\n",
                 "snapshots[0].mode", "dry-run", id="bad_mode"),
])
def test_malformed_policy_names_file_and_field_and_the_rest_load(tmp_path, kind, text, field, message):
    good = {"log_retention": "  - {id: ok, patterns: ['/x'], retention_days: 30}\n",
            "schedules": "  - {id: ok, days: [mon], start: '08:00', stop: '19:00'}\n",
            "patching": "  - {id: ok, selector: {x: y}, maintenance_window: {days: [sun], start: '02:00', "
                        "duration_minutes: 60}}\n",
            "snapshots": "  - {id: ok, selector: {x: y}, retention_days: 7}\n"}[kind]
    write(tmp_path, "bad.yaml", text + good)
    loaded = load_policies(kind, tmp_path)
    assert [p.id for p in loaded.policies] == ["ok"]
    error = loaded.errors[0]
    assert error.path.name == "bad.yaml"
    assert error.field == field
    assert message in error.message


def test_duplicate_ids_across_files_are_rejected(tmp_path):
    body = "snapshots:\n  - {id: same, selector: {x: y}, retention_days: 7}\n"
    write(tmp_path, "a.yaml", body)
    write(tmp_path, "b.yaml", body)
    loaded = load_policies("snapshots", tmp_path)
    assert len(loaded.policies) == 1
    assert "already defined in a.yaml" in str(loaded.errors[0])


def test_shipped_policies_are_valid():
    for kind in ("snapshots", "log_retention", "patching", "schedules", "asg_schedules"):
        loaded = load_policies(kind)
        assert loaded.errors == [], loaded.error_lines()
        assert loaded.policies
