"""The change engine's registry (issue 18): every action declares permissions its module grants the
executor (and every ops executor grant serves an action), every change a planner emits names a
registered action, every runbook is an action, and the engine refuses what it cannot verify."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
SRC = REPO / "src"


def _module_path(module: str) -> Path:
    return SRC / (module.replace(".", "/") + ".py")


def test_every_module_that_registers_an_action_is_discovered():
    from aiops.remediation.actions import ACTION_MODULES

    registering = {".".join(p.relative_to(SRC).with_suffix("").parts) for p in (SRC / "aiops").rglob("*.py")
                   if "@action(" in p.read_text() or "\noperator_action(" in p.read_text()}
    assert registering, "no module registers an action"
    assert sorted(registering) == sorted(ACTION_MODULES)


def test_action_permissions_are_exactly_the_executor_grants_of_their_module():
    from aiops.account.permissions import declarations
    from aiops.remediation.actions import ACTION_MODULES, actions

    registered = [a for a in actions().values() if not a.name.startswith("runbook:")]
    declared = declarations(ACTION_MODULES)
    for act in registered:
        granted = declared[act.source].actions("executor")
        assert set(act.permissions) <= granted, (act.name, sorted(set(act.permissions) - granted))
    for module in ACTION_MODULES:
        used = {p for a in registered if a.source == module for p in a.permissions}
        unused = declared[module].actions("executor") - used
        assert not unused, f"{module} grants the executor {sorted(unused)} but no action of it needs them"


def _emitted_action_names(module: str) -> set[str]:
    """The first argument of every ``Change(...)`` in the module: a literal, or a name whose
    assignments in the module are (conditional) literals."""
    def literals(value: ast.expr) -> set[str]:  # "a" or `"a" if cond else "b"`
        if isinstance(value, ast.IfExp):
            return literals(value.body) | literals(value.orelse)
        return {value.value} if isinstance(value, ast.Constant) and isinstance(value.value, str) else set()

    tree = ast.parse(_module_path(module).read_text())
    assigned: dict[str, set[str]] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign):
            values = literals(node.value)
            for target in node.targets:
                if isinstance(target, ast.Name):
                    assigned.setdefault(target.id, set()).update(values)
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "Change" and node.args:
            first = node.args[0]
            if isinstance(first, ast.Constant):
                names.add(first.value)
            elif isinstance(first, ast.Name) and assigned.get(first.id):
                names |= assigned[first.id]
            else:
                pytest.fail(f"{module}: a Change whose action cannot be read statically: {ast.unparse(first)}")
    return names


@pytest.mark.parametrize("module", ["aiops.ops.snapshots", "aiops.ops.log_retention", "aiops.ops.scheduling",
                                    "aiops.ops.patching"])
def test_every_change_a_planner_emits_names_a_registered_action(module):
    from aiops.remediation.actions import actions

    emitted = _emitted_action_names(module)
    assert emitted, module
    registered = actions()
    assert sorted(emitted - set(registered)) == []
    assert all(registered[name].run is not None for name in emitted)  # the engine can run each


def test_every_ops_planner_module_is_covered():
    planners = {p.stem for p in (SRC / "aiops" / "ops").glob("*.py") if "Change(" in p.read_text()}
    assert planners - {"plan"} == {"snapshots", "log_retention", "scheduling", "patching"}


def test_every_runbook_is_an_ssm_automation_action_with_its_metadata_permissions():
    from aiops.remediation.actions import actions

    registered = actions()
    metas = sorted((REPO / "include" / "runbooks").glob("*.meta.yaml"))
    assert len(metas) >= 10
    for path in metas:
        meta = yaml.safe_load(path.read_text())
        act = registered[f"runbook:{meta['id']}"]
        assert act.kind == "ssm-automation"
        assert act.permissions == tuple(sorted(set(meta["permissions"])))
        assert act.approval == ("policy" if meta["approval"] == "pre-approved" else "human")
        assert act.run is None  # runs through the remediate DAG's operator, never the engine


@pytest.mark.parametrize(("name", "destructive"), [
    pytest.param("runbook:delete-ebs-snapshot", True, id="delete"),
    pytest.param("runbook:release-elastic-ip", True, id="release"),
    pytest.param("runbook:reboot-ec2-instance", False, id="reboot"),
    pytest.param("ec2.delete_snapshot", True, id="api_delete"),
    pytest.param("ec2.stop_instance", False, id="api_stop"),
])
def test_destructive_flag(name, destructive):
    from aiops.remediation.actions import get_action

    act = get_action(name)
    assert act is not None
    assert act.destructive is destructive


def test_registration_refuses_a_malformed_action():
    from aiops.remediation.actions import action

    with pytest.raises(ValueError, match="permissions"):
        action("ec2.bad", resource_type="ec2:instance", permissions=("ec2 StopInstances",), destructive=False)
    with pytest.raises(ValueError, match="name"):
        action("StopIt", resource_type="ec2:instance", permissions=("ec2:StopInstances",), destructive=False)
    with pytest.raises(ValueError, match="registered twice"):
        action("ec2.stop_instance", resource_type="ec2:instance", permissions=("ec2:StopInstances",),
               destructive=False)(lambda change: {})


def _audit(action: str) -> list[dict]:
    from aiops.core.state import StateStore

    return [e for e in StateStore().audit_entries() if e["action"] == action]


def test_an_unknown_action_is_refused_recorded_and_audited(isolated_stores):
    from aiops.remediation import records
    from aiops.remediation.actions import Change
    from aiops.remediation.engine import execute_change

    change = Change("ec2.terminate_everything", "i-1", "p", "enforce", "x", {}, "w/1/ec2.terminate_everything/i-1")
    out = execute_change(change, workflow="w", plan_hash="h", approved_by=["policy:p"], run_id="r")
    assert out == {"status": "refused", "reason": "unknown action 'ec2.terminate_everything'"}
    assert records.get(change.key)["status"] == "refused"
    [entry] = _audit("change.refused")
    assert entry["detail"]["refused"] == out["reason"]


def test_a_prod_patch_install_approved_only_by_policy_is_refused_before_any_call(isolated_stores, monkeypatch):
    from dataclasses import replace

    from aiops.remediation import actions as registry
    from aiops.remediation.actions import Change, get_action
    from aiops.remediation.engine import execute_change

    act = get_action("ssm.patch_install")
    assert act is not None
    called: list[str] = []
    monkeypatch.setitem(registry._REGISTRY, act.name, replace(
        act, run=lambda c: called.append("run") or {}, guard=lambda c: called.append("guard") or None))
    prod = Change(act.name, "i-1", "prod-weekly", "enforce", "x", {"requires_approval": True}, "w/1/i-1")
    out = execute_change(prod, workflow="ops_patching", plan_hash="h", approved_by=["policy:prod-weekly"], run_id="r")
    assert out["status"] == "refused"
    assert "needs a verified human approval" in out["reason"]
    assert called == []
    [entry] = _audit("ssm.patch_install.refused")
    assert {k: entry["detail"][k] for k in ("action", "kind", "resource", "plan_hash", "approved_by")} == {
        "action": "ssm.patch_install", "kind": "ssm-command", "resource": "i-1", "plan_hash": "h",
        "approved_by": ["policy:prod-weekly"]}
    assert entry["detail"]["permissions"] == ["ssm:SendCommand", "ssm:GetCommandInvocation"]
    # the same change with a person's approval goes through (guard, then run)
    staging = replace(prod, key="w/1/i-2", resource_id="i-2")
    done = execute_change(staging, workflow="ops_patching", plan_hash="h", approved_by=["alice.sre"], run_id="r")
    assert done["status"] == "done"
    assert called == ["guard", "run"]


def test_the_executor_identity_is_used_only_by_actions_and_runbook_publishing():
    """The executor (``aws_executor``) is the identity that changes the account: outside the
    modules that register actions it serves only runbook publishing (``remediation.sync``), the
    connection check, and the two DAG operators that send registered actions (runbooks, patch scan)."""
    from aiops.remediation.actions import ACTION_MODULES

    users = {".".join(p.relative_to(SRC).with_suffix("").parts) for p in (SRC / "aiops").rglob("*.py")
             if "executor_client(" in p.read_text() or "aws_executor_conn_id" in p.read_text()}
    users -= {"aiops.account.connections", "aiops.core.settings"}  # the factory and the setting itself
    assert users == set(ACTION_MODULES) | {"aiops.remediation.sync", "aiops.account.check"}
    dags = {p.stem for p in (REPO / "dags").glob("*.py") if "aws_executor_conn_id" in p.read_text()}
    assert dags == {"remediate", "ops_patching"}


def test_every_compliance_fix_names_a_runbook_action():
    """Compliance fixes are ``remediate`` requests (aiops.compliance.fixes), so each runs as a runbook
    action through the remediate DAG's guards, approvals and audit."""
    from aiops.compliance.registry import checks
    from aiops.remediation.actions import actions

    runbooks = {c.meta.runbook for c in checks().values() if c.meta.runbook}
    assert runbooks
    assert sorted(f"runbook:{r}" for r in runbooks if f"runbook:{r}" not in actions()) == []


