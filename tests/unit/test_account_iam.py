"""Generated least-privilege IAM: declarations next to the code, policies, template (issue 16)."""

from __future__ import annotations

import ast
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SRC = REPO / "src" / "aiops"
#: Call shapes that reach AWS through a connection.
AWS_CALLS = ("aws.client(", "executor_client(", "AwsBaseHook(", "SsmHook(", "MessageQueueTrigger(")


def _module_name(path: Path) -> str:
    return ".".join(path.relative_to(REPO / "src").with_suffix("").parts)


def test_every_module_that_calls_aws_declares_its_permissions():
    from aiops.account.permissions import DECLARING_MODULES, Permissions, declarations

    calling = set()
    for path in SRC.rglob("*.py"):
        text = path.read_text()
        if (path.name == "aws.py" and path.parent.name == "core") or (any(call in text for call in AWS_CALLS) and path.parent.name != "account"):
            calling.add(_module_name(path))
    calling -= {"aiops.account.connections"}  # the factory itself; its callers declare
    assert sorted(calling - set(DECLARING_MODULES)) == [], "add these to DECLARING_MODULES and give them PERMISSIONS"
    declared = declarations()
    assert all(isinstance(p, Permissions) for p in declared.values())
    for module in calling:  # the declaration sits in the module itself, not inherited from an import
        tree = ast.parse((REPO / "src" / (module.replace(".", "/") + ".py")).read_text())
        assert any(isinstance(n, ast.Assign) and any(getattr(t, "id", "") == "PERMISSIONS" for t in n.targets)
                   for n in tree.body), module


def test_a_malformed_declaration_fails_at_import():
    from aiops.account.permissions import permissions

    with pytest.raises(ValueError, match="bad permission"):
        permissions("x", reader=("ec2 DescribeInstances",))
    p = permissions("x", reader=("s3:GetObject @ arn:${AWS::Partition}:s3:::${ArtifactBucket}/*",))
    assert p.grants["reader"][0].resource.endswith("/*")


@pytest.fixture(scope="module")
def policies():
    from aiops.account.iam import default_params, render_policies

    return render_policies(default_params(account_id="111122223333", artifact_bucket="art", trail_bucket="trail"))


def test_reader_and_notifier_hold_no_runbook_write(policies):
    from aiops.account.iam import allowed, runbook_permissions

    reader = [policies["aiops-reader"], policies["aiops-notifier"]]
    writes = {a for actions in runbook_permissions().values() for a in actions
              if not a.split(":", 1)[1].startswith(("Describe", "Get", "List"))}
    assert {"ec2:StopInstances", "ec2:RebootInstances", "rds:RebootDBInstance"} <= writes
    foreign = {a: ("arn:aws:s3:::someone-elses" if a.startswith("s3:") else "arn:aws:x:us-east-1:111122223333:y")
               for a in writes}
    assert [a for a in sorted(writes) if allowed(a, reader, resource=foreign[a])] == []
    for forbidden in ("ssm:StartAutomationExecution", "ssm:CreateDocument", "ssm:SendCommand", "iam:PassRole",
                      "ec2:StartInstances", "logs:PutRetentionPolicy", "ec2:DeleteSnapshot"):
        assert not allowed(forbidden, reader), forbidden
    # the reader's writes are to what the platform owns only
    for stmt in policies["aiops-reader"]["Statement"]:
        for action in stmt["Action"]:
            if action.startswith("s3:") and not action.startswith(("s3:Get", "s3:List")):
                assert stmt["Resource"].startswith("arn:aws:s3:::art"), (action, stmt["Resource"])


def test_executor_passes_only_the_automation_roles_to_ssm_only(policies):
    passrole = [s for s in policies["aiops-executor"]["Statement"] if "iam:PassRole" in s["Action"]]
    assert passrole == [{"Sid": passrole[0]["Sid"], "Effect": "Allow", "Action": ["iam:PassRole"],
                         "Resource": "arn:aws:iam::111122223333:role/MatCarvAIOps-*",
                         "Condition": {"StringEquals": {"iam:PassedToService": "ssm.amazonaws.com"}}}]
    start = [s for s in policies["aiops-executor"]["Statement"] if "ssm:StartAutomationExecution" in s["Action"]]
    assert start[0]["Resource"] == "arn:aws:ssm:us-east-1:111122223333:automation-definition/MatCarv-*"
    publish = [s for s in policies["aiops-executor"]["Statement"] if "ssm:CreateDocument" in s["Action"]]
    assert publish[0]["Resource"] == "arn:aws:ssm:us-east-1:111122223333:document/MatCarv-*"


