"""Runbooks: SSM Automation documents SREs write once (``include/runbooks/``), the catalog that
validates them with their metadata, and the guards the executor runs before calling SSM."""

from __future__ import annotations

from aiops.remediation.catalog import Catalog, Runbook, RunbookMetadata, load_catalog
from aiops.remediation.guards import GuardViolation, TargetInfo, check_targets, validate_parameters

__all__ = [
    "Catalog",
    "GuardViolation",
    "Runbook",
    "RunbookMetadata",
    "TargetInfo",
    "check_targets",
    "load_catalog",
    "validate_parameters",
]
