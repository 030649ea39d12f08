"""The runbook catalog (include/runbooks/): meta-tests over every shipped runbook, and broken
runbooks rejected with the file and the field named while the others still load."""

from __future__ import annotations

import ast
import hashlib
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from aiops.remediation.catalog import DOCUMENT_PREFIX, SSM_NAME, STEP_ACTIONS, load_catalog

REPO = Path(__file__).resolve().parents[2]
RUNBOOKS = REPO / "include" / "runbooks"
CATALOG = load_catalog(RUNBOOKS)
IDS = CATALOG.ids

REQUIRED_IDS = {
    "restart-ec2-instance", "scale-out-asg", "reboot-rds-instance", "revoke-world-open-ingress",
    "snapshot-ebs-volume", "stop-idle-instance", "rightsize-ec2-instance", "free-disk-rotate-logs",
    "block-public-s3-bucket", "enable-ebs-default-encryption", "delete-unattached-ebs-volume",
}

# What each document must do, in this order (a subsequence of its step signatures, see _signature).
EXPECTED_FLOW: dict[str, list[str]] = {
    "restart-ec2-instance": [
        "assert ec2:DescribeInstances", "state stopped", "state running", "wait ec2:DescribeInstanceStatus",
    ],
    "scale-out-asg": [
        "assert autoscaling:DescribeAutoScalingGroups", "api autoscaling:DescribeAutoScalingGroups", "branch",
        "api autoscaling:SetDesiredCapacity",
    ],
    "reboot-rds-instance": ["assert rds:DescribeDBInstances", "api rds:RebootDBInstance", "wait rds:DescribeDBInstances"],
    "reboot-ec2-instance": ["assert ec2:DescribeInstances", "api ec2:RebootInstances", "wait ec2:DescribeInstanceStatus"],
    "revoke-world-open-ingress": [
        "assert ec2:DescribeSecurityGroups", "branch", "api ec2:RevokeSecurityGroupIngress", "script",
    ],
    "snapshot-ebs-volume": ["assert ec2:DescribeVolumes", "api ec2:CreateSnapshot", "wait ec2:DescribeSnapshots"],
    "stop-idle-instance": ["assert ec2:DescribeInstances", "state stopped"],
    "rightsize-ec2-instance": [
        "assert ec2:DescribeInstances", "branch", "api ec2:CreateSnapshots", "wait ec2:DescribeSnapshots",
        "state stopped", "api ec2:ModifyInstanceAttribute", "state running", "wait ec2:DescribeInstances",
    ],
    "free-disk-rotate-logs": ["assert ssm:DescribeInstanceInformation", "run AWS-RunShellScript"],
    "block-public-s3-bucket": [
        "assert s3:ListObjectsV2", "api s3:PutPublicAccessBlock", "assert s3:GetPublicAccessBlock",
    ],
    "enable-ebs-default-encryption": [
        "assert sts:GetCallerIdentity", "api ec2:EnableEbsEncryptionByDefault", "assert ec2:GetEbsEncryptionByDefault",
    ],
    "delete-unattached-ebs-volume": [
        "assert ec2:DescribeVolumes", "api ec2:CreateSnapshot", "wait ec2:DescribeSnapshots", "api ec2:DeleteVolume",
    ],
    "modify-ebs-volume-to-gp3": ["assert ec2:DescribeVolumes", "api ec2:ModifyVolume", "wait ec2:DescribeVolumes"],
    "stop-rds-instance": ["assert rds:DescribeDBInstances", "api rds:StopDBInstance", "wait rds:DescribeDBInstances"],
    "release-elastic-ip": ["assert ec2:DescribeAddresses", "api ec2:ReleaseAddress"],
    "delete-ebs-snapshot": ["assert ec2:DescribeSnapshots", "api ec2:DeleteSnapshot"],
}

