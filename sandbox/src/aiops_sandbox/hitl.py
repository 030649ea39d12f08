"""Answer Airflow human-in-the-loop (HITL) tasks while a DAG runs under ``dag.test()``.

On Airflow 3.3 a HITL operator (``ApprovalOperator``, ``HITLOperator``, ``HITLBranchOperator``,
``HITLEntryOperator``) writes its request to the ``hitl_detail`` table and parks its task instance in
the ``awaiting_input`` state -- no trigger, no triggerer. In production the task is resumed by the
Core API (``PATCH /dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/{map_index}/hitlDetails``)
or by the scheduler's ``awaiting_input`` timeout sweep. ``dag.test()`` does neither: it loops forever
("Waiting for Human-in-the-loop input") until something else flips the task back to ``scheduled``.

:class:`HitlResponder` is that something else: a daemon thread, in the test process, that polls the
metadata DB for parked HITL task instances and answers them exactly like the API route does (same
validation, same ``responded_by`` user dict, same resume event). With ``process_timeouts=True`` it
also runs :func:`expire_timed_out`, a copy of the scheduler's timeout sweep, so ``response_timeout``
and ``defaults`` can be tested too.

Example::

    with HitlResponder({"approval": approve(by="alice")}) as responder:
        dr = dag.test()
    assert dr.get_task_instance("deploy").state == "success"
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow.models.hitl import HITLDetail
    from airflow.models.taskinstance import TaskInstance
    from sqlalchemy.orm import Session

__all__ = [
    "APPROVE",
    "REJECT",
    "HitlAnswer",
    "HitlRequest",
    "HitlResponder",
    "HitlResponderTimeout",
    "HitlResponseRejected",
    "approve",
    "choose",
    "expire_timed_out",
    "reject",
]

log = logging.getLogger(__name__)

#: The two fixed options of ``ApprovalOperator``.
APPROVE = "Approve"
REJECT = "Reject"

DEFAULT_RESPONDER = "test-approver"


@dataclass(frozen=True)
class HitlRequest:
    """A HITL task instance parked in ``awaiting_input``, as the responder sees it."""

    dag_id: str
    run_id: str
    task_id: str
    map_index: int
    subject: str
    body: str | None
    options: list[str]
    #: The param definitions as stored in ``hitl_detail.params``: ``{name: {"value": ..., "schema": ...,
    #: "description": ..., "source": ...}}``. See :attr:`param_values` for just the values.
    params: dict[str, Any]
    #: ``[{"id": ..., "name": ...}]``; empty when anyone may respond.
    assigned_users: list[dict[str, str]]
    defaults: list[str] | None = None
    multiple: bool = False
    ti_id: str = ""

    @property
    def param_values(self) -> dict[str, Any]:
        """The current (default) value of each param, as the form would be pre-filled."""
        return {
            key: value["value"] if isinstance(value, dict) and "value" in value else value
            for key, value in self.params.items()
        }


@dataclass(frozen=True)
class HitlAnswer:
    """A response to a HITL request, as a user would submit it in the Required Actions UI."""

    chosen_options: list[str]
    params_input: dict[str, Any] = field(default_factory=dict)
    #: User id of the responder. With the simple auth manager the id and the name are both the username.
    responded_by: str = DEFAULT_RESPONDER
    #: Display name; defaults to ``responded_by`` (what the simple auth manager reports).
    responded_by_name: str | None = None

    @property
    def user(self) -> dict[str, str]:
        """The ``HITLUser`` dict stored in ``hitl_detail.responded_by`` and passed to the task."""
        return {"id": self.responded_by, "name": self.responded_by_name or self.responded_by}


def approve(by: str = DEFAULT_RESPONDER) -> HitlAnswer:
    """Answer an ``ApprovalOperator`` with "Approve"."""
    return HitlAnswer([APPROVE], responded_by=by)


def reject(by: str = DEFAULT_RESPONDER) -> HitlAnswer:
    """Answer an ``ApprovalOperator`` with "Reject"."""
    return HitlAnswer([REJECT], responded_by=by)


def choose(*options: str, by: str = DEFAULT_RESPONDER, **params: Any) -> HitlAnswer:
    """Choose ``options`` and fill the form with ``params`` (``params_input``)."""
    return HitlAnswer(list(options), dict(params), responded_by=by)


class HitlResponseRejected(ValueError):
    """The answer would have been refused by the HITL API route (same checks, same status code)."""

    def __init__(self, status_code: int, message: str) -> None:
        super().__init__(f"{status_code}: {message}")
        self.status_code = status_code


class HitlResponderTimeout(TimeoutError):
    """A HITL task stayed in ``awaiting_input`` longer than the responder's ``timeout``."""


