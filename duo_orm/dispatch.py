"""One operation, two ways to run it.

Every ORM call is written once as a plain function of a sync ``Session``. This
module runs it: directly in sync code, through ``AsyncSession.run_sync`` when
an event loop runs in this thread (the caller then gets an awaitable), and on
the owning loop when a worker thread calls into an async transaction.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, cast

import anyio
from sqlalchemy.orm import Session
from sqlalchemy.util import await_only

from ._callbacks import PENDING, run_after_async_commit, run_after_sync_commit
from ._isolation import AsyncIsolation
from ._pending import CallRegistry, pending
from ._worker_threads import run_in_worker
from .engines import Access
from .errors import translated_errors
from .exceptions import UnsupportedOperationError
from .frame import DeferredFrame, Frame

if TYPE_CHECKING:
    from .database import Database

T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)
Operation = Callable[[Session], T]


class Direct(Protocol[T_co]):
    """A statement-mode call's way past the ORM session (``lone_reads``, ``lone_writes``):
    its result, or ``NotImplemented`` when the session must run the operation after all."""

    def run(self, db: Database) -> T_co: ...

    async def run_async(self, db: Database) -> T_co: ...


class DirectWrite(Direct[T_co], Protocol[T_co]):
    """A write's way past the session, also inside a request transaction that no
    session has begun yet (``duo_orm.lone_transaction``)."""

    async def run_in_request(self, db: Database, deferred: DeferredFrame) -> T_co: ...


# The session an operation is running on right now. A model hook (validate())
# that makes an ORM call of its own runs it on this same session.
_running_on: ContextVar[tuple[Database, Session] | None] = ContextVar(
    "duo_orm_running_on", default=None
)


_STATEMENT = "duo_orm.statement"  # Session.info key: this session lives for one call

# Set while a lone write (duo_orm.lone_writes) runs the model's hooks with no session.
_hooks_alone: ContextVar[bool] = ContextVar("duo_orm_hooks_alone", default=False)


class HooksNeedSession(Exception):
    """A hook run by a lone write touched the database: the write takes the ORM path,
    where the hook's reads and its write share one transaction."""


@contextmanager
def hooks_alone() -> Iterator[None]:
    """Run hooks with no session: any ORM call they make raises ``HooksNeedSession``."""
    token = _hooks_alone.set(True)
    try:
        yield
    finally:
        _hooks_alone.reset(token)


def refuse_in_lone_hooks() -> None:
    if _hooks_alone.get():
        raise HooksNeedSession


def is_statement_session(session: Session) -> bool:
    return bool(session.info.get(_STATEMENT))


def statement_session(db: Database) -> Session | None:
    """The one-call session of ``db`` that a model hook is running in right now, if any."""
    refuse_in_lone_hooks()
    current = _running_on.get()
    if current is not None and current[0] is db and is_statement_session(current[1]):
        return current[1]
    return None


def in_operation() -> bool:
    """Whether an operation runs right now in this context (a hook's own ORM call)."""
    return _running_on.get() is not None


def event_loop_running() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def run(
    db: Database, op: Operation[T], access: Access = "write", direct: Direct[T] | None = None
) -> Any:
    """Run ``op``: returns its value in sync code, an awaitable of it in async code.

    ``access="single_read"`` says ``op`` sends one read statement and nothing else:
    in statement mode it then runs without BEGIN/COMMIT (see engines.Access). In
    statement mode ``direct``, when given, runs instead of ``op`` if it can.
    """
    refuse_in_lone_hooks()
    current = _running_on.get()
    if current is not None:
        if current[0] is db:
            return op(current[1])
        if event_loop_running():  # a hook touching another database, inside run_sync
            return await_only(run_async(db, op, access))
    if event_loop_running():
        return pending(run_async(db, op, access, direct), _unit_calls(db))
    return run_sync(db, op, access, direct)


def _unit_calls(db: Database) -> CallRegistry | None:
    """Where a request's unit of work keeps the calls it is still waiting for."""
    ambient = db._ambient_frame()
    if isinstance(ambient, DeferredFrame) and not ambient.closed:
        return ambient.calls()
    return None


def _bound(db: Database, op: Operation[T]) -> Operation[T]:
    def call(session: Session) -> T:
        token = _running_on.set((db, session))
        try:
            return op(session)
        finally:
            _running_on.reset(token)

    return call