def test_reader_and_notifier_hold_no_action_write():
    """Only the executor can make an action's write: the reader's writes are to what the platform
    owns (its bucket, dashboards, queues) and the notifier only sends."""
    from aiops.account.iam import allowed, default_params, render_policies
    from aiops.remediation.actions import actions

    policies = render_policies(default_params(account_id="111122223333", artifact_bucket="art", trail_bucket="trail"))
    docs = [policies["aiops-reader"], policies["aiops-notifier"]]
    writes = {p for a in actions().values() for p in a.permissions
              if not p.split(":", 1)[1].startswith(("Describe", "Get", "List"))}
    assert {"ec2:CreateSnapshot", "autoscaling:UpdateAutoScalingGroup", "ssm:SendCommand"} <= writes
    foreign = {w: "arn:aws:s3:::someone-elses" if w.startswith("s3:") else "arn:aws:x:us-east-1:111122223333:y/z"
               for w in writes}
    assert [w for w in sorted(writes) if allowed(w, docs, resource=foreign[w])] == []
    executor = [policies["aiops-executor"]]
    registered = [a for a in actions().values() if not a.name.startswith("runbook:")]
    assert [p for a in registered for p in a.permissions if not allowed(p, executor)] == []


def test_a_change_done_before_actions_were_qualified_is_not_made_again(isolated_stores, monkeypatch):
    """Records written before the upgrade keyed the change by the bare verb (``.../delete_snapshot/...``):
    the engine finds them done and calls nothing."""
    from dataclasses import replace

    from aiops.remediation import engine, records
    from aiops.remediation.actions import Change, get_action

    change = Change("ec2.delete_snapshot", "snap-0abc", "daily", "enforce", "old",
                    key="ops_snapshots/2026-11-20/ec2.delete_snapshot/snap-0abc")
    old = replace(change, action="delete_snapshot", key="ops_snapshots/2026-11-20/delete_snapshot/snap-0abc")
    records.record(old, workflow="ops_snapshots", status="done", detail={}, run_id="before-upgrade")
    act = replace(get_action("ec2.delete_snapshot"), guard=lambda c: pytest.fail("guarded a change already done"),
                  run=lambda c: pytest.fail("made a change already done"))
    monkeypatch.setattr(engine, "get_action", lambda name: act)
    got = engine.execute_change(change, workflow="ops_snapshots", plan_hash="h", approved_by=["policy:daily"],
                                run_id="after-upgrade")
    assert got == {"status": "already_done"}
    assert engine.legacy_key(change) == old.key
