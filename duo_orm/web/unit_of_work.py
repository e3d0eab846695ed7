"""One HTTP request's unit of work, shared by every adapter.

The middleware gives each request a ``RequestState`` in its ASGI scope and, per
database, a deferred transaction (:meth:`RequestState.deferred_for`) that begins at
the first ORM write (or explicit ``db.transaction()``), from whichever task or worker
thread makes it; reads before that run as lone statements. :func:`open_unit` hands a
handler the session for raw statements (opening one explicitly on an excluded
route). Just before the response starts the middleware calls
:meth:`RequestState.finish` with its status: below 400 commits, anything else rolls
back, and a failed commit comes back as an :class:`ErrorInfo` to send instead of
the original response.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import weakref
from collections.abc import Callable, MutableMapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import anyio
import anyio.to_thread
from sqlalchemy.ext.asyncio import AsyncSession

from .. import dispatch
from ..engines import Access
from ..exceptions import ConfigurationError
from ..frame import DeferredFrame, Frame, RequestFrames
from ..lone_transaction import LoneTransaction
from ..transaction import TransactionBlock
from .errors import ErrorInfo, classify, internal_error, log_server_error

if TYPE_CHECKING:
    from ..database import Database

SCOPE_KEY = "duo_orm"

# Requests expected to only read: a transaction that something other than a write
# begins (an explicit db.transaction(), the raw session) takes no write lock at BEGIN
# (SQLite's deferred BEGIN), so they run beside each other and beside a writer.
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

logger = logging.getLogger("duo_orm.web")

# An adapter's answer to "did the matched route opt out of the request transaction?"
RouteCheck = Callable[[MutableMapping[str, Any]], bool]


class _Rollback(Exception):
    """Passed to a transaction block's exit to make it roll back."""


@dataclass
class Unit:
    """One database's transaction in a request: a session's (``block``), or a lone
    transaction's (``lone``) until a call needs the session, then both."""

    db: Database
    block: TransactionBlock | None
    session: AsyncSession | None
    lone: LoneTransaction | None = None

    async def commit(self) -> None:
        try:
            if self.block is not None:
                await self.block.__aexit__(None, None, None)
            elif self.lone is not None:
                await self.lone.commit()
        finally:
            if self.lone is not None:
                await self.lone.close()

    async def rollback(self) -> None:
        with anyio.CancelScope(shield=True):
            try:
                if self.block is not None:
                    await self.block.__aexit__(_Rollback, _Rollback(), None)
                elif self.lone is not None:
                    await self.lone.rollback()
            finally:
                if self.lone is not None:
                    await self.lone.close()


