"""Guards the executor runs before anything reaches SSM: parameter patterns and target checks."""

from __future__ import annotations

from pathlib import Path

import pytest

from aiops.core.errors import AiopsError
from aiops.remediation.catalog import load_catalog
from aiops.remediation.guards import (
    GuardViolation,
    TargetInfo,
    blast_radius,
    check_targets,
    target_ids,
    validate_parameters,
)

CATALOG = load_catalog(Path(__file__).resolve().parents[2] / "include" / "runbooks")

# One realistic, valid call per runbook (a new runbook adds its own).
VALID_PARAMETERS: dict[str, dict[str, object]] = {
    "restart-ec2-instance": {"InstanceId": "i-0123456789abcdef0"},
    "reboot-ec2-instance": {"InstanceId": "i-0123456789abcdef0"},
    "scale-out-asg": {"AutoScalingGroupName": "checkout-web-asg", "Increment": 2},
    "reboot-rds-instance": {"DBInstanceIdentifier": "orders-db-1", "ForceFailover": True},
    "revoke-world-open-ingress": {"GroupId": "sg-0a1b2c3d4e5f67890", "Port": 22, "SourceCidr": "::/0"},
    "snapshot-ebs-volume": {"VolumeId": "vol-0123456789abcdef0", "Description": "before resize 2026-11-20"},
    "stop-idle-instance": {"InstanceId": "i-0abc1234"},
    "rightsize-ec2-instance": {"InstanceId": "i-0123456789abcdef0", "TargetInstanceType": "m7g.large"},
    "free-disk-rotate-logs": {"InstanceIds": ["i-0123456789abcdef0", "i-0fedcba9876543210"], "RetentionDays": 14},
    "block-public-s3-bucket": {"BucketName": "matcarv-public-assets"},
    "enable-ebs-default-encryption": {"AccountId": "123456789012"},
    "delete-unattached-ebs-volume": {
        "VolumeId": "vol-0123456789abcdef0",
        "AutomationAssumeRole": "arn:aws:iam::123456789012:role/aiops/MatCarvAutomation",
    },
    "modify-ebs-volume-to-gp3": {"VolumeId": "vol-0123456789abcdef0", "Iops": 3000},
    "stop-rds-instance": {"DBInstanceIdentifier": "catalog-staging-db"},
    "release-elastic-ip": {"AllocationId": "eipalloc-0123456789abcdef0"},
    "delete-ebs-snapshot": {"SnapshotId": "snap-0123456789abcdef0"},
}


def target(target_id: str = "i-0123456789abcdef0", kind: str = "ec2:instance", *, tags=None,
           exists: bool = True, state: str | None = "running") -> TargetInfo:
    return TargetInfo(id=target_id, kind=kind, tags=tags or {}, exists=exists, state=state)


def instances(count: int) -> list[TargetInfo]:
    return [target(f"i-{n:017x}") for n in range(count)]


# ------------------------------------------------------------------------------------------------
# validate_parameters
# ------------------------------------------------------------------------------------------------


def test_every_runbook_has_a_valid_sample_call():
    assert set(VALID_PARAMETERS) == set(CATALOG.ids)


@pytest.mark.parametrize("runbook_id", CATALOG.ids)
def test_valid_sample_call_passes(runbook_id):
    runbook = CATALOG.get(runbook_id)
    params = validate_parameters(runbook, VALID_PARAMETERS[runbook_id])
    assert set(params) == set(VALID_PARAMETERS[runbook_id])
    assert set(runbook.required_parameters) <= set(params)
    assert target_ids(runbook, params)


def test_valid_call_returns_normalised_parameters():
    free_disk = CATALOG.get("free-disk-rotate-logs")
    assert validate_parameters(
        free_disk, {"InstanceIds": "i-0123456789abcdef0, i-0fedcba9876543210", "RetentionDays": 14}
    ) == {"InstanceIds": ["i-0123456789abcdef0", "i-0fedcba9876543210"], "RetentionDays": "14"}
    assert validate_parameters(
        CATALOG.get("reboot-rds-instance"), {"DBInstanceIdentifier": "orders-db-1", "ForceFailover": True}
    ) == {"DBInstanceIdentifier": "orders-db-1", "ForceFailover": "true"}
    assert validate_parameters(
        CATALOG.get("revoke-world-open-ingress"), {"GroupId": "sg-0a1b2c3d", "Port": "3389"}
    ) == {"GroupId": "sg-0a1b2c3d", "Port": "3389"}