_SIGNATURES: dict[str, Callable[[dict[str, Any]], str]] = {
    "aws:executeAwsApi": lambda i: f"api {i['Service']}:{i['Api']}",
    "aws:assertAwsResourceProperty": lambda i: f"assert {i['Service']}:{i['Api']}",
    "aws:waitForAwsResourceProperty": lambda i: f"wait {i['Service']}:{i['Api']}",
    "aws:changeInstanceState": lambda i: f"state {i['DesiredState']}",
    "aws:runCommand": lambda i: f"run {i['DocumentName']}",
    "aws:branch": lambda i: "branch",
    "aws:executeScript": lambda i: "script",
    "aws:sleep": lambda i: "sleep",
}

# Parameter names that identify a resource: they need a strict, anchored pattern.
ID_LIKE = re.compile(r"(Id|Ids|Name|Identifier)$")
INJECTION_PROBES = [
    "", " ", "*", "x; rm -rf /", "i-123; rm -rf /", "i-0123456789abcdef0; rm -rf /", "i-0abc\nfoo",
    "i-0123456789abcdef0\n", "$(reboot)", "`id`", "a b", "../etc/passwd",
]


def _signature(step: dict[str, Any]) -> str:
    return _SIGNATURES.get(step["action"], lambda i: step["action"])(step.get("inputs") or {})


def _is_subsequence(wanted: list[str], seen: list[str]) -> bool:
    it = iter(seen)
    return all(any(w == s for s in it) for w in wanted)


# ------------------------------------------------------------------------------------------------
# The shipped catalog
# ------------------------------------------------------------------------------------------------


def test_shipped_catalog_loads_without_errors():
    assert [str(e) for e in CATALOG.errors] == []
    assert len(CATALOG) >= 11
    assert set(IDS) >= REQUIRED_IDS


def test_default_directory_is_include_runbooks():
    assert load_catalog().ids == IDS


def test_every_runbook_has_an_expected_flow():
    # A new runbook adds its expected flow here: that is its structural test.
    assert set(EXPECTED_FLOW) == set(IDS)


@pytest.mark.parametrize("runbook_id", IDS)
def test_runbook_document_structure(runbook_id):
    """What each runbook's ``tests`` entry points at until its execution test exists."""
    runbook = CATALOG.get(runbook_id)
    doc = runbook.document
    assert doc["schemaVersion"] == "0.3"
    assert doc["assumeRole"] == "{{ AutomationAssumeRole }}"
    assert doc["description"].strip()
    assert doc["outputs"], "every runbook reports something back"
    assert yaml.safe_load(runbook.document_text) == doc
    assert runbook.document_name == DOCUMENT_PREFIX + runbook_id
    assert SSM_NAME.fullmatch(runbook.document_name)
    names = [step["name"] for step in doc["mainSteps"]]
    assert len(names) == len(set(names))
    assert all(step["action"] in STEP_ACTIONS for step in doc["mainSteps"])
    # The target is checked before anything changes it.
    assert doc["mainSteps"][0]["action"] == "aws:assertAwsResourceProperty"
    signatures = [_signature(step) for step in doc["mainSteps"]]
    assert _is_subsequence(EXPECTED_FLOW[runbook_id], signatures), signatures


def test_document_text_and_hash_are_exactly_the_file():
    runbook = CATALOG.get("restart-ec2-instance")
    raw = (RUNBOOKS / "restart-ec2-instance.yaml").read_bytes()
    assert runbook.document_text.encode("utf-8") == raw
    assert runbook.content_hash == hashlib.sha256(raw).hexdigest()
    assert runbook.step_actions == [
        "aws:assertAwsResourceProperty", "aws:changeInstanceState", "aws:waitForAwsResourceProperty",
        "aws:executeAwsApi",
    ]


def test_get_unknown_runbook_lists_the_known_ids():
    with pytest.raises(KeyError) as info:
        CATALOG.get("reboot-the-world")
    assert "reboot-the-world" in str(info.value)
    assert "restart-ec2-instance" in str(info.value)
    assert "scale-out-asg" in str(info.value)


