"""The artifact store: an S3 bucket keyed ``<domain>/<dataset>/dt=<YYYY-MM-DD>/<name>``.

Partitions are keyed by the DAG run's data interval, so re-running or backfilling an interval
rewrites its partition instead of adding a second copy. The bucket is created on first use.
"""

from __future__ import annotations

import io
import json
import threading
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from aiops.account.permissions import permissions
from aiops.core import aws
from aiops.core.settings import get_settings

PERMISSIONS = permissions(
    "the artifact store: its own bucket only (created on first use when absent)",
    reader=(
        "s3:ListBucket @ arn:${AWS::Partition}:s3:::${ArtifactBucket}",
        "s3:GetObject @ arn:${AWS::Partition}:s3:::${ArtifactBucket}/*",
        "s3:PutObject @ arn:${AWS::Partition}:s3:::${ArtifactBucket}/*",
        "s3:DeleteObject @ arn:${AWS::Partition}:s3:::${ArtifactBucket}/*",
        "s3:CreateBucket @ arn:${AWS::Partition}:s3:::${ArtifactBucket}",
        "s3:PutBucketPublicAccessBlock @ arn:${AWS::Partition}:s3:::${ArtifactBucket}",
        "s3:PutEncryptionConfiguration @ arn:${AWS::Partition}:s3:::${ArtifactBucket}",
        "s3:PutBucketPolicy @ arn:${AWS::Partition}:s3:::${ArtifactBucket}",
    ),
)

if TYPE_CHECKING:
    import pandas as pd

_ensured: set[tuple[str, str]] = set()
_ensured_lock = threading.Lock()


def partition(d: date | datetime | str) -> str:
    if isinstance(d, datetime):
        d = d.date()
    return f"dt={d if isinstance(d, str) else d.isoformat()}"


@dataclass
class ArtifactStore:
    bucket: str = field(default_factory=lambda: get_settings().artifact_bucket)
    conn_id: str = field(default_factory=lambda: get_settings().aws_conn_id)

    @property
    def s3(self) -> Any:
        return aws.client("s3", conn_id=self.conn_id)

    def uri(self, key: str = "") -> str:
        return f"s3://{self.bucket}/{key}"

    def ensure_bucket(self) -> None:
        """Create the bucket when it does not exist (first use on a fresh account)."""
        from botocore.exceptions import ClientError

        token = (self.conn_id, self.bucket)
        with _ensured_lock:
            if token in _ensured:
                return
            try:
                self.s3.head_bucket(Bucket=self.bucket)
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") not in {"404", "NoSuchBucket", "NotFound"}:
                    raise
                region = self.s3.meta.region_name
                kwargs: dict[str, Any] = {"Bucket": self.bucket}
                if region and region != "us-east-1":
                    kwargs["CreateBucketConfiguration"] = {"LocationConstraint": region}
                self.s3.create_bucket(**kwargs)
                self.s3.put_public_access_block(Bucket=self.bucket, PublicAccessBlockConfiguration={
                    "BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": True,
                    "RestrictPublicBuckets": True})
                self.s3.put_bucket_encryption(Bucket=self.bucket, ServerSideEncryptionConfiguration={
                    "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]})
                # TLS only (CIS 2.1.1) when we reach S3 over TLS (always, on AWS). Over a plain-http
                # endpoint (the local emulator, which enforces bucket policies) it would lock us out.
                if str(self.s3.meta.endpoint_url).startswith("https://"):
                    self._deny_insecure_transport()
            _ensured.add(token)

    def _deny_insecure_transport(self) -> None:
        arn = f"arn:aws:s3:::{self.bucket}"
        self.s3.put_bucket_policy(Bucket=self.bucket, Policy=json.dumps({
            "Version": "2012-10-17",
            "Statement": [{"Sid": "DenyInsecureTransport", "Effect": "Deny", "Principal": "*", "Action": "s3:*",
                           "Resource": [arn, f"{arn}/*"],
                           "Condition": {"Bool": {"aws:SecureTransport": "false"}}}]}))

    @staticmethod
    def key(domain: str, dataset: str, dt: date | datetime | str, name: str) -> str:
        return f"{domain}/{dataset}/{partition(dt)}/{name}"

    # -- bytes / json / parquet ------------------------------------------------------------------
    def put_bytes(self, key: str, data: bytes, content_type: str = "application/octet-stream") -> str:
        self.ensure_bucket()
        self.s3.put_object(Bucket=self.bucket, Key=key, Body=data, ContentType=content_type)
        return self.uri(key)

    def get_bytes(self, key: str) -> bytes | None:
        from botocore.exceptions import ClientError

        self.ensure_bucket()
        try:
            return self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read()
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in {"NoSuchKey", "404"}:
                return None
            raise

    def put_json(self, key: str, obj: Any) -> str:
        return self.put_bytes(key, json.dumps(obj, indent=2, default=str).encode(), "application/json")

    def get_json(self, key: str) -> Any:
        data = self.get_bytes(key)
        return None if data is None else json.loads(data)

    def put_parquet(self, key: str, frame: pd.DataFrame) -> str:
        buf = io.BytesIO()
        frame.to_parquet(buf, index=False, engine="pyarrow", compression="zstd")
        return self.put_bytes(key, buf.getvalue(), "application/vnd.apache.parquet")

    def read_parquet(self, key: str) -> pd.DataFrame | None:
        import pandas as pd

        data = self.get_bytes(key)
        return None if data is None else pd.read_parquet(io.BytesIO(data), engine="pyarrow")

    # -- listing / partitions --------------------------------------------------------------------
    def list_keys(self, prefix: str) -> list[str]:
        self.ensure_bucket()
        keys: list[str] = []
        for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix):
            keys.extend(obj["Key"] for obj in page.get("Contents", []))
        return sorted(keys)

    def partitions(self, domain: str, dataset: str) -> list[str]:
        """The ``YYYY-MM-DD`` partitions present for a dataset, ascending."""
        prefix = f"{domain}/{dataset}/dt="
        return sorted({k[len(prefix):].split("/", 1)[0] for k in self.list_keys(prefix)})

    def delete_keys(self, keys: list[str]) -> int:
        for i in range(0, len(keys), 1000):
            self.s3.delete_objects(Bucket=self.bucket,
                                   Delete={"Objects": [{"Key": k} for k in keys[i:i + 1000]], "Quiet": True})
        return len(keys)

    def replace_partition(self, domain: str, dataset: str, dt: date | datetime | str,
                          files: dict[str, bytes]) -> list[str]:
        """Write a partition's files, then remove whatever else it held: a re-run replaces it."""
        prefix = f"{domain}/{dataset}/{partition(dt)}/"
        written = [self.put_bytes(prefix + name, data) for name, data in files.items()]
        stale = [k for k in self.list_keys(prefix) if k[len(prefix):] not in files]
        self.delete_keys(stale)
        return written
