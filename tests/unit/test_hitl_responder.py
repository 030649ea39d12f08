"""HitlResponder: answering human-in-the-loop tasks while a DAG runs under ``dag.test()``."""

from __future__ import annotations

import json
import textwrap

import pytest

from aiops_sandbox.hitl import (
    APPROVE,
    REJECT,
    HitlAnswer,
    HitlRequest,
    HitlResponder,
    HitlResponderTimeout,
    HitlResponseRejected,
    approve,
    choose,
    reject,
)

pytestmark = pytest.mark.airflow

# dag.test() only runs DAGs that a DAG bundle serialized into the metadata DB, so the test DAGs live in
# a file written into a private bundle (see the ``hitl_dags`` fixture) rather than in dags/.
DAGS_SOURCE = textwrap.dedent(
    '''
    from __future__ import annotations

    from datetime import datetime, timedelta

    from airflow.providers.standard.operators.hitl import (
        ApprovalOperator,
        HITLBranchOperator,
        HITLEntryOperator,
        HITLOperator,
    )
    from airflow.sdk import DAG, Param, task

    START = datetime(2026, 1, 1)


    @task
    def after(decision):
        """Runs only when the approval lets it; returns what it was handed."""
        return {"seen": decision["chosen_options"], "by": decision["responded_by_user"]}


    with DAG("hitl_approval", schedule=None, start_date=START, catchup=False):
        gate = ApprovalOperator(task_id="approval", subject="Scale up the fleet?", body="CPU at 95 %")
        after(gate.output)

    with DAG("hitl_approval_assigned", schedule=None, start_date=START, catchup=False):
        gate = ApprovalOperator(
            task_id="approval",
            subject="Delete the stack?",
            assigned_users={"id": "alice", "name": "Alice"},
        )
        after(gate.output)

    with DAG("hitl_triage", schedule=None, start_date=START, catchup=False):
        triage = HITLOperator(
            task_id="triage",
            subject="Anomaly on {{ dag.dag_id }}",
            options=["apply", "defer", "dismiss"],
            params={
                "ticket": Param("", type="string", description="Ticket to link"),
                "priority": Param(3, type="integer", minimum=1, maximum=5),
            },
        )

        @task
        def act(decision):
            return {"action": decision["chosen_options"][0], **decision["params_input"]}

        act(triage.output)

    with DAG("hitl_branch", schedule=None, start_date=START, catchup=False):
        route = HITLBranchOperator(
            task_id="route",
            subject="Who handles it?",
            options=["Scale up", "Page on-call"],
            options_mapping={"Scale up": "scale_up", "Page on-call": "page_oncall"},
        )

        @task
        def scale_up():
            return "scaled"

        @task
        def page_oncall():
            return "paged"

        route >> [scale_up(), page_oncall()]

    with DAG("hitl_entry", schedule=None, start_date=START, catchup=False):
        HITLEntryOperator(task_id="note", subject="Post-mortem note", params={"note": Param("", type="string")})

    with DAG("hitl_triage_timeout", schedule=None, start_date=START, catchup=False):
        HITLOperator(
            task_id="triage",
            subject="Anomaly",
            options=["apply", "defer", "dismiss"],
            defaults="defer",
            params={"ticket": Param("none", type="string"), "priority": Param(3, type="integer")},
            response_timeout=timedelta(seconds=1),
        )

    with DAG("hitl_timeout_default", schedule=None, start_date=START, catchup=False):
        gate = ApprovalOperator(
            task_id="approval",
            subject="Auto-remediate?",
            defaults="Reject",
            response_timeout=timedelta(seconds=1),
        )
        after(gate.output)

    with DAG("hitl_timeout_no_default", schedule=None, start_date=START, catchup=False):
        gate = ApprovalOperator(
            task_id="approval", subject="Auto-remediate?", response_timeout=timedelta(seconds=1)
        )
        after(gate.output)
    '''
)


@pytest.fixture
def hitl_dags(airflow_db, tmp_path, monkeypatch):
    """Return ``load(dag_id)``: a DAG from DAGS_SOURCE, served by a private local DAG bundle."""
    from airflow.dag_processing.dagbag import DagBag

    folder = tmp_path / "hitl_dags"
    folder.mkdir()
    path = folder / "hitl_test_dags.py"
    path.write_text(DAGS_SOURCE)
    bundle = {
        "name": "hitl-test-dags",
        "classpath": "airflow.dag_processing.bundles.local.LocalDagBundle",
        "kwargs": {"path": str(folder), "refresh_interval": 0},
    }
    monkeypatch.setenv("AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST", json.dumps([bundle]))
    bag = DagBag(dag_folder=str(path))
    assert not bag.import_errors, bag.import_errors

    def load(dag_id: str):
        return bag.get_dag(dag_id)

    return load


