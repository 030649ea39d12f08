"""The artifact bucket is created locked down: public access blocked, encrypted, and TLS-only when
S3 is reached over TLS (the plain-http emulator enforces bucket policies, so there it is skipped)."""

from __future__ import annotations

import json

import boto3
import pytest
from botocore.stub import ANY, Stubber

from aiops.core import artifacts
from aiops.core.artifacts import ArtifactStore


@pytest.mark.parametrize(("endpoint", "tls_policy"), [("https://s3.us-east-1.amazonaws.com", True),
                                                      ("http://127.0.0.1:5055", False)])
def test_new_bucket_is_locked_down(monkeypatch, endpoint: str, tls_policy: bool) -> None:
    s3 = boto3.client("s3", region_name="us-east-1", endpoint_url=endpoint,
                      aws_access_key_id="x", aws_secret_access_key="y")
    monkeypatch.setattr(artifacts.aws, "client", lambda *a, **k: s3)
    monkeypatch.setattr(artifacts, "_ensured", set())
    stub = Stubber(s3)
    stub.add_client_error("head_bucket", service_error_code="404", http_status_code=404)
    stub.add_response("create_bucket", {"Location": "/b"}, {"Bucket": "b"})
    stub.add_response("put_public_access_block", {}, {"Bucket": "b", "PublicAccessBlockConfiguration": ANY})
    stub.add_response("put_bucket_encryption", {}, {"Bucket": "b", "ServerSideEncryptionConfiguration": ANY})
    policies: list[dict] = []
    if tls_policy:
        stub.add_response("put_bucket_policy", {}, {"Bucket": "b", "Policy": ANY})
        s3.meta.events.register("before-parameter-build.s3.PutBucketPolicy",
                                lambda params, **_: policies.append(json.loads(params["Policy"])))
    with stub:
        ArtifactStore(bucket="b").ensure_bucket()
        stub.assert_no_pending_responses()
    if tls_policy:
        (statement,) = policies[0]["Statement"]
        assert statement["Effect"] == "Deny"
        assert statement["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
        assert statement["Resource"] == ["arn:aws:s3:::b", "arn:aws:s3:::b/*"]
