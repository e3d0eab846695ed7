"""An in-process queue for the writers of one SQLite database.

SQLite lets one writer hold the write lock at a time. Another writer's
``BEGIN IMMEDIATE`` gets SQLITE_BUSY, and the busy handler sleeps and tries again
with delays growing to 100 ms, so under concurrent writes a waiter often sleeps
long after the lock came free, and whoever polls at the right moment wins. Writers
of one process instead wait here, in arrival order, before they send
``BEGIN IMMEDIATE``; each is handed its turn the moment the previous writer's
COMMIT or ROLLBACK has returned. Threads wait blocking, tasks wait on their event
loop (never blocking it). A wait is bounded by the busy timeout, as SQLite's is;
writers in other processes still meet SQLite's busy handler.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import weakref
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, Engine, PoolProxiedConnection, event
from sqlalchemy.exc import OperationalError
from sqlalchemy.util import await_only

from ._driver_sql import send_begin
from ._lone_statement import idle_safe


class _Waiter:
    __slots__ = ("event", "future", "granted", "loop")

    def __init__(self, loop: asyncio.AbstractEventLoop | None) -> None:
        self.granted = False
        self.loop = loop
        self.event = threading.Event() if loop is None else None
        self.future: asyncio.Future[None] | None = None if loop is None else loop.create_future()

    def wake(self) -> bool:
        """Tell the waiter its turn has come; False if it can no longer hear it."""
        if self.event is not None:
            self.event.set()
            return True
        loop, future = self.loop, self.future
        assert loop is not None and future is not None
        try:
            if loop is _running_loop():  # no need to wake the loop through its pipe
                loop.call_soon(_resolve, future)
            else:
                loop.call_soon_threadsafe(_resolve, future)
        except RuntimeError:  # its event loop has closed
            return False
        return True


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


class WriterQueue:
    """A first-come, first-served lock that threads and event-loop tasks share."""

    def __init__(self) -> None:
        self._mutex = threading.Lock()
        self._held = False
        self._waiting: deque[_Waiter] = deque()

    def acquire(self, timeout: float) -> bool:
        """Wait (blocking this thread) for the turn; False if ``timeout`` passed first."""
        waiter = self._enqueue(None)
        if waiter is None:
            return True
        assert waiter.event is not None
        waiter.event.wait(timeout)
        return self._settle(waiter)

    async def acquire_async(self, timeout: float) -> bool:
        """Wait on the running event loop for the turn; False if ``timeout`` passed first."""
        waiter = self._enqueue(asyncio.get_running_loop())
        if waiter is None:
            return True
        assert waiter.future is not None
        try:
            async with asyncio.timeout(timeout):
                await waiter.future
        except TimeoutError:
            pass
        except BaseException:  # cancelled: hand a turn that came meanwhile on
            if self._settle(waiter):
                self.release()
            raise
        return self._settle(waiter)

    def release(self) -> None:
        """End the current turn and hand the next one to the longest waiter."""
        with self._mutex:
            while self._waiting:
                waiter = self._waiting.popleft()
                waiter.granted = True
                if waiter.wake():
                    return
            self._held = False

    def _enqueue(self, loop: asyncio.AbstractEventLoop | None) -> _Waiter | None:
        """Take the turn at once (None) if nobody holds or waits for it, else queue up."""
        with self._mutex:
            if not self._held and not self._waiting:
                self._held = True
                return None
            waiter = _Waiter(loop)
            self._waiting.append(waiter)
            return waiter

    def _settle(self, waiter: _Waiter) -> bool:
        """After a wait: whether the turn was handed over (else leave the queue)."""
        with self._mutex:
            if waiter.granted:
                return True
            self._waiting.remove(waiter)
            return False


_queues: weakref.WeakValueDictionary[str, WriterQueue] = weakref.WeakValueDictionary()
_queues_mutex = threading.Lock()


def writer_queue(key: str) -> WriterQueue:
    """The queue of the SQLite database ``key`` names (its resolved file path), shared
    by every engine of this process that writes to it."""
    with _queues_mutex:
        queue = _queues.get(key)
        if queue is None:
            queue = _queues[key] = WriterQueue()
        return queue


_TURN = "duo_orm_writer_turn"  # connection-record info key: this connection holds the turn


class WriterTurns:
    """Makes one engine's ``BEGIN IMMEDIATE`` wait for its turn in ``queue``.

    The turn is taken just before BEGIN and handed on just after the COMMIT or
    ROLLBACK returns (the dialect's own calls, wrapped, so the next writer never
    meets a lock that is still being let go), or when the connection is
    invalidated or checked in still holding it.
    """

    def __init__(self, engine: Engine, queue: WriterQueue, timeout: float, on_loop: bool):
        self.queue, self.timeout, self.on_loop = queue, timeout, on_loop
        dialect = engine.dialect
        for name in ("do_commit", "do_rollback"):  # this engine's own dialect object
            setattr(dialect, name, self._ending(getattr(dialect, name)))
        event.listen(engine.pool, "checkin", self._record_done)
        event.listen(engine.pool, "invalidate", self._record_done)

    def begin(self, connection: Connection, sql: str) -> None:
        """Wait for the turn (on the event loop for an async engine), then send ``sql``."""
        if self.on_loop:
            taken = await_only(self.queue.acquire_async(self.timeout))
        else:
            taken = self.queue.acquire(self.timeout)
        if not taken:
            raise _locked(sql)
        self._hold(connection.connection)
        try:
            send_begin(connection, sql)
        except BaseException:
            self.hand_on(connection.info)
            raise

    async def begin_async(self, pooled: PoolProxiedConnection, sql: str) -> None:
        """``begin`` awaited on the event loop for a pooled aiosqlite connection, no
        greenlet: its BEGIN is held for the first statement, so none is sent here."""
        if not await self.queue.acquire_async(self.timeout):
            raise _locked(sql)
        self._hold(pooled)
        pooled.driver_connection.begin_with_next(sql)  # type: ignore[union-attr]

    def _hold(self, pooled: PoolProxiedConnection) -> None:
        # Handed on at COMMIT/ROLLBACK, or, should the connection be abandoned in its
        # transaction (a task on a loop that has closed), once its checkout is garbage:
        # SQLite lets its own lock go then too.
        turn = weakref.finalize(pooled, self.queue.release)
        turn.atexit = False
        pooled.info[_TURN] = turn

    @contextmanager
    def alone(self, sql: str) -> Iterator[None]:
        """Hold the turn (waiting in this thread) while one autocommitted write runs."""
        if not self.queue.acquire(self.timeout):
            raise _locked(sql)
        try:
            yield
        finally:
            self.queue.release()

    def _ending(self, end: Callable[[Any], None]) -> Callable[[Any], None]:
        def end_then_hand_on(dbapi_connection: Any) -> None:
            try:
                end(dbapi_connection)
            finally:
                try:
                    info = dbapi_connection.info
                except NotImplementedError:  # the engine's first-connect probe: no record
                    info = {}
                self.hand_on(info)

        return end_then_hand_on

    @idle_safe  # hands a turn on, nothing more
    def _record_done(self, _dbapi_connection: Any, record: Any, *_exc: Any) -> None:
        if record is not None:
            self.hand_on(record.info)

    def hand_on(self, info: dict[Any, Any]) -> None:
        """Hand the turn held by the connection whose ``info`` this is on (if any)."""
        turn = info.pop(_TURN, None)
        if turn is not None:
            turn()  # releases once, whoever calls first


def _locked(sql: str) -> OperationalError:
    """What SQLite says when its own busy timeout runs out."""
    locked = sqlite3.OperationalError("database is locked")
    locked.sqlite_errorcode = sqlite3.SQLITE_BUSY
    locked.sqlite_errorname = "SQLITE_BUSY"
    return OperationalError(sql, None, locked)