def states(dag_run) -> dict[str, str | None]:
    return {ti.task_id: ti.state for ti in dag_run.get_task_instances()}


def return_value(dag_run, task_id: str):
    return dag_run.get_task_instance(task_id).xcom_pull(task_ids=task_id)


def hitl_detail(dag_run, task_id: str):
    from airflow.models.hitl import HITLDetail
    from airflow.utils.session import create_session
    from sqlalchemy import select

    ti_id = dag_run.get_task_instance(task_id).id
    with create_session() as session:
        detail = session.scalar(select(HITLDetail).where(HITLDetail.ti_id == ti_id))
        session.expunge(detail)
        return detail


def test_approve_runs_downstream_and_records_the_responder(hitl_dags):
    dag = hitl_dags("hitl_approval")
    with HitlResponder({"approval": approve(by="alice")}, dag_id=dag.dag_id) as responder:
        run = dag.test()

    assert states(run) == {"approval": "success", "after": "success"}
    assert run.state == "success"
    result = return_value(run, "approval")
    assert result["chosen_options"] == [APPROVE]
    assert result["params_input"] == {}
    assert result["responded_by_user"] == {"id": "alice", "name": "alice"}
    # The downstream task got the same payload through XCom.
    assert return_value(run, "after") == {"seen": [APPROVE], "by": {"id": "alice", "name": "alice"}}
    # What the Required Actions UI would show afterwards.
    detail = hitl_detail(run, "approval")
    assert detail.responded_by == {"id": "alice", "name": "alice"}
    assert detail.chosen_options == [APPROVE]
    assert detail.responded_at is not None

    [(request, answer)] = responder.answered
    assert (request.dag_id, request.task_id, request.map_index) == ("hitl_approval", "approval", -1)
    assert request.run_id == run.run_id
    assert (request.subject, request.body) == ("Scale up the fleet?", "CPU at 95 %")
    assert request.options == [APPROVE, REJECT]
    assert request.assigned_users == []
    assert answer == approve(by="alice")
    assert responder.unanswered == []
    assert responder.error is None


def test_reject_skips_downstream(hitl_dags):
    dag = hitl_dags("hitl_approval")
    with HitlResponder({"approval": reject(by="bob")}, dag_id=dag.dag_id) as responder:
        run = dag.test()

    # Reject is a successful human response: the approval task succeeds and skips its downstream.
    assert states(run) == {"approval": "success", "after": "skipped"}
    assert run.state == "success"
    # Skipping the downstream raises DownstreamTasksSkipped out of execute_complete, so the
    # response is NOT pushed as the approval's return value; it is only in hitl_detail.
    assert return_value(run, "approval") is None
    detail = hitl_detail(run, "approval")
    assert detail.chosen_options == [REJECT]
    assert detail.responded_by == {"id": "bob", "name": "bob"}
    assert [answer.chosen_options for _, answer in responder.answered] == [[REJECT]]


def test_hitl_operator_returns_the_chosen_option_and_params_input(hitl_dags):
    dag = hitl_dags("hitl_triage")
    requests: list[HitlRequest] = []

    def decide(request: HitlRequest) -> HitlAnswer:
        requests.append(request)
        return choose("defer", by="carol", ticket="OPS-42", priority=1)

    with HitlResponder(decide, dag_id=dag.dag_id) as responder:
        run = dag.test()

    assert states(run) == {"triage": "success", "act": "success"}
    [request] = requests
    assert request.subject == "Anomaly on hitl_triage"  # rendered template field
    assert request.options == ["apply", "defer", "dismiss"]
    assert request.param_values == {"ticket": "", "priority": 3}
    assert request.params["ticket"]["description"] == "Ticket to link"
    assert request.multiple is False
    assert request.defaults is None

    result = return_value(run, "triage")
    assert result["chosen_options"] == ["defer"]
    assert result["params_input"] == {"ticket": "OPS-42", "priority": 1}
    assert result["responded_by_user"] == {"id": "carol", "name": "carol"}
    assert return_value(run, "act") == {"action": "defer", "ticket": "OPS-42", "priority": 1}
    assert len(responder.answered) == 1


def test_branch_operator_follows_the_chosen_option(hitl_dags):
    dag = hitl_dags("hitl_branch")
    with HitlResponder({"route": choose("Page on-call", by="dave")}, dag_id=dag.dag_id):
        run = dag.test()
    assert states(run) == {"route": "success", "scale_up": "skipped", "page_oncall": "success"}


