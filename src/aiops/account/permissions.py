"""Permission declarations: every module that calls AWS says which IAM actions it needs, next to the
code that makes the calls::

    from aiops.account.permissions import permissions

    PERMISSIONS = permissions(
        "metrics: list metrics, read datapoints, resolve tags",
        reader=("cloudwatch:ListMetrics", "cloudwatch:GetMetricData", "tag:GetResources"),
    )

Three identities hold them (:mod:`aiops.account.iam` generates their policies):

* ``reader`` - collect, decide and report: describe/list/get, plus writes to what the platform owns
  (its artifact bucket, its dashboards and metric namespace, Security Hub findings it imports).
  Connection ``aws_default``.
* ``notifier`` - SNS ``Publish`` to the team topics, SES ``SendRawEmail``, EventBridge ``PutEvents``.
  Attached to the reader role (connection ``aws_default``): sending a message changes no resource.
* ``executor`` - changes the account after an approval: SSM automations, runbook publishing, the
  routine-operations writes. Connection ``aws_executor``.
* ``deployer`` - what the person running ``aiops account bootstrap`` needs (CloudFormation and the
  services whose resources the stack creates). Not a platform identity: no connection holds it.

An entry is ``"service:Action"`` or ``"service:Action @ resource"``; a resource may use
``${AWS::Partition}``, ``${AWS::AccountId}``, ``${AWS::Region}`` and the stack parameters
``${ArtifactBucket}``, ``${TrailBucket}``, ``${EventBusName}``, ``${SenderDomain}`` (CloudFormation
``Fn::Sub`` syntax; the JSON output substitutes them).
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

Role = Literal["reader", "notifier", "executor", "deployer"]
ROLES: tuple[Role, ...] = ("reader", "notifier", "executor", "deployer")
_ENTRY = re.compile(r"^(?P<action>[a-z0-9-]+:[A-Za-z0-9*]+)(?:\s*@\s*(?P<resource>\S+))?$")

#: Modules that declare ``PERMISSIONS`` (every module that calls AWS through a connection).
#: ``tests/unit/test_account_iam.py`` fails when a module calls ``aws.client`` and is missing here.
DECLARING_MODULES: tuple[str, ...] = (
    "aiops.core.aws",
    "aiops.core.identity",
    "aiops.core.artifacts",
    "aiops.core.reporting",
    "aiops.metrics.collect",
    "aiops.logs.collect",
    "aiops.traces.collect",
    "aiops.traces.pipeline",
    "aiops.remediation.targets",
    "aiops.anomaly.collect",
    "aiops.anomaly.pipeline",
    "aiops.alerting.enrich",
    "aiops.alerting.notify",
    "aiops.core.queue",
    "aiops.incidents.triage",
    "aiops.incidents.series",
    "aiops.incidents.runbook_rules",
    "aiops.compliance.collect",
    "aiops.compliance.external",
    "aiops.compliance.asff",
    "aiops.compliance.pipeline",
    "aiops.cost.collect",
    "aiops.cost.spend",
    "aiops.cost.external",
    "aiops.security.collect",
    "aiops.security.pipeline",
    "aiops.slo.pipeline",
    "aiops.remediation.pipeline",
    "aiops.remediation.preapproval",
    "aiops.remediation.sync",
    "aiops.airflow.ssm_automation",
    "aiops.airflow.assets",
    "aiops.ops.log_retention",
    "aiops.ops.patching",
    "aiops.ops.scheduling",
    "aiops.ops.snapshots",
    "aiops.account.check",
    "aiops.account.bootstrap",
)


@dataclass(frozen=True)
class Grant:
    action: str
    resource: str = "*"


@dataclass(frozen=True)
class Permissions:
    """What one module needs, per identity."""

    purpose: str
    grants: dict[str, tuple[Grant, ...]] = field(default_factory=dict)

    def actions(self, role: Role) -> set[str]:
        return {g.action for g in self.grants.get(role, ())}


def _parse(entry: str) -> Grant:
    match = _ENTRY.match(entry.strip())
    if not match:
        raise ValueError(f"bad permission {entry!r}: expected 'service:Action' or 'service:Action @ resource'")
    return Grant(match.group("action"), match.group("resource") or "*")


def permissions(purpose: str, *, reader: Iterable[str] = (), notifier: Iterable[str] = (),
                executor: Iterable[str] = (), deployer: Iterable[str] = ()) -> Permissions:
    """A module's declaration (validated at import: a typo fails loudly, not in production)."""
    grants = {role: tuple(_parse(e) for e in entries)
              for role, entries in (("reader", reader), ("notifier", notifier), ("executor", executor),
                                    ("deployer", deployer))}
    return Permissions(purpose, {r: g for r, g in grants.items() if g})


def declarations(modules: Iterable[str] = DECLARING_MODULES) -> dict[str, Permissions]:
    """``module -> Permissions`` of every declaring module (imports them)."""
    out: dict[str, Permissions] = {}
    for name in modules:
        module = importlib.import_module(name)
        declared = getattr(module, "PERMISSIONS", None)
        if not isinstance(declared, Permissions):
            raise TypeError(f"{name} calls AWS but declares no PERMISSIONS = permissions(...)")
        out[name] = declared
    return out


def grants(role: Role, modules: Iterable[str] = DECLARING_MODULES) -> list[tuple[str, Grant]]:
    """``(module, grant)`` for one identity, sorted."""
    found = [(mod, g) for mod, p in declarations(modules).items() for g in p.grants.get(role, ())]
    return sorted(found, key=lambda x: (x[1].action, x[1].resource, x[0]))
