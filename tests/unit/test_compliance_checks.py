"""Every registered check on a minimal failing record and a compliant one (pure: no AWS), plus the
registry's meta-tests: metadata complete, ids match modules, runbooks exist, each check tested here."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

from aiops.compliance import registry
from aiops.compliance.model import Inventory

NOW = datetime(2026, 11, 20, 12, tzinfo=UTC)
ACCT = "123456789012"


def ago(days: float) -> str:
    return (NOW - timedelta(days=days)).isoformat()


def rec(kind_type: str, rid: str, **attrs) -> dict:
    return {"id": rid, "type": kind_type, "region": "us-east-1", "arn": None, "name": rid, "tags": {}, **attrs}


def account(**kw) -> dict:
    base = {"summary": {"AccountMFAEnabled": 1, "AccountAccessKeysPresent": 0},
            "password_policy": {"MinimumPasswordLength": 14, "PasswordReusePrevention": 24}, "root": None}
    return rec("AwsAccount", ACCT, **{**base, **kw})


def user(name: str, **kw) -> dict:
    base = {"console": False, "mfa_devices": 0, "created": ago(400), "password_last_used": None,
            "access_keys": [], "attached_policies": [], "inline_policies": []}
    return rec("AwsIamUser", name, **{**base, **kw})


def key(kid: str, created_days: float, used_days: float | None, status: str = "Active") -> dict:
    return {"id": kid, "status": status, "created": ago(created_days),
            "last_used": None if used_days is None else ago(used_days)}


def sg(gid: str, ingress: list, name: str = "app", egress: list | None = None) -> dict:
    return rec("AwsEc2SecurityGroup", gid, name=name, ingress=ingress, egress=egress or [])


def world(port_from: int, port_to: int, proto: str = "tcp", v6: bool = False) -> dict:
    ranges = {"Ipv6Ranges": [{"CidrIpv6": "::/0"}]} if v6 else {"IpRanges": [{"CidrIp": "0.0.0.0/0"}]}
    return {"IpProtocol": proto, "FromPort": port_from, "ToPort": port_to, **ranges}


def bucket(name: str, **kw) -> dict:
    pab = dict.fromkeys(("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets"), True)
    base = {"public_access_block": pab, "policy": None, "encryption": {"Rules": [{}]}, "acl_grants": [],
            "logging": {"TargetBucket": "logs"}}
    return rec("AwsS3Bucket", name, **{**base, **kw})


PUBLIC_POLICY = {"Statement": [{"Sid": "Pub", "Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
                                "Resource": "arn:aws:s3:::b/*"}]}
TLS_POLICY = {"Statement": [{"Effect": "Deny", "Principal": "*", "Action": "s3:*", "Resource": "*",
                             "Condition": {"Bool": {"aws:SecureTransport": "false"}}}]}
STAR = {"Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
SCOPED = {"Statement": [{"Effect": "Allow", "Action": ["s3:GetObject"], "Resource": "*"}]}
TRAIL = {"multi_region": True, "log_file_validation": True, "kms_key_id": "k", "bucket": "trail-b",
         "is_logging": True, "include_global_service_events": True}
NACL_DEFAULT = [{"CidrBlock": "0.0.0.0/0", "Egress": False, "Protocol": "-1", "RuleAction": "allow", "RuleNumber": 100}]
NACL_GOOD = [{"CidrBlock": "0.0.0.0/0", "Egress": False, "Protocol": "6", "RuleAction": "deny", "RuleNumber": 50,
              "PortRange": {"From": 22, "To": 22}},
             {"CidrBlock": "0.0.0.0/0", "Egress": False, "Protocol": "6", "RuleAction": "deny", "RuleNumber": 60,
              "PortRange": {"From": 3389, "To": 3389}},
             {"CidrBlock": "0.0.0.0/0", "Egress": False, "Protocol": "-1", "RuleAction": "allow", "RuleNumber": 100}]

# check id -> (records of the failing account, records of the compliant one); each resource "bad"/"good"
CASES: dict[str, tuple[dict, dict]] = {
    "iam_root_mfa_enabled": ({"account": [account(summary={"AccountMFAEnabled": 0})]}, {"account": [account()]}),
    "iam_root_no_access_keys": ({"account": [account(summary={"AccountAccessKeysPresent": 1})]},
                                {"account": [account()]}),
    "iam_root_not_used_recently": ({"account": [account(root={"password_last_used": ago(0.2)})]},
                                   {"account": [account(root={"password_last_used": ago(30)})]}),
    "iam_password_policy_min_length": ({"account": [account(password_policy=None)]}, {"account": [account()]}),
    "iam_password_policy_reuse": ({"account": [account(password_policy={"PasswordReusePrevention": 3})]},
                                  {"account": [account()]}),
    "iam_user_console_mfa": ({"iam_users": [user("u", console=True, password_last_used=ago(1))]},
                             {"iam_users": [user("u", console=True, mfa_devices=1, password_last_used=ago(1))]}),
    "iam_access_key_rotated_90d": ({"iam_users": [user("u", access_keys=[key("AKIA1", 412, 1)])]},
                                   {"iam_users": [user("u", access_keys=[key("AKIA1", 20, 1),
                                                                          key("AKIA0", 400, None, "Inactive")])]}),
    "iam_credentials_unused_45d": ({"iam_users": [user("u", access_keys=[key("AKIA1", 412, 180)])]},
                                   {"iam_users": [user("u", access_keys=[key("AKIA1", 412, 2)])]}),
    "iam_user_one_active_key": ({"iam_users": [user("u", access_keys=[key("A", 1, 1), key("B", 1, 1)])]},
                                {"iam_users": [user("u", access_keys=[key("A", 1, 1), key("B", 1, 1, "Inactive")])]}),
    "iam_user_no_direct_policies": ({"iam_users": [user("u", attached_policies=["arn:aws:iam::1:policy/p"])]},
                                    {"iam_users": [user("u")]}),
    "iam_policy_no_admin_star": (
        {"iam_policies": [rec("AwsIamPolicy", "p", attachment_count=1, document=STAR)]},
        {"iam_policies": [rec("AwsIamPolicy", "p", attachment_count=1, document=SCOPED)]}),
    "iam_user_no_admin_star_attached": (
        {"iam_users": [user("u", attached_policies=["arn:x:policy/p"])],
         "iam_policies": [{**rec("AwsIamPolicy", "p", attachment_count=1, document=STAR), "arn": "arn:x:policy/p"}]},
        {"iam_users": [user("u", attached_policies=["arn:x:policy/p"])],
         "iam_policies": [{**rec("AwsIamPolicy", "p", attachment_count=1, document=SCOPED), "arn": "arn:x:policy/p"}]}),
    "cloudtrail_multi_region": ({"account": [account()], "trails": [rec("AwsCloudTrailTrail", "t", **{
        **TRAIL, "multi_region": False})]}, {"account": [account()], "trails": [rec("AwsCloudTrailTrail", "t", **TRAIL)]}),
    "cloudtrail_log_file_validation": ({"trails": [rec("AwsCloudTrailTrail", "t", **{**TRAIL, "log_file_validation": False})]},
                                       {"trails": [rec("AwsCloudTrailTrail", "t", **TRAIL)]}),
    "cloudtrail_kms_encryption": ({"trails": [rec("AwsCloudTrailTrail", "t", **{**TRAIL, "kms_key_id": None})]},
                                  {"trails": [rec("AwsCloudTrailTrail", "t", **TRAIL)]}),
    "cloudtrail_is_logging": ({"trails": [rec("AwsCloudTrailTrail", "t", **{**TRAIL, "is_logging": False})]},
                              {"trails": [rec("AwsCloudTrailTrail", "t", **TRAIL)]}),
    "cloudtrail_bucket_not_public": (
        {"trails": [rec("AwsCloudTrailTrail", "t", **TRAIL)],
         "buckets": [bucket("trail-b", public_access_block=None, policy=PUBLIC_POLICY)]},
        {"trails": [rec("AwsCloudTrailTrail", "t", **TRAIL)], "buckets": [bucket("trail-b")]}),
    "cloudtrail_bucket_access_logging": (
        {"trails": [rec("AwsCloudTrailTrail", "t", **TRAIL)], "buckets": [bucket("trail-b", logging=None)]},
        {"trails": [rec("AwsCloudTrailTrail", "t", **TRAIL)], "buckets": [bucket("trail-b")]}),
    "config_recorder_enabled": (
        {"config_recorders": [rec("AwsAccount", "r", recorders=[])]},
        {"config_recorders": [rec("AwsAccount", "r", recorders=[{"name": "default", "all_supported": True,
                                                                 "recording": True}])]}),
    "vpc_flow_logs_enabled": ({"vpcs": [rec("AwsEc2Vpc", "vpc-1", flow_logs=[])]},
                              {"vpcs": [rec("AwsEc2Vpc", "vpc-1", flow_logs=[{"id": "fl", "status": "ACTIVE"}])]}),
    "log_group_retention_set": ({"log_groups": [rec("AwsLogsLogGroup", "/g", retention_days=None)]},
                                {"log_groups": [rec("AwsLogsLogGroup", "/g", retention_days=30)]}),
    "sg_ssh_open_to_world": ({"security_groups": [sg("sg-1", [world(22, 22)])]},
                             {"security_groups": [sg("sg-1", [world(443, 443), {
                                 "IpProtocol": "tcp", "FromPort": 22, "ToPort": 22,
                                 "IpRanges": [{"CidrIp": "10.0.0.0/8"}]}])]}),
    "sg_rdp_open_to_world": ({"security_groups": [sg("sg-1", [world(3389, 3389, v6=True)])]},
                             {"security_groups": [sg("sg-1", [world(22, 22)])]}),
    "sg_all_ports_open_to_world": ({"security_groups": [sg("sg-1", [world(0, 0, proto="-1")])]},
                                   {"security_groups": [sg("sg-1", [world(80, 443)])]}),
    "sg_db_ports_open_to_world": ({"security_groups": [sg("sg-1", [world(5432, 5432)])]},
                                  {"security_groups": [sg("sg-1", [world(443, 443)])]}),
    "sg_default_restricts_all": ({"security_groups": [sg("sg-1", [], name="default",
                                                         egress=[{"IpProtocol": "-1"}])]},
                                 {"security_groups": [sg("sg-1", [], name="default")]}),
    "nacl_admin_ports_open_to_world": ({"network_acls": [rec("AwsEc2NetworkAcl", "acl-1", entries=NACL_DEFAULT)]},
                                       {"network_acls": [rec("AwsEc2NetworkAcl", "acl-1", entries=NACL_GOOD)]}),
    "ec2_imdsv2_required": ({"instances": [rec("AwsEc2Instance", "i-1", http_tokens="optional")]},
                            {"instances": [rec("AwsEc2Instance", "i-1", http_tokens="required")]}),
    "s3_block_public_access": ({"buckets": [bucket("b", public_access_block=None)]}, {"buckets": [bucket("b")]}),
    "s3_bucket_not_public": (
        {"buckets": [bucket("b", public_access_block=None, policy=PUBLIC_POLICY)]},
        {"buckets": [bucket("b", policy=PUBLIC_POLICY)]}),  # Block Public Access neutralises the policy
    "s3_default_encryption": ({"buckets": [bucket("b", encryption=None)]}, {"buckets": [bucket("b")]}),
    "s3_tls_only": ({"buckets": [bucket("b", policy=PUBLIC_POLICY)]}, {"buckets": [bucket("b", policy=TLS_POLICY)]}),
    "ebs_default_encryption": ({"ebs_regions": [rec("AwsAccount", "r", encryption_by_default=False)]},
                               {"ebs_regions": [rec("AwsAccount", "r", encryption_by_default=True)]}),
    "ebs_volume_encrypted": ({"volumes": [rec("AwsEc2Volume", "vol-1", encrypted=False)]},
                             {"volumes": [rec("AwsEc2Volume", "vol-1", encrypted=True)]}),
    "ebs_snapshot_not_public": ({"ebs_snapshots": [rec("AwsEc2Snapshot", "snap-1", public=True)]},
                                {"ebs_snapshots": [rec("AwsEc2Snapshot", "snap-1", public=False)]}),
    "rds_storage_encrypted": ({"rds_instances": [rec("AwsRdsDbInstance", "db", encrypted=False, public=False,
                                                     auto_minor_version_upgrade=True)]},
                              {"rds_instances": [rec("AwsRdsDbInstance", "db", encrypted=True, public=False,
                                                     auto_minor_version_upgrade=True)]}),
    "rds_auto_minor_version_upgrade": (
        {"rds_instances": [rec("AwsRdsDbInstance", "db", encrypted=True, public=False, auto_minor_version_upgrade=False)]},
        {"rds_instances": [rec("AwsRdsDbInstance", "db", encrypted=True, public=False, auto_minor_version_upgrade=True)]}),
    "rds_not_publicly_accessible": (
        {"rds_instances": [rec("AwsRdsDbInstance", "db", encrypted=True, public=True, auto_minor_version_upgrade=True)]},
        {"rds_instances": [rec("AwsRdsDbInstance", "db", encrypted=True, public=False, auto_minor_version_upgrade=True)]}),
    "rds_snapshot_not_public": ({"rds_snapshots": [rec("AwsRdsDbSnapshot", "s", public=True)]},
                                {"rds_snapshots": [rec("AwsRdsDbSnapshot", "s", public=False)]}),
    "kms_key_rotation": ({"kms_keys": [rec("AwsKmsKey", "k", symmetric=True, rotation_enabled=False)]},
                         {"kms_keys": [rec("AwsKmsKey", "k", symmetric=True, rotation_enabled=True)]}),
}


def _run(check_id: str, records: dict) -> list:
    inv = Inventory(account_id=ACCT, collected_at=NOW.isoformat(), regions=["us-east-1"], records=records)
    return list(registry.checks()[check_id].evaluate(inv))


@pytest.mark.parametrize("check_id", sorted(CASES))
def test_check_fails_the_misconfigured_resource(check_id):
    results = _run(check_id, CASES[check_id][0])
    assert [r.status for r in results] == ["FAILED"]
    assert results[0].reason


@pytest.mark.parametrize("check_id", sorted(CASES))
def test_check_passes_the_compliant_resource(check_id):
    results = _run(check_id, CASES[check_id][1])
    assert [r.status for r in results] == ["PASSED"]


def test_registry_has_at_least_30_checks_each_tested_here():
    assert len(registry.checks()) >= 30
    assert set(registry.checks()) == set(CASES)


def test_every_check_has_complete_metadata():
    for cid, check in registry.checks().items():
        m = check.meta
        assert all((m.title, m.risk, m.remediation)), cid
        assert m.severity in {"CRITICAL", "HIGH", "MEDIUM", "LOW", "INFORMATIONAL"}, cid
        assert m.resource_type.startswith("Aws"), cid
        assert all(re.fullmatch(r"[1-5](\.\d+){1,2}", c) for c in m.cis), cid
        assert m.requires, cid


def test_runbooks_named_by_checks_exist():
    from aiops.core.settings import get_settings

    for check in registry.checks().values():
        if check.meta.runbook:
            base = get_settings().include_dir / "runbooks" / check.meta.runbook
            assert base.with_suffix(".yaml").exists(), check.meta.runbook
            assert (base.parent / f"{check.meta.runbook}.meta.yaml").exists()


def test_a_module_whose_id_mismatches_fails_registration(tmp_path, monkeypatch):
    import sys

    pkg = tmp_path / "fake_checks"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "right_name.py").write_text(
        "from aiops.compliance.model import CheckMeta\n"
        "METADATA = CheckMeta(id='wrong_name', title='t', severity='LOW', service='s', resource_type='AwsAccount',"
        " risk='r', remediation='x')\n"
        "def evaluate(inv):\n    return []\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    import fake_checks

    monkeypatch.setattr("aiops.compliance.checks.__path__", fake_checks.__path__)
    monkeypatch.setattr("aiops.compliance.checks.__name__", "fake_checks")
    registry.checks.cache_clear()
    try:
        with pytest.raises(registry.RegistryError, match="does not match the module name"):
            registry.checks()
    finally:
        registry.checks.cache_clear()
        sys.modules.pop("fake_checks", None)


def test_a_broken_check_is_reported_and_the_others_still_run(monkeypatch):
    check = registry.checks()["ebs_volume_encrypted"]

    def boom(inv):
        raise KeyError("encrypted")

    monkeypatch.setitem(registry.checks(), "ebs_volume_encrypted", registry.Check(check.meta, boom, check.module))
    inv = Inventory(account_id=ACCT, records={"volumes": [rec("AwsEc2Volume", "v", encrypted=True)],
                                              "kms_keys": [rec("AwsKmsKey", "k", symmetric=True, rotation_enabled=True)]})
    results, errors = registry.run_checks(inv, only=["ebs_volume_encrypted", "kms_key_rotation"])
    assert "ebs_volume_encrypted" in errors
    assert [r.check_id for r in results] == ["kms_key_rotation"]


def test_checks_whose_records_could_not_be_collected_are_not_evaluated():
    inv = Inventory(account_id=ACCT, errors={"buckets": "AccessDenied: ..."})
    results, errors = registry.run_checks(inv, only=["s3_tls_only"])
    assert results == []
    assert "AccessDenied" in errors["s3_tls_only"]