Answerer = Callable[[HitlRequest], HitlAnswer | None] | Mapping[str, HitlAnswer | None]


class HitlResponder:
    """Answer HITL tasks parked in ``awaiting_input`` from a background thread (a context manager).

    :param answer: either a mapping ``task_id -> HitlAnswer`` (``None`` leaves that task unanswered; a
        task id missing from the mapping is an error), or a callable receiving a :class:`HitlRequest`
        and returning a :class:`HitlAnswer` or ``None`` to leave it unanswered (e.g. to exercise a
        timeout). The callable is asked once per task instance (try).
    :param poll_interval: seconds between DB polls.
    :param timeout: the longest any HITL task may stay parked while the responder runs. When exceeded
        (e.g. nobody answers and no ``response_timeout`` expires) the responder fails every parked HITL
        task so ``dag.test()`` returns, and ``__exit__`` raises :class:`HitlResponderTimeout`.
    :param process_timeouts: also run :func:`expire_timed_out` on every poll, standing in for the
        scheduler's timeout sweep (``dag.test()`` never applies ``response_timeout``/``defaults``).
    :param settle: answer a task only after it has been seen parked for this long. ``dag.test()`` writes
        the task's final state once more after the worker returns; an answer landing before that write
        is overwritten. (A response stranded that way anyway is re-submitted, see ``resubmitted``.)
    :param dag_id: only handle task instances of this DAG (default: all).
    :param check_assignees: refuse (like the API's 403) an answer by someone not in ``assigned_users``.

    Any error in the thread (a refused answer, a timeout, a DB error) makes the responder fail every
    parked HITL task, so that ``dag.test()`` returns, and is re-raised by ``__exit__``.
    """

    def __init__(
        self,
        answer: Answerer,
        *,
        poll_interval: float = 0.2,
        timeout: float = 120.0,
        process_timeouts: bool = False,
        settle: float = 0.5,
        dag_id: str | None = None,
        check_assignees: bool = True,
    ) -> None:
        if not callable(answer) and not isinstance(answer, Mapping):
            raise TypeError("answer must be a callable or a mapping of task_id to HitlAnswer")
        self._answer = answer
        self.poll_interval = poll_interval
        self.timeout = timeout
        self.process_timeouts = process_timeouts
        self.settle = settle
        self.dag_id = dag_id
        self.check_assignees = check_assignees

        #: What was answered, in order.
        self.answered: list[tuple[HitlRequest, HitlAnswer]] = []
        #: Requests the answerer chose to leave unanswered.
        self.unanswered: list[HitlRequest] = []
        #: Number of task instances resolved by :func:`expire_timed_out` (``process_timeouts=True``).
        self.expired: int = 0
        #: Responses found recorded but not resumed (stranded) and submitted again.
        self.resubmitted: int = 0

        self._decisions: dict[str, HitlAnswer | None] = {}
        self._first_seen: dict[str, float] = {}
        self._resubmitted_at: dict[str, float] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None

    # -- context manager -------------------------------------------------------------------------

    def __enter__(self) -> HitlResponder:
        if self._thread is not None:
            raise RuntimeError("a HitlResponder can only be used once")
        _preload()
        self._thread = threading.Thread(target=self._run, name="hitl-responder", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=max(10.0, 5 * self.poll_interval))
        if self._error is not None:
            raise self._error from exc

    @property
    def error(self) -> BaseException | None:
        """The exception the thread hit, if any (also re-raised by ``__exit__``)."""
        return self._error

    # -- thread ----------------------------------------------------------------------------------

    def _run(self) -> None:
        from sqlalchemy.exc import OperationalError

        busy_since: float | None = None
        while True:
            try:
                if self._error is None:
                    self._poll()
                else:
                    self._fail_parked()
                busy_since = None
            except OperationalError as exc:  # e.g. SQLite "database is locked": try again next poll
                log.debug("HITL responder: DB busy (%s); retrying", exc)
                busy_since = busy_since or time.monotonic()
                if self._error is None and time.monotonic() - busy_since > self.timeout:
                    self._error = exc
                    continue
            except BaseException as exc:
                if self._error is None:
                    log.exception("HITL responder failed; failing the parked HITL tasks")
                    self._error = exc
                    continue  # fail the parked tasks right away
                log.exception("HITL responder: could not fail the parked HITL tasks")
            if self._stop.wait(self.poll_interval):
                return

    def _poll(self) -> None:
        from airflow.models.taskinstance import TaskInstance as TI
        from airflow.utils.session import create_session
        from airflow.utils.state import TaskInstanceState
        from sqlalchemy import select
        from sqlalchemy.orm import joinedload

        with create_session(scoped=False) as session:
            if self.process_timeouts:
                self.expired += expire_timed_out(session=session)
                session.commit()

            query = select(TI).where(TI.state == TaskInstanceState.AWAITING_INPUT)
            if self.dag_id is not None:
                query = query.where(TI.dag_id == self.dag_id)
            tis = session.scalars(query.options(joinedload(TI.hitl_detail))).unique().all()

            now = time.monotonic()
            for ti in tis:
                key = str(ti.id)
                parked_for = now - self._first_seen.setdefault(key, now)
                if parked_for > self.timeout:
                    raise HitlResponderTimeout(
                        f"HITL task {ti.dag_id}.{ti.task_id} (run {ti.run_id}, map_index {ti.map_index}) "
                        f"still awaiting input after {self.timeout:.0f} s"
                    )
                detail = ti.hitl_detail
                if detail is None or parked_for < self.settle:
                    continue  # no request written (cannot answer), or not settled yet
                if detail.response_received:
                    self._resubmit_stranded(session, ti, detail, now)
                    continue
                request = _request_from(ti, detail)
                if key not in self._decisions:
                    self._decisions[key] = self._decide(request)
                    if self._decisions[key] is None:
                        self.unanswered.append(request)
                answer = self._decisions[key]
                if answer is not None:
                    self._respond(session, ti, request, answer)
                    session.commit()

    def _decide(self, request: HitlRequest) -> HitlAnswer | None:
        if isinstance(self._answer, Mapping):
            if request.task_id not in self._answer:
                raise KeyError(
                    f"HITL task {request.task_id!r} is awaiting input but has no entry in the answers "
                    f"{sorted(self._answer)}; map it to None to leave it unanswered"
                )
            return self._answer[request.task_id]
        return self._answer(request)

    def _respond(self, session: Session, ti: TaskInstance, request: HitlRequest, answer: HitlAnswer) -> None:
        """Record ``answer`` and resume the task: what the Core API route ``update_hitl_detail`` does."""
        from airflow._shared.timezones import timezone
        from airflow.models.hitl import HITLDetail
        from airflow.models.taskinstance import TaskInstance as TI
        from airflow.models.trigger import handle_event_submit
        from airflow.triggers.base import TriggerEvent
        from airflow.utils.state import TaskInstanceState
        from sqlalchemy import select

        # Same lock order as the API route and the worker's park transition: TI, then hitl_detail.
        locked_ti = session.get(TI, ti.id, with_for_update={"of": TI})
        session.execute(select(HITLDetail).where(HITLDetail.ti_id == ti.id).with_for_update(of=HITLDetail))
        detail = ti.hitl_detail
        if locked_ti is None or detail is None or detail.response_received:
            return  # the API would answer 404/409: someone (or something) got there first

        _validate(detail, answer, check_assignees=self.check_assignees)

        detail.responded_by = answer.user
        detail.responded_at = timezone.utcnow()
        detail.chosen_options = list(answer.chosen_options)
        detail.params_input = dict(answer.params_input)
        session.add(detail)
        if locked_ti.state in (TaskInstanceState.AWAITING_INPUT, TaskInstanceState.DEFERRED):
            handle_event_submit(
                TriggerEvent(detail.as_resume_event_payload()), task_instance=locked_ti, session=session
            )
        with self._lock:
            self.answered.append((request, answer))
        log.info(
            "HITL responder: %s.%s answered %s by %s",
            request.dag_id,
            request.task_id,
            answer.chosen_options,
            answer.responded_by,
        )

    def _resubmit_stranded(self, session: Session, ti: TaskInstance, detail: HITLDetail, now: float) -> None:
        """Resume a task whose response is recorded but which is still parked.

        Under ``dag.test()`` this happens when a response lands between the worker parking the task and
        ``dag.test()`` writing the worker's final state (``awaiting_input``) back over the resume. The
        scheduler's timeout sweep handles the same situation ("a response landed just before the
        deadline") the same way: resume with the recorded response.
        """
        from airflow._shared.timezones import timezone
        from airflow.models.trigger import handle_event_submit
        from airflow.triggers.base import TriggerEvent

        key = str(ti.id)
        responded_at = detail.responded_at
        if responded_at is None or (timezone.utcnow() - responded_at).total_seconds() < self.settle:
            return
        if now - self._resubmitted_at.get(key, float("-inf")) < max(self.settle, self.poll_interval):
            return
        log.warning(
            "HITL responder: %s.%s has a response but is still parked; resuming it", ti.dag_id, ti.task_id
        )
        handle_event_submit(TriggerEvent(detail.as_resume_event_payload()), task_instance=ti, session=session)
        session.commit()
        self._resubmitted_at[key] = now
        self.resubmitted += 1

    def _fail_parked(self) -> None:
        """Fail every parked HITL task so ``dag.test()`` returns after the responder hit an error."""
        from airflow._shared.timezones import timezone
        from airflow.models.taskinstance import TaskInstance as TI
        from airflow.utils.session import create_session
        from airflow.utils.state import TaskInstanceState
        from sqlalchemy import select

        with create_session(scoped=False) as session:
            query = select(TI).where(TI.state == TaskInstanceState.AWAITING_INPUT)
            if self.dag_id is not None:
                query = query.where(TI.dag_id == self.dag_id)
            for ti in session.scalars(query):
                log.error("HITL responder: failing %s.%s after an error", ti.dag_id, ti.task_id)
                ti.state = TaskInstanceState.FAILED
                ti.end_date = timezone.utcnow()
                if ti.start_date is not None:
                    ti.duration = (ti.end_date - ti.start_date).total_seconds()