# ------------------------------------------------------------------------------------------------
# Meta-tests: every runbook has what the executor and the reviewers rely on
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("runbook_id", IDS)
def test_runbook_metadata_matches_its_files(runbook_id):
    runbook = CATALOG.get(runbook_id)
    assert runbook.metadata.id == runbook_id == runbook.document_path.name.removesuffix(".yaml")
    assert runbook.metadata_path.name == f"{runbook_id}.meta.yaml"
    assert set(runbook.metadata.parameters) == set(runbook.parameters)


@pytest.mark.parametrize("runbook_id", IDS)
def test_runbook_declares_the_permissions_its_steps_need(runbook_id):
    runbook = CATALOG.get(runbook_id)
    declared = set(runbook.metadata.permissions)
    assert declared
    assert all(re.fullmatch(r"[a-z0-9-]+:[A-Z][A-Za-z0-9]+", p) for p in declared)
    assert runbook.derived_permissions <= declared, sorted(runbook.derived_permissions - declared)


@pytest.mark.parametrize("runbook_id", IDS)
def test_id_like_parameters_have_strict_patterns(runbook_id):
    runbook = CATALOG.get(runbook_id)
    target = runbook.metadata.targets_parameter
    assert runbook.metadata.parameters[target].target is not None
    for name, meta in runbook.metadata.parameters.items():
        if not (ID_LIKE.search(name) or meta.target):
            continue
        spec = runbook.parameters[name]
        assert spec["type"] in ("String", "StringList"), name
        assert spec.get("allowedPattern") == meta.pattern, f"{name}: SSM must enforce the same pattern"
        assert meta.pattern.startswith("^"), name
        assert meta.pattern.endswith("$"), name
        admitted = [probe for probe in INJECTION_PROBES if re.fullmatch(meta.pattern, probe)]
        assert admitted == [], f"{name} admits {admitted}"


@pytest.mark.parametrize("runbook_id", IDS)
def test_approval_policy_fits_the_risk(runbook_id):
    meta = CATALOG.get(runbook_id).metadata
    if meta.approval != "pre-approved":
        assert meta.approvers.users or meta.approvers.roles
    if meta.approval == "requires-two-approvals":
        assert len(set(meta.approvers.users)) >= 2 or meta.approvers.roles
    if meta.risk == "high":
        assert meta.approval == "requires-two-approvals"
    if meta.approval == "pre-approved":
        assert meta.risk == "low"


@pytest.mark.parametrize("runbook_id", IDS)
def test_runbook_tells_reviewers_what_changes_and_how_to_undo_it(runbook_id):
    runbook = CATALOG.get(runbook_id)
    rendered = runbook.render_changes({name: f"<{name}>" for name in runbook.required_parameters})
    assert "{{" not in rendered
    assert f"<{runbook.metadata.targets_parameter}>" in rendered or runbook.metadata.targets_parameter in runbook.defaults
    assert len(runbook.metadata.rollback) > 40
    assert 1 <= runbook.metadata.max_targets <= 50


def _test_ref_problem(ref: str) -> str | None:
    file_part, _, node = ref.partition("::")
    function, _, param = node.partition("[")
    path = REPO / file_part
    if not path.is_file():
        return f"no file {file_part}"
    source = path.read_text()
    tree = ast.parse(source)
    functions = {n.name for n in tree.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)}
    if function not in functions:
        return f"no test function {function} in {file_part}"
    param = param.removesuffix("]")
    if param and param not in IDS and f'"{param}"' not in source:
        return f"no parametrised case {param!r} of {function}"
    return None


@pytest.mark.parametrize("runbook_id", IDS)
def test_runbook_names_a_test_that_exists(runbook_id):
    refs = CATALOG.get(runbook_id).metadata.tests
    assert refs
    assert [problem for ref in refs if (problem := _test_ref_problem(ref))] == []


# ------------------------------------------------------------------------------------------------
# Broken runbooks: named file and field, the rest still load
# ------------------------------------------------------------------------------------------------

Mutation = Callable[[Path], None]


def _replace(file: str, old: str, new: str) -> Mutation:
    def mutate(directory: Path) -> None:
        path = directory / file
        text = path.read_text()
        assert old in text, f"fixture out of date: {old!r} not in {file}"
        path.write_text(text.replace(old, new, 1))
    return mutate


