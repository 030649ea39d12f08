"""The tag index is cached per account endpoint: pointing the connection at another account (or the
emulator at a fresh seed) must not enrich alerts with the previous account's tags."""

from __future__ import annotations

from types import SimpleNamespace

from aiops.alerting import enrich


class FakeTagging:
    def __init__(self, endpoint: str, tags: dict[str, str]) -> None:
        self.meta = SimpleNamespace(endpoint_url=endpoint, region_name="us-east-1")
        self.tags = tags
        self.listings = 0

    def get_paginator(self, _name: str):
        fake = self

        class Paginator:
            def paginate(self, **_kw):
                fake.listings += 1
                yield {"ResourceTagMappingList": [{
                    "ResourceARN": "arn:aws:ec2:us-east-1:123456789012:instance/i-0abc",
                    "Tags": [{"Key": k, "Value": v} for k, v in fake.tags.items()]}]}

        return Paginator()


def test_cache_is_per_account_endpoint(monkeypatch) -> None:
    a = FakeTagging("http://127.0.0.1:5001", {"service": "checkout"})
    b = FakeTagging("http://127.0.0.1:5002", {"service": "payments"})
    current = {"client": a}
    monkeypatch.setattr("aiops.core.aws.client", lambda *_a, **_k: current["client"])
    enrich.clear_tag_cache()
    assert enrich.tag_index(max_age=3600)["i-0abc"] == {"service": "checkout"}
    assert enrich.tag_index(max_age=3600)["i-0abc"] == {"service": "checkout"}
    assert a.listings == 1  # cached within the account
    current["client"] = b
    assert enrich.tag_index(max_age=3600)["i-0abc"] == {"service": "payments"}
    assert b.listings == 1
    enrich.clear_tag_cache()