def _preload() -> None:
    """Import, in the calling thread, everything the responder thread uses, and configure the ORM.

    Otherwise the first poll imports Airflow models (SQLAlchemy's mapper configuration imports all of
    them while holding its lock) at the same time as ``dag.test()`` imports them in the main thread:
    an import-lock/mapper-lock deadlock that hangs the test.
    """
    import airflow._shared.timezones.timezone
    import airflow.models.hitl
    import airflow.models.taskinstance
    import airflow.models.trigger
    import airflow.triggers.base
    import airflow.utils.session
    import airflow.utils.sqlalchemy
    import airflow.utils.state  # noqa: F401
    from sqlalchemy.orm import configure_mappers

    configure_mappers()


def _request_from(ti: TaskInstance, detail: HITLDetail) -> HitlRequest:
    return HitlRequest(
        dag_id=ti.dag_id,
        run_id=ti.run_id,
        task_id=ti.task_id,
        map_index=ti.map_index,
        subject=detail.subject,
        body=detail.body,
        options=list(detail.options or []),
        params=dict(detail.params or {}),
        assigned_users=[{"id": user["id"], "name": user["name"]} for user in detail.assigned_users],
        defaults=list(detail.defaults) if detail.defaults is not None else None,
        multiple=bool(detail.multiple),
        ti_id=str(ti.id),
    )