def _delete(file: str) -> Mutation:
    return lambda directory: (directory / file).unlink()


def _write(file: str, text: str) -> Mutation:
    return lambda directory: (directory / file).write_text(text)


BROKEN = [
    pytest.param(_write("restart-ec2-instance.yaml", "schemaVersion: '0.3'\nmainSteps: [\n  - name: A\n"),
                 "restart-ec2-instance", "restart-ec2-instance.yaml", "line ", "not valid YAML",
                 id="malformed_yaml"),
    pytest.param(_replace("reboot-rds-instance.yaml", "action: aws:sleep", "action: aws:foo"),
                 "reboot-rds-instance", "reboot-rds-instance.yaml", "mainSteps[2].action",
                 "unsupported action 'aws:foo'", id="unknown_action"),
    pytest.param(_replace("stop-idle-instance.yaml", "- '{{ InstanceId }}'", "- '{{ InstanceID }}'"),
                 "stop-idle-instance", "stop-idle-instance.yaml", "mainSteps[0].inputs.InstanceIds[0]",
                 "{{ InstanceID }} is neither a parameter", id="dangling_parameter_reference"),
    pytest.param(_replace("snapshot-ebs-volume.yaml", "'{{ CreateSnapshot.SnapshotId }}'",
                          "'{{ CreateSnapshot.SnapshotIds }}'"),
                 "snapshot-ebs-volume", "snapshot-ebs-volume.yaml", "mainSteps[2].inputs.SnapshotIds[0]",
                 "has no output 'SnapshotIds'", id="dangling_step_output_reference"),
    pytest.param(_replace("scale-out-asg.yaml", "- NextStep: SetDesiredCapacity", "- NextStep: SetCapacity"),
                 "scale-out-asg", "scale-out-asg.yaml", "mainSteps[3].inputs.Choices[0].NextStep",
                 "'SetCapacity' is not a step", id="branch_to_missing_step"),
    pytest.param(_replace("reboot-rds-instance.yaml", "parameters:\n",
                          "parameters:\n  DryRun:\n    type: Boolean\n    default: false\n"),
                 "reboot-rds-instance", "reboot-rds-instance.meta.yaml", "parameters",
                 "'DryRun' is missing from the metadata", id="metadata_document_parameter_mismatch"),
    pytest.param(_replace("restart-ec2-instance.meta.yaml", "pattern: '^i-[0-9a-f]{8,17}$'",
                          "pattern: '^i-[0-9a-f]+$'"),
                 "restart-ec2-instance", "restart-ec2-instance.meta.yaml", "parameters.InstanceId.pattern",
                 "differs from the document's allowedPattern", id="pattern_mismatch"),
    pytest.param(_delete("delete-unattached-ebs-volume.meta.yaml"),
                 "delete-unattached-ebs-volume", "delete-unattached-ebs-volume.yaml", "metadata",
                 "expected delete-unattached-ebs-volume.meta.yaml", id="missing_metadata_file"),
    pytest.param(_delete("enable-ebs-default-encryption.yaml"),
                 "enable-ebs-default-encryption", "enable-ebs-default-encryption.meta.yaml", "document",
                 "expected enable-ebs-default-encryption.yaml", id="missing_document_file"),
    pytest.param(_replace("stop-idle-instance.meta.yaml", "id: stop-idle-instance", "id: stop-instance"),
                 "stop-idle-instance", "stop-idle-instance.meta.yaml", "id", "must equal the file name",
                 id="id_differs_from_file_name"),
    pytest.param(_replace("snapshot-ebs-volume.meta.yaml", "risk: low", "risk: low\nriks: low"),
                 "snapshot-ebs-volume", "snapshot-ebs-volume.meta.yaml", "riks", "Extra inputs",
                 id="typo_in_metadata_field"),
    pytest.param(_replace("block-public-s3-bucket.yaml", "schemaVersion: '0.3'", "schemaVersion: '2.2'"),
                 "block-public-s3-bucket", "block-public-s3-bucket.yaml", "schemaVersion", "'0.3'",
                 id="wrong_schema_version"),
    pytest.param(_replace("reboot-rds-instance.yaml", "    action: aws:sleep\n", ""),
                 "reboot-rds-instance", "reboot-rds-instance.yaml", "mainSteps[2].action", "Field required",
                 id="step_without_action"),
    pytest.param(_replace("stop-idle-instance.meta.yaml", "approvers:\n  users: [bob.finops, alice.sre]\n"
                          "  roles: [op]\n", ""),
                 "stop-idle-instance", "stop-idle-instance.meta.yaml", "approvers", "at least one approver",
                 id="approval_without_approvers"),
    pytest.param(_replace("stop-idle-instance.meta.yaml", "  - ec2:StopInstances\n", "  - StopInstances\n"),
                 "stop-idle-instance", "stop-idle-instance.meta.yaml", "permissions[1]", "should match pattern",
                 id="permission_not_service_action"),
    pytest.param(_replace("rightsize-ec2-instance.meta.yaml", "  - ec2:ModifyInstanceAttribute\n", ""),
                 "rightsize-ec2-instance", "rightsize-ec2-instance.meta.yaml", "permissions",
                 "ec2:ModifyInstanceAttribute", id="permission_the_steps_need_missing"),
    pytest.param(_replace("snapshot-ebs-volume.yaml", "allowedPattern: '^vol-[0-9a-f]{8,17}$'",
                          "allowedPattern: 'vol-[0-9a-f]{8,17}'"),
                 "snapshot-ebs-volume", "snapshot-ebs-volume.yaml", "parameters.VolumeId.allowedPattern",
                 "must be anchored", id="unanchored_allowed_pattern"),
    pytest.param(_replace("stop-idle-instance.meta.yaml", "Stop EC2 instance {{ InstanceId }}",
                          "Stop EC2 instance {{ Instance }}"),
                 "stop-idle-instance", "stop-idle-instance.meta.yaml", "changes", "{{ Instance }} is not a parameter",
                 id="changes_placeholder_unknown"),
    pytest.param(_replace("rightsize-ec2-instance.yaml", "    onFailure: step:StartInstance\n",
                          "    onFailure: step:StartTheInstance\n"),
                 "rightsize-ec2-instance", "rightsize-ec2-instance.yaml", "mainSteps[6].onFailure",
                 "'StartTheInstance' is not a step", id="on_failure_to_missing_step"),
]