def test_each_runbook_role_is_exactly_its_metadata_permissions(policies):
    from aiops.remediation.catalog import load_catalog

    catalog = load_catalog()
    assert len(catalog) >= 10
    for runbook in catalog:
        doc = policies[f"aiops-runbook-{runbook.id}"]
        assert runbook.metadata.automation_role.startswith("MatCarvAIOps-")  # PassRole covers it
        assert [s["Action"] for s in doc["Statement"]] == [sorted(set(runbook.metadata.permissions))]


def test_the_notifier_sends_and_does_nothing_else(policies):
    actions = {a for s in policies["aiops-notifier"]["Statement"] for a in s["Action"]}
    assert actions == {"sns:Publish", "ses:SendRawEmail", "events:PutEvents"}
    publish = next(s for s in policies["aiops-notifier"]["Statement"] if s["Action"] == ["sns:Publish"])
    assert publish["Resource"] == "arn:aws:sns:us-east-1:111122223333:aiops-alerts-*"


def test_api_names_map_to_iam_actions(policies):
    from aiops.account.iam import allowed

    docs = [policies["aiops-reader"]]
    assert allowed("s3:HeadBucket", docs)  # moto's name for ListBucket
    assert allowed("sqs:DeleteMessageBatch", docs)
    assert allowed("sts:GetCallerIdentity", [])  # needs no permission
    assert not allowed("ec2:StopInstances", docs)


def test_checked_in_template_is_current_and_within_limits():
    import yaml

    from aiops.account.template import MAX_POLICY_CHARS, build_template, render_yaml, template_path
    from aiops.core.settings import get_settings

    generated = render_yaml(build_template(teams=get_settings().account_teams))
    assert template_path().read_text() == generated, "infra/bootstrap.yaml is stale: run `aiops account template`"
    assert len(generated.encode()) < 51_200  # CloudFormation TemplateBody limit
    template = yaml.safe_load(generated)
    for res in template["Resources"].values():
        if res["Type"] == "AWS::IAM::ManagedPolicy":
            size = len(json.dumps(res["Properties"]["PolicyDocument"], separators=(",", ":")))
            assert size <= MAX_POLICY_CHARS + 400  # Fn::Sub wrappers count here, not in IAM
    bucket = template["Resources"]["ArtifactBucket"]["Properties"]
    assert bucket["PublicAccessBlockConfiguration"] == {"BlockPublicAcls": True, "BlockPublicPolicy": True,
                                                        "IgnorePublicAcls": True, "RestrictPublicBuckets": True}
    assert bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"]
    tls = template["Resources"]["ArtifactBucketPolicy"]["Properties"]["PolicyDocument"]["Statement"][-1]
    assert tls["Effect"] == "Deny"
    assert tls["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    for queue in ("AiopsOpsEventsQueue", "AiopsCloudtrailFilesQueue"):
        assert "RedrivePolicy" in template["Resources"][queue]["Properties"]
    assert template["Resources"]["SecurityHubCis"]["Properties"]["StandardsArn"]["Fn::Sub"].endswith(
        "standards/cis-aws-foundations-benchmark/v/3.0.0")


def test_template_passes_cfn_lint():
    cfn_lint = shutil.which("cfn-lint", path=str(Path(sys.executable).parent)) or shutil.which("cfn-lint")
    assert cfn_lint, "cfn-lint is a moto[server] dependency and must be installed"
    out = subprocess.run([cfn_lint, str(REPO / "infra" / "bootstrap.yaml")], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


def test_policies_cli_writes_one_file_per_policy(tmp_path):
    from aiops.cli import main

    assert main(["account", "policies", "--out", str(tmp_path), "--account-id", "111122223333"]) == 0
    names = {p.stem for p in tmp_path.glob("*.json")}
    assert {"aiops-reader", "aiops-notifier", "aiops-executor", "aiops-runbook-stop-idle-instance"} <= names
    doc = json.loads((tmp_path / "aiops-reader.json").read_text())
    assert doc["Version"] == "2012-10-17"
    assert "${" not in json.dumps(doc)