def _validate(detail: HITLDetail, answer: HitlAnswer, *, check_assignees: bool) -> None:
    """The checks of the Core API route (payload schema, assignees, options, cardinality)."""
    if not answer.chosen_options:
        raise HitlResponseRejected(422, "chosen_options must contain at least one option")
    if check_assignees and detail.assigned_users:
        assigned_ids = {user["id"] for user in detail.assigned_users}
        if answer.responded_by not in assigned_ids:
            raise HitlResponseRejected(
                403,
                f"User={answer.user['name']} (id={answer.responded_by}) is not a respondent for the task.",
            )
    allowed = set(detail.options or [])
    if invalid := set(answer.chosen_options) - allowed:
        raise HitlResponseRejected(
            400, f"Invalid options {sorted(invalid)}; allowed options are {sorted(allowed)}."
        )
    if not detail.multiple and len(answer.chosen_options) > 1:
        raise HitlResponseRejected(
            400, "Multiple options chosen but this Human-in-the-loop task accepts only a single option."
        )


def expire_timed_out(session: Session | None = None) -> int:
    """Resolve HITL tasks whose ``response_timeout`` has passed; return how many were resolved.

    A copy of ``SchedulerJobRunner.check_awaiting_input_timeouts`` (Airflow 3.3), which the scheduler
    runs periodically and ``dag.test()`` never does. For each task instance in ``awaiting_input`` whose
    deadline (``trigger_timeout``) has passed:

    * a response already recorded -> resume with it;
    * else the request has ``defaults`` -> record them as the response (``responded_by`` = ``None``, params
      at their default values) and resume with ``timedout=True`` -- the task succeeds;
    * else resume with a timeout error event -- the operator raises ``HITLTimeoutError`` and the task fails.
    """
    if session is None:
        from airflow.utils.session import create_session

        with create_session(scoped=False) as new_session:
            return expire_timed_out(session=new_session)

    from airflow._shared.timezones import timezone
    from airflow.models.taskinstance import TaskInstance as TI
    from airflow.models.trigger import handle_event_submit
    from airflow.triggers.base import TriggerEvent
    from airflow.utils.sqlalchemy import with_row_locks
    from airflow.utils.state import TaskInstanceState
    from sqlalchemy import select
    from sqlalchemy.orm import joinedload

    now = timezone.utcnow()
    query = (
        select(TI)
        .where(TI.state == TaskInstanceState.AWAITING_INPUT, TI.trigger_timeout < now)
        .options(joinedload(TI.hitl_detail))
        .limit(100)
    )
    query = with_row_locks(query, of=TI, session=session, skip_locked=True)
    timed_out = session.scalars(query).unique().all()
    for ti in timed_out:
        detail = ti.hitl_detail
        if detail is not None and detail.responded_at is not None:
            event = TriggerEvent(detail.as_resume_event_payload(timedout=False))
        elif detail is not None and detail.defaults is not None:
            detail.chosen_options = list(detail.defaults)
            detail.params_input = {
                key: value["value"] if isinstance(value, dict) and "value" in value else value
                for key, value in (detail.params or {}).items()
            }
            detail.responded_by = None
            detail.responded_at = now
            session.add(detail)
            event = TriggerEvent(detail.as_resume_event_payload(timedout=True))
        else:
            event = TriggerEvent(
                {
                    "error": "The Human-in-the-loop response timeout has passed without a response.",
                    "error_type": "timeout",
                }
            )
        handle_event_submit(event, task_instance=ti, session=session)
        log.info("HITL timeout sweep: resolved %s.%s (run %s)", ti.dag_id, ti.task_id, ti.run_id)
    session.flush()
    return len(timed_out)