@pytest.mark.parametrize(("mutate", "broken", "file", "field", "message"), BROKEN)
def test_broken_runbook_names_file_and_field_and_the_rest_load(tmp_path, mutate, broken, file, field, message):
    directory = tmp_path / "runbooks"
    shutil.copytree(RUNBOOKS, directory)
    mutate(directory)

    catalog = load_catalog(directory)

    assert broken not in catalog
    assert set(catalog.ids) == set(IDS) - {broken}
    assert {e.path.name for e in catalog.errors} <= {f"{broken}.yaml", f"{broken}.meta.yaml"}
    named = [e for e in catalog.errors if e.path == directory / file and e.field.startswith(field)]
    assert named, [str(e) for e in catalog.errors]
    assert any(message in e.message for e in named), [str(e) for e in named]
    assert str(named[0]).startswith(f"{directory / file}: {field}")


def test_unreachable_step_is_reported(tmp_path):
    directory = tmp_path / "runbooks"
    shutil.copytree(RUNBOOKS, directory)
    _replace("stop-idle-instance.yaml", "outputs:\n  - DescribeInstance.State",
             "  - name: Orphan\n    action: aws:sleep\n    inputs:\n      Duration: PT1S\n"
             "outputs:\n  - DescribeInstance.State")(directory)
    catalog = load_catalog(directory)
    assert [(e.field, e.message) for e in catalog.errors] == [("mainSteps[3]", "step 'Orphan' is unreachable")]


def test_missing_directory_is_one_error(tmp_path):
    catalog = load_catalog(tmp_path / "nowhere")
    assert len(catalog) == 0
    assert [e.message for e in catalog.errors] == ["runbook directory does not exist"]