def run_sync(
    db: Database, op: Operation[T], access: Access = "write", direct: Direct[T] | None = None
) -> T:
    frame = db._current_frame(access)
    isolation = db._isolation
    if frame is None and isinstance(isolation, AsyncIsolation):
        # A worker thread of an async test: its connection lives on the test's loop.
        return isolation.call_in_loop(lambda: run_async(db, op, access))
    if frame is None:
        result, callbacks = _statement_call(db, op, access, direct)
        if callbacks:
            run_after_sync_commit(callbacks)
        return result
    if frame.is_async:
        # A worker thread inside an async transaction: run on the transaction's loop.
        return frame.call_in_loop(lambda: _run_in_async_frame(db, frame, op))
    assert isinstance(frame.session, Session)
    with frame.exclusive(), translated_errors():
        return _bound(db, op)(frame.session)


def _statement_call(
    db: Database, op: Operation[T], access: Access, direct: Direct[T] | None = None
) -> tuple[T, list[Any]]:
    """``op`` in a session of its own, committed; with the callbacks its hooks registered."""
    if direct is not None:
        with translated_errors():
            result = direct.run(db)
        if result is not NotImplemented:
            return result, []
    session = db._new_sync_session(access)
    session.info[_STATEMENT] = True
    with translated_errors():
        try:
            if access == "single_read":  # nothing to commit: closing ends it
                return _bound(db, op)(session), []
            with session.begin():
                result = _bound(db, op)(session)
        finally:
            session.close()
    return result, session.info.get(PENDING) or []  # db.on_commit() from a hook of this call


def _one_thread_hop(db: Database) -> bool:
    """Whether an async statement-mode call runs as a sync call in a worker thread.

    On SQLite the driver is in-process and aiosqlite hops to its thread for every
    statement, BEGIN and COMMIT; running the whole call on the sync engine in one
    worker thread does the same work with a single hop. Not while a test isolates
    the database: its one connection must not be used from two threads at once.
    """
    return db._engines.is_sqlite and db._isolation is None and db.derive_async


async def run_async(
    db: Database, op: Operation[T], access: Access = "write", direct: Direct[T] | None = None
) -> T:
    if access == "write" and direct is not None:  # a write's direct form is a DirectWrite
        ambient = db._ambient_frame()
        if isinstance(ambient, DeferredFrame) and ambient.frame is None:
            with translated_errors():
                result = await cast("DirectWrite[T]", direct).run_in_request(db, ambient)
            if result is not NotImplemented:
                return result
    frame = db._current_frame(access)
    if frame is None and _one_thread_hop(db):
        result, _ = await run_in_worker(_statement_call, db, op, access, direct, then=_after_commit)
        return result
    if frame is None and direct is not None:
        with translated_errors():
            result = await direct.run_async(db)
        if result is not NotImplemented:
            return result
    if frame is None:
        session = db._new_async_session(access)
        session.sync_session.info[_STATEMENT] = True
        with translated_errors():
            try:
                if access == "single_read":  # nothing to commit: closing ends it
                    return await session.run_sync(_bound(db, op))
                async with session.begin():
                    result = await session.run_sync(_bound(db, op))
            finally:
                with anyio.CancelScope(shield=True):
                    await session.close()
        pending = session.sync_session.info.get(PENDING)  # db.on_commit() from a hook
        if pending:
            await run_after_async_commit(pending)
        return result
    if not frame.is_async:
        raise UnsupportedOperationError(
            "A sync db.transaction() is active here, and async calls cannot join it. "
            "Use `async with db.transaction():` in async code."
        )
    return await _run_in_async_frame(db, frame, op)


async def _after_commit(outcome: tuple[Any, list[Any]]) -> None:
    """The callbacks a statement-mode call's hooks registered, once it has committed."""
    callbacks = outcome[1]
    if callbacks:
        await run_after_async_commit(callbacks)


async def _run_in_async_frame(db: Database, frame: Frame, op: Operation[T]) -> T:
    from sqlalchemy.ext.asyncio import AsyncSession

    assert isinstance(frame.session, AsyncSession)
    with frame.exclusive(), translated_errors():
        return await frame.session.run_sync(_bound(db, op))
