"""Patch compliance against the real SSM API's shapes (botocore Stubber validates every request
and response against the service model): DescribeInstancePatchStates where the account has it;
the documented substitute from GetCommandInvocation where it answers UnsupportedOperation."""

from __future__ import annotations

from datetime import UTC, datetime

import boto3
import pytest
from botocore.stub import Stubber

from aiops.ops import patching


@pytest.fixture
def ssm(monkeypatch):
    client = boto3.client("ssm", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    monkeypatch.setattr(patching.aws, "client", lambda service, **kw: client)
    with Stubber(client) as stub:
        yield stub


def patch_state(instance_id: str, missing: int, failed: int = 0) -> dict:
    return {"InstanceId": instance_id, "PatchGroup": "staging", "BaselineId": "pb-0123456789abcdef0",
            "InstalledCount": 41, "InstalledOtherCount": 3, "MissingCount": missing,
            "FailedCount": failed, "NotApplicableCount": 12, "CriticalNonCompliantCount": missing,
            "OperationStartTime": datetime(2026, 11, 22, 2, 0, tzinfo=UTC),
            "OperationEndTime": datetime(2026, 11, 22, 2, 7, tzinfo=UTC), "Operation": "Scan"}


def test_compliance_from_describe_instance_patch_states_pages(ssm):
    ssm.add_response("describe_instance_patch_states",
                     {"InstancePatchStates": [patch_state("i-0aaaaaaaaaaaaaaa1", 0)], "NextToken": "t1"},
                     {"InstanceIds": ["i-0aaaaaaaaaaaaaaa1", "i-0aaaaaaaaaaaaaaa2"]})
    ssm.add_response("describe_instance_patch_states",
                     {"InstancePatchStates": [patch_state("i-0aaaaaaaaaaaaaaa2", 4, 1)]},
                     {"InstanceIds": ["i-0aaaaaaaaaaaaaaa1", "i-0aaaaaaaaaaaaaaa2"], "NextToken": "t1"})
    rows = patching.patch_compliance(["i-0aaaaaaaaaaaaaaa1", "i-0aaaaaaaaaaaaaaa2"], [])
    assert [(r["instance_id"], r["compliant"], r["missing"], r["failed"]) for r in rows] == [
        ("i-0aaaaaaaaaaaaaaa1", True, 0, 0), ("i-0aaaaaaaaaaaaaaa2", False, 4, 1)]
    assert rows[1]["critical_non_compliant"] == 4
    assert {r["source"] for r in rows} == {"DescribeInstancePatchStates"}
    ssm.assert_no_pending_responses()


def test_unsupported_api_falls_back_to_command_invocations(ssm):
    ssm.add_client_error("describe_instance_patch_states", service_error_code="UnsupportedOperation",
                         http_status_code=400)
    invocation = {"CommandId": "11111111-2222-3333-4444-555555555555", "InstanceId": "i-0aaaaaaaaaaaaaaa1",
                  "DocumentName": "AWS-RunPatchBaseline", "Status": "Success", "ResponseCode": 0,
                  "ExecutionEndDateTime": "2026-11-22T02:07:00Z"}
    ssm.add_response("get_command_invocation", {**invocation, "CommandId": "11111111-2222-3333-4444-555555555555"},
                     {"CommandId": "11111111-2222-3333-4444-555555555555", "InstanceId": "i-0aaaaaaaaaaaaaaa1"})
    ssm.add_response("get_command_invocation", {**invocation, "CommandId": "66666666-2222-3333-4444-555555555555",
                                                "Status": "Failed", "ResponseCode": 1},
                     {"CommandId": "66666666-2222-3333-4444-555555555555", "InstanceId": "i-0aaaaaaaaaaaaaaa1"})
    rows = patching.patch_compliance(["i-0aaaaaaaaaaaaaaa1"], [("11111111-2222-3333-4444-555555555555", "Scan"),
                                                              ("66666666-2222-3333-4444-555555555555", "Install")])
    assert rows[0]["operation"] == "Install"  # the last command that ran on it
    assert rows[0]["status"] == "Failed"
    assert rows[0]["compliant"] is None  # counts unknown: never reported as compliant
    assert "unavailable" in rows[0]["source"]
    assert "unknown" in patching.render_compliance(rows)


def test_other_errors_are_not_swallowed(ssm):
    from botocore.exceptions import ClientError

    ssm.add_client_error("describe_instance_patch_states", service_error_code="AccessDeniedException",
                         http_status_code=400)
    with pytest.raises(ClientError):
        patching.patch_compliance(["i-0aaaaaaaaaaaaaaa1"], [])