class RequestState(RequestFrames):
    """What one request opened, and whether it has been settled.

    It stands in each database's context for the request's transaction on that
    database (a ``DeferredFrame``), made the first time an ORM call asks for it, so
    a request that never touches a database costs this one object.
    """

    __slots__ = (
        "access",
        "client_gone",
        "databases",
        "deferred",
        "finished",
        "gates",
        "loop",
        "read_only",
        "route_opted_out",
        "scope",
        "units",
        "windowed",
    )

    def __init__(
        self,
        databases: Sequence[Database],
        *,
        read_only: bool = False,
        access: Access = "write",
        scope: MutableMapping[str, Any] | None = None,
        route_opted_out: RouteCheck | None = None,
    ) -> None:
        self.databases = databases
        self.read_only = read_only
        self.access = access  # how the request's transactions begin (engines.Access)
        # the ASGI scope, for the adapter's per-route opt-out check; dropped at close()
        self.scope = scope
        self.route_opted_out = route_opted_out
        self.units: list[Unit] = []
        self.deferred: dict[Database, DeferredFrame] = {}
        self.gates: list[anyio.Semaphore] = []
        self.finished = False
        self.client_gone = False
        self.windowed = False  # has a request transaction (its path is not excluded)
        self.loop: asyncio.AbstractEventLoop | None = None

    def open_window(self) -> None:
        """Give the request a transaction per database, begun by the first ORM call
        that needs it, from whichever task or worker thread makes it."""
        self.windowed = True
        self.loop = asyncio.get_running_loop()
        for db in self.databases:
            db._ambient.set(self)

    def deferred_for(self, db: Database) -> DeferredFrame | None:
        deferred = self.deferred.get(db)
        if deferred is None and self.windowed and db in self.databases:
            with _making:  # the handler's task and its worker threads may ask at once
                deferred = self.deferred.get(db)
                if deferred is None:
                    deferred = DeferredFrame(self, db, reads_only=self.access == "read")
                    if self.finished:
                        deferred.close()  # asked after response start: statement mode
                    self.deferred[db] = deferred
        return deferred

    # -- FrameOpener: what a deferred transaction calls when it begins --------

    def open_frame(self, db: Database, write: bool) -> Frame | None:
        """The session's frame of ``db``'s transaction; ``None`` on a route that opted out."""
        unit = self._lone_unit(db)
        if unit is None and self.opted_out():
            return None  # statement mode for this route
        # on the connection and transaction lone writes began, if they did
        session = None if unit is None or unit.lone is None else unit.lone.session()
        if session is None:
            # Begun by a write: take SQLite's write lock at BEGIN, whatever the method.
            access: Access = "write" if write and not self.read_only else self.access
            session = self._new_session(db, access)
        frame = Frame(session, loop=self.loop)
        block = TransactionBlock.around(db, frame)
        if unit is not None:
            unit.block, unit.session = block, session
        else:
            self.units.append(Unit(db, block, session))
        return frame

    def begin_lone(self, db: Database) -> LoneTransaction | None:
        """The transaction a lone write begins: a ``Unit`` with no session yet."""
        if self.opted_out() or self.finished:
            return None
        lone = LoneTransaction(db)
        self.units.append(Unit(db, None, None, lone))
        return lone

    def _lone_unit(self, db: Database) -> Unit | None:
        for unit in self.units:
            if unit.db is db and unit.lone is not None:
                return unit
        return None

    def _new_session(self, db: Database, access: Access) -> AsyncSession:
        if dispatch.event_loop_running():
            return db._new_async_session(access)
        # first used from a worker thread (a sync handler): the loop's engine
        assert self.loop is not None

        async def on_loop() -> AsyncSession:
            return db._new_async_session(access)

        return asyncio.run_coroutine_threadsafe(on_loop(), self.loop).result()

    def database(self, db: Database | None) -> Database:
        if db is not None:
            return db
        if len(self.databases) != 1:
            raise ConfigurationError(
                "This app serves several databases; name the one this unit of work is for."
            )
        return self.databases[0]

    def needs_settling(self) -> bool:
        """Whether response start has work to do: a unit to settle or a call never awaited."""
        if self.units:
            return True
        if not self.deferred:
            return False
        return any(deferred.has_waiting_calls() for deferred in tuple(self.deferred.values()))

    def opted_out(self) -> bool:
        """Whether the matched route asked to run without the request transaction."""
        check, scope = self.route_opted_out, self.scope
        return check is not None and scope is not None and check(scope)

    async def hold_thread_gates(self) -> None:
        """Take a place at every database's gate before a handler takes a worker thread."""
        if self.gates or self.finished:
            return
        for db in self.databases:
            gate = transaction_gate(db)
            await gate.acquire()
            self.gates.append(gate)

    def close(self) -> None:
        """End the request's transaction window: calls from now on run in statement mode."""
        self._end_window()
        if self.gates:
            self._release_gates()

    def _end_window(self) -> None:
        with _making:  # no transaction made from now on is left open (deferred_for)
            self.finished = True
            made = tuple(self.deferred.values()) if self.deferred else ()
        self.scope = None
        for deferred in made:
            deferred.close()

    def _release_gates(self) -> None:
        gates, self.gates = self.gates, []
        for gate in gates:
            gate.release()

    async def finish(self, status: int | None) -> ErrorInfo | None:
        """Commit every open unit for a status below 400, else roll back. Runs once.

        A call that was never awaited fails the request: the handler believed it
        wrote something that never happened, so nothing it did may commit.
        """
        if self.finished:
            return None
        forgotten = [site for d in tuple(self.deferred.values()) for site in d.forgotten_calls()]
        self._end_window()
        try:
            return await self._settle(status, forgotten)
        finally:
            self._release_gates()  # only once every connection is back in the pool

    async def _settle(self, status: int | None, forgotten: list[str]) -> ErrorInfo | None:
        failure: ErrorInfo | None = None
        if forgotten:
            logger.error(
                "ORM call never awaited: %s. Nothing this request did was committed.",
                "; ".join(forgotten),
            )
            failure = internal_error()
        commit = (
            status is not None
            and status < 400
            and failure is None
            and not (self.client_gone or self.read_only)
        )
        waiting = list(self.units)
        try:
            while waiting:
                unit = waiting.pop(0)
                if commit and failure is None:
                    try:
                        await unit.commit()
                    except Exception as exc:  # the commit failed: the response must say so
                        failure = _commit_failure(exc)
                    continue
                await unit.rollback()
        finally:
            # A cancelled COMMIT or a failing rollback must not leave the other
            # databases' sessions holding their connections.
            for unit in waiting:
                with contextlib.suppress(Exception):
                    await unit.rollback()
        return failure