@pytest.mark.parametrize(
    ("runbook_id", "params", "parameter"),
    [
        pytest.param("restart-ec2-instance", {"InstanceId": "i-123; rm -rf /"}, "InstanceId", id="shell_command"),
        pytest.param("restart-ec2-instance", {"InstanceId": "i-0abc\nfoo"}, "InstanceId", id="newline"),
        pytest.param("restart-ec2-instance", {"InstanceId": "i-0123456789abcdef0\n"}, "InstanceId",
                     id="trailing_newline"),
        pytest.param("stop-idle-instance", {"InstanceId": "$(reboot)"}, "InstanceId", id="command_substitution"),
        pytest.param("free-disk-rotate-logs", {"InstanceIds": ["i-0123456789abcdef0", "i-0abc; reboot"]},
                     "InstanceIds", id="bad_list_item"),
        pytest.param("free-disk-rotate-logs", {"InstanceIds": ["i-0123456789abcdef0"], "JournalMaxSize": "1G; id"},
                     "JournalMaxSize", id="suffix_on_size"),
        pytest.param("rightsize-ec2-instance", {"InstanceId": "i-0123456789abcdef0", "TargetInstanceType": "m5 large"},
                     "TargetInstanceType", id="bad_instance_type"),
        pytest.param("revoke-world-open-ingress", {"GroupId": "sg-0a1b2c3d", "Port": 70000}, "Port",
                     id="port_out_of_range"),
        pytest.param("revoke-world-open-ingress", {"GroupId": "sg-0a1b2c3d", "Port": 22, "SourceCidr": "10.0.0.0/8"},
                     "SourceCidr", id="cidr_not_world"),
        pytest.param("block-public-s3-bucket", {"BucketName": "Bad_Bucket"}, "BucketName", id="bucket_name"),
        pytest.param("restart-ec2-instance", {"InstanceId": "i-0123456789abcdef0",
                                              "AutomationAssumeRole": "arn:aws:iam::123:role/x"},
                     "AutomationAssumeRole", id="bad_role_arn"),
    ],
)
def test_injected_or_malformed_value_is_refused_naming_the_parameter(runbook_id, params, parameter):
    with pytest.raises(GuardViolation) as info:
        validate_parameters(CATALOG.get(runbook_id), params)
    assert info.value.parameter == parameter
    assert f"parameter {parameter}" in str(info.value)
    assert runbook_id in str(info.value)


@pytest.mark.parametrize("runbook_id", CATALOG.ids)
@pytest.mark.parametrize("suffix", [";id", "\nid", " && id", "|id", "`id`", "$(id)"])
def test_no_parameter_accepts_a_shell_suffix(runbook_id, suffix):
    runbook = CATALOG.get(runbook_id)
    for name, value in VALID_PARAMETERS[runbook_id].items():
        if isinstance(value, list):
            value = [*value[:-1], value[-1] + suffix]
        else:
            value = str(value).lower() + suffix
        with pytest.raises(GuardViolation) as info:
            validate_parameters(runbook, {**VALID_PARAMETERS[runbook_id], name: value})
        assert info.value.parameter == name


@pytest.mark.parametrize(
    ("params", "parameter", "message"),
    [
        pytest.param({"InstanceId": "i-0123456789abcdef0", "Force": True}, "Force", "unknown parameter",
                     id="unknown_parameter"),
        pytest.param({}, "InstanceId", "missing required parameter", id="missing_required"),
        pytest.param({"InstanceId": None}, "InstanceId", "missing required parameter", id="required_is_none"),
        pytest.param({"InstanceId": ["i-0123456789abcdef0"]}, "InstanceId", "expected a string", id="list_for_string"),
        pytest.param({"InstanceId": 12345678}, "InstanceId", "expected a string", id="number_for_string"),
    ],
)
def test_parameter_shape_is_refused(params, parameter, message):
    with pytest.raises(GuardViolation) as info:
        validate_parameters(CATALOG.get("restart-ec2-instance"), params)
    assert info.value.parameter == parameter
    assert message in str(info.value)


