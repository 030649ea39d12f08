"""runbook_sync: create, new version for a changed runbook, untouched when unchanged, bad files named."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from aiops.core import aws
from aiops.remediation.sync import sync_catalog

pytestmark = pytest.mark.emulator
CATALOG = Path(__file__).resolve().parents[2] / "include" / "runbooks"


def test_changed_runbook_gets_a_new_default_version_and_bad_files_are_named(fresh_emulator, tmp_path):
    catalog = tmp_path / "runbooks"
    shutil.copytree(CATALOG, catalog)
    first = sync_catalog(catalog)
    assert first["counts"]["created"] == len(list(catalog.glob("*.meta.yaml")))

    doc = catalog / "snapshot-ebs-volume.yaml"
    doc.write_text(doc.read_text().replace("## Snapshot an EBS volume", "## Snapshot an EBS volume (v2)", 1))
    (catalog / "stop-idle-instance.yaml").write_text("schemaVersion: '0.3'\nmainSteps: [\n")  # broken YAML
    second = sync_catalog(catalog)
    by_id = {r["runbook"]: r for r in second["results"]}
    assert by_id["snapshot-ebs-volume"]["action"] == "updated"
    assert by_id["snapshot-ebs-volume"]["version"] == "2"
    assert second["counts"]["unchanged"] == len(by_id) - 1
    assert "stop-idle-instance" not in by_id
    assert any("stop-idle-instance.yaml" in e for e in second["catalog_errors"])
    ssm = aws.client("ssm")
    described = ssm.describe_document(Name="MatCarv-snapshot-ebs-volume")["Document"]
    assert described["DefaultVersion"] == "2"