def _commit_failure(exc: Exception) -> ErrorInfo:
    """The response a failed COMMIT gets, logged once: the client is told, so is the operator."""
    info = classify(exc) or internal_error()
    if info.status >= 500:
        log_server_error("The request transaction failed to commit", exc)
    else:
        logger.warning(
            "The request transaction was refused at COMMIT (%s %s)",
            info.status,
            type(exc).__name__,
        )
    return info


def request_state(scope: MutableMapping[str, Any]) -> RequestState:
    state = scope.get(SCOPE_KEY)
    if not isinstance(state, RequestState):
        raise ConfigurationError(
            "No duo-orm middleware saw this request, so nothing would commit its "
            "transaction at the right moment. Install the adapter on the app "
            "(FastAPI/Starlette: DuoORM(app, db); Litestar: DuoORMPlugin(db))."
        )
    return state


async def open_unit(scope: MutableMapping[str, Any], db: Database | None = None) -> AsyncSession:
    """The session of the request's transaction on ``db``: the deferred one, opened now,
    or (on an excluded or opted-out route) a new one; reused after that."""
    state = request_state(scope)
    database = state.database(db)
    deferred = state.deferred_for(database)
    if deferred is not None:
        deferred.resolve()
    for unit in state.units:
        if unit.db is database and unit.session is not None:
            return unit.session
    if state.finished:
        raise ConfigurationError("The response has started; the request transaction is over.")
    block = database.transaction()
    session = await block.__aenter__()
    state.units.append(Unit(database, block, session))
    return session


# Held only while a request's deferred transaction is made or its window ends: a few
# attribute reads and writes, never a wait, so one lock serves every request.
_making = threading.Lock()

_gates: weakref.WeakKeyDictionary[Database, tuple[asyncio.AbstractEventLoop, anyio.Semaphore]]
_gates = weakref.WeakKeyDictionary()


def transaction_gate(db: Database) -> anyio.Semaphore:
    """A per-database bound on request transactions whose handlers run in worker threads.

    Such a handler holds a thread while it waits for a connection (or SQLite's
    write lock), and a framework may need another thread to finish a request
    that holds one (FastAPI validates a ``def`` endpoint's response in its
    thread pool). With more waiting handlers than threads every request would
    wait for every other. Admitting at most half the threads, and no more than
    the pool can serve, before the handler runs keeps a thread free for each
    request that holds a connection.
    """
    loop = asyncio.get_running_loop()
    known = _gates.get(db)
    if known is not None and known[0] is loop:
        return known[1]
    threads = int(anyio.to_thread.current_default_thread_limiter().total_tokens)
    capacity = max(1, min(threads // 2, db._pool_capacity() or threads))
    gate = anyio.Semaphore(capacity)
    _gates[db] = (loop, gate)
    return gate