def test_entry_operator_returns_the_form_input(hitl_dags):
    dag = hitl_dags("hitl_entry")
    with HitlResponder({"note": choose("OK", by="erin", note="disk full on node-3")}, dag_id=dag.dag_id):
        run = dag.test()
    assert states(run) == {"note": "success"}
    result = return_value(run, "note")
    assert result["chosen_options"] == ["OK"]
    assert result["params_input"] == {"note": "disk full on node-3"}
    assert result["responded_by_user"] == {"id": "erin", "name": "erin"}


def test_timeout_applies_the_default_option(hitl_dags):
    dag = hitl_dags("hitl_timeout_default")
    with HitlResponder(lambda request: None, dag_id=dag.dag_id, process_timeouts=True) as responder:
        run = dag.test()

    # defaults="Reject" is applied by the (emulated) scheduler sweep: the approval succeeds with
    # "Reject", nobody is recorded as the responder, and the downstream is skipped.
    assert states(run) == {"approval": "success", "after": "skipped"}
    detail = hitl_detail(run, "approval")
    assert detail.chosen_options == [REJECT]
    assert detail.responded_by is None
    assert detail.responded_at is not None
    assert responder.answered == []
    assert [r.task_id for r in responder.unanswered] == ["approval"]
    assert responder.unanswered[0].defaults == [REJECT]
    assert responder.expired == 1


def test_timeout_returns_the_default_option_and_param_values(hitl_dags):
    dag = hitl_dags("hitl_triage_timeout")
    with HitlResponder({"triage": None}, dag_id=dag.dag_id, process_timeouts=True) as responder:
        run = dag.test()

    assert states(run) == {"triage": "success"}
    result = return_value(run, "triage")
    assert result["chosen_options"] == ["defer"]
    assert result["params_input"] == {"ticket": "none", "priority": 3}
    assert result["responded_by_user"] is None
    assert responder.expired == 1


def test_timeout_without_defaults_fails_the_task(hitl_dags):
    dag = hitl_dags("hitl_timeout_no_default")
    with HitlResponder({"approval": None}, dag_id=dag.dag_id, process_timeouts=True) as responder:
        run = dag.test()

    # The operator raises HITLTimeoutError on the timeout event.
    assert states(run) == {"approval": "failed", "after": "upstream_failed"}
    assert run.state == "failed"
    assert responder.expired == 1


def test_dag_test_alone_never_applies_the_timeout(hitl_dags):
    # Without the sweep nothing resolves the expired request; the responder's own timeout fails the
    # parked task so dag.test() returns, and re-raises.
    dag = hitl_dags("hitl_timeout_default")
    responder = HitlResponder({"approval": None}, dag_id=dag.dag_id, timeout=3)
    with pytest.raises(HitlResponderTimeout, match=r"hitl_timeout_default\.approval"), responder:
        run = dag.test()
    assert states(run) == {"approval": "failed", "after": "upstream_failed"}
    assert responder.expired == 0
    assert hitl_detail(run, "approval").responded_at is None


@pytest.mark.parametrize(
    ("dag_id", "answer", "status"),
    [
        ("hitl_approval", choose("Maybe"), 400),
        ("hitl_approval", choose(APPROVE, REJECT), 400),
        ("hitl_approval", HitlAnswer([]), 422),
        ("hitl_approval_assigned", approve(by="mallory"), 403),
    ],
    ids=["unknown-option", "two-options", "no-option", "not-assigned"],
)
def test_answers_the_api_would_refuse_fail_the_run(hitl_dags, dag_id, answer, status):
    dag = hitl_dags(dag_id)
    with (
        pytest.raises(HitlResponseRejected) as refused,
        HitlResponder({"approval": answer}, dag_id=dag.dag_id),
    ):
        run = dag.test()
    assert refused.value.status_code == status
    assert states(run) == {"approval": "failed", "after": "upstream_failed"}
    assert hitl_detail(run, "approval").responded_at is None


def test_assigned_user_may_answer(hitl_dags):
    dag = hitl_dags("hitl_approval_assigned")
    with HitlResponder({"approval": HitlAnswer([APPROVE], responded_by="alice", responded_by_name="Alice")}):
        run = dag.test()
    assert states(run) == {"approval": "success", "after": "success"}
    assert return_value(run, "approval")["responded_by_user"] == {"id": "alice", "name": "Alice"}


def test_missing_answer_is_an_error(hitl_dags):
    dag = hitl_dags("hitl_approval")
    with pytest.raises(KeyError, match="'approval'"), HitlResponder({"other": approve()}, dag_id=dag.dag_id):
        run = dag.test()
    assert states(run)["approval"] == "failed"