@pytest.mark.parametrize(
    ("params", "parameter"),
    [
        pytest.param({"DBInstanceIdentifier": "db1", "ForceFailover": "yes"}, "ForceFailover", id="boolean_yes"),
        pytest.param({"DBInstanceIdentifier": "db1", "ForceFailover": 1}, "ForceFailover", id="boolean_int"),
        pytest.param({"DBInstanceIdentifier": "1db"}, "DBInstanceIdentifier", id="db_id_starts_with_digit"),
    ],
)
def test_typed_values_are_checked(params, parameter):
    with pytest.raises(GuardViolation) as info:
        validate_parameters(CATALOG.get("reboot-rds-instance"), params)
    assert info.value.parameter == parameter


def test_integer_given_as_bool_is_refused():
    with pytest.raises(GuardViolation, match="expected an integer"):
        validate_parameters(CATALOG.get("scale-out-asg"), {"AutoScalingGroupName": "web", "Increment": True})


def test_string_list_respects_max_items():
    ids = [f"i-{n:017x}" for n in range(51)]
    with pytest.raises(GuardViolation, match="at most 50"):
        validate_parameters(CATALOG.get("free-disk-rotate-logs"), {"InstanceIds": ids})


def test_guard_violation_is_an_aiops_error():
    assert issubclass(GuardViolation, AiopsError)


# ------------------------------------------------------------------------------------------------
# check_targets
# ------------------------------------------------------------------------------------------------


def test_valid_targets_pass():
    check_targets(CATALOG.get("restart-ec2-instance"), [target(tags={"aiops:protected": "false", "env": "prod"})], 10)


@pytest.mark.parametrize("value", ["true", "True", "TRUE", " true "])
def test_protected_target_is_refused(value):
    runbook = CATALOG.get("stop-idle-instance")
    targets = [target("i-0123456789abcdef0"), target("i-0fedcba9876543210", tags={"aiops:protected": value})]
    with pytest.raises(GuardViolation) as info:
        check_targets(runbook, targets, None)
    assert info.value.targets == ["i-0fedcba9876543210"]
    assert "aiops:protected=true" in str(info.value)


def test_blast_radius_of_the_configuration_is_refused():
    runbook = CATALOG.get("stop-idle-instance")  # max_targets 10
    with pytest.raises(GuardViolation, match="3 targets exceed the blast radius of 2"):
        check_targets(runbook, instances(3), 2)


def test_blast_radius_of_the_runbook_is_refused():
    runbook = CATALOG.get("restart-ec2-instance")  # max_targets 3
    assert blast_radius(runbook, 100) == 3
    check_targets(runbook, instances(3), 100)
    with pytest.raises(GuardViolation, match="4 targets exceed the blast radius of 3"):
        check_targets(runbook, instances(4), 100)


def test_configured_zero_refuses_everything():
    with pytest.raises(GuardViolation, match="blast radius of 0"):
        check_targets(CATALOG.get("snapshot-ebs-volume"), [target("vol-0123456789abcdef0", "ec2:volume")], 0)


@pytest.mark.parametrize(
    ("exists", "state"),
    [
        pytest.param(False, None, id="not_found"),
        pytest.param(True, "terminated", id="terminated"),
        pytest.param(True, "shutting-down", id="shutting_down"),
    ],
)
def test_nonexistent_target_is_refused(exists, state):
    targets = [target("i-0123456789abcdef0"), target("i-0000000000000dead", exists=exists, state=state)]
    with pytest.raises(GuardViolation, match="do not exist") as info:
        check_targets(CATALOG.get("restart-ec2-instance"), targets, None)
    assert info.value.targets == ["i-0000000000000dead"]


def test_target_of_another_kind_is_refused():
    with pytest.raises(GuardViolation, match="acts on ec2:volume targets"):
        check_targets(CATALOG.get("delete-unattached-ebs-volume"), [target()], None)


def test_no_targets_is_refused():
    with pytest.raises(GuardViolation, match="no targets"):
        check_targets(CATALOG.get("restart-ec2-instance"), [], None)


def test_duplicate_targets_are_refused():
    with pytest.raises(GuardViolation, match="more than once"):
        check_targets(CATALOG.get("restart-ec2-instance"), [target(), target()], None)
