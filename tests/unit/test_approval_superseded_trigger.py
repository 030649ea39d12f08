"""A prompt whose request is superseded while it waits is closed by its trigger (issue 19:
superseded approvals leave Required Actions)."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from types import SimpleNamespace

import pytest
from airflow.providers.standard.triggers.hitl import HITLTrigger
from airflow.sdk.exceptions import TaskDeferred

RID = "f" * 20


def _trigger(**kw):
    from aiops.airflow.approval import SupersedableHITLTrigger

    return SupersedableHITLTrigger(request_id=RID, ti_id=uuid.uuid4(), options=["Approve", "Reject"], params={},
                                   defaults=["Reject"], timeout_datetime=None, poke_interval=0.01, **kw)


@pytest.fixture
def hitl_api(monkeypatch):
    """Airflow's task-API calls the trigger makes: no answer yet; record what it writes."""
    import airflow.providers.standard.triggers.hitl as hitl_trigger
    import airflow.sdk.execution_time.hitl as hitl_api

    written = []
    monkeypatch.setattr(hitl_trigger, "get_hitl_detail_content_detail",
                        lambda ti_id: SimpleNamespace(response_received=False, chosen_options=None,
                                                      responded_at=None, params_input={}, responded_by_user=None))

    def update(*, ti_id, chosen_options, params_input):
        written.append(chosen_options)
        return SimpleNamespace(responded_at=datetime(2026, 12, 2, tzinfo=UTC))

    monkeypatch.setattr(hitl_api, "update_hitl_detail_response", update)
    return written


def test_superseded_while_waiting_closes_the_prompt(isolated_stores, hitl_api):
    from aiops.core.state import StateStore

    store = StateStore()
    store.upsert_request(RID, run_id="old", runbook="reboot-ec2-instance", status="awaiting_approval")

    async def scenario():
        gen = _trigger().run()
        first = asyncio.ensure_future(gen.__anext__())
        await asyncio.sleep(0.1)
        assert not first.done()  # a standing request keeps waiting for its answer
        assert hitl_api == []
        store.upsert_request(RID, status="superseded", outcome={"superseded_by": "b" * 20})
        return await asyncio.wait_for(first, 5)

    event = asyncio.run(scenario())
    assert event.payload["superseded_by"] == "b" * 20
    assert event.payload["chosen_options"] == ["Reject"]
    assert hitl_api == [["Reject"]]  # answered through Airflow: the prompt is no longer pending


def test_the_trigger_serialises_with_its_request_and_is_importable(hitl_api):
    import importlib

    path, kwargs = _trigger().serialize()
    module, _, name = path.rpartition(".")
    cls = getattr(importlib.import_module(module), name)
    assert kwargs["request_id"] == RID
    assert isinstance(cls(**kwargs), HITLTrigger)


def test_the_approval_operator_waits_with_the_supersedable_trigger(isolated_stores):
    from aiops.airflow.approval import RunbookApprovalOperator, SupersedableHITLTrigger
    from aiops.remediation.pipeline import request_id

    op = RunbookApprovalOperator(task_id="approve_1", round_no=1)
    op._context_ti = SimpleNamespace(dag_id="remediate", run_id="manual__1")
    plain = HITLTrigger(ti_id=uuid.uuid4(), options=["Approve", "Reject"], params={}, defaults=["Reject"],
                        timeout_datetime=None)
    with pytest.raises(TaskDeferred) as deferred:
        op.defer(trigger=plain, method_name="execute_complete")
    trigger = deferred.value.trigger
    assert isinstance(trigger, SupersedableHITLTrigger)
    assert trigger.request_id == request_id("remediate", "manual__1")
