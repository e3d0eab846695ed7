"""The ambient transaction: one session shared by every ORM call in a block.

A frame lives in a context variable owned by its ``Database``, so concurrent
tasks and threads each see only their own. Worker threads started with a copy
of the context (``anyio.to_thread``, FastAPI ``def`` endpoints) see the frame
of the task that started them and run their calls on its event loop.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import TYPE_CHECKING, Protocol, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from ._pending import CallRegistry
from .exceptions import UnsupportedOperationError

if TYPE_CHECKING:
    from ._callbacks import Callback
    from .database import Database
    from .lone_transaction import LoneTransaction

T = TypeVar("T")


class Frame:
    def __init__(self, session: Session | AsyncSession, loop: asyncio.AbstractEventLoop | None):
        self.session = session
        self.loop = loop
        self.active = True
        self._in_use = threading.Lock()
        # db.on_commit() callbacks, run after the outermost COMMIT (see _callbacks.py)
        self.callbacks: list[Callback] = []

    @property
    def is_async(self) -> bool:
        return isinstance(self.session, AsyncSession)

    def exclusive(self) -> AbstractContextManager[None]:
        """Refuse a second, concurrent use of the session instead of corrupting it."""
        return exclusive(self._in_use)

    def call_in_loop(self, make_coroutine: Callable[[], Awaitable[T]]) -> T:
        """Run a coroutine on this frame's event loop from a worker thread and wait for it."""
        assert self.loop is not None
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is self.loop:  # waiting here would block the very loop that must run it
            raise UnsupportedOperationError(
                "An async db.transaction() is active in this event loop; use "
                "`async with db.transaction():` here, not `with`."
            )

        async def runner() -> T:
            return await make_coroutine()

        return asyncio.run_coroutine_threadsafe(runner(), self.loop).result()


@contextmanager
def exclusive(in_use: threading.Lock) -> Iterator[None]:
    """Refuse a second, concurrent use of a transaction instead of corrupting it."""
    if not in_use.acquire(blocking=False):
        raise UnsupportedOperationError(
            "Two tasks used the same db.transaction() session at the same time. "
            "A transaction's calls must run one after another; give each concurrent "
            "task its own db.transaction() (or run it outside the transaction)."
        )
    try:
        yield
    finally:
        in_use.release()


class FrameOpener(Protocol):
    """How a deferred transaction on ``db`` begins: its frame (``None``: declined), or
    the transaction its lone writes run in before that (``None``: declined)."""

    def open_frame(self, db: Database, write: bool) -> Frame | None: ...

    def begin_lone(self, db: Database) -> LoneTransaction | None: ...


class RequestFrames:
    """A web request's deferred transactions, one per database, each made the first
    time an ORM call on that database looks for it: a request that never touches a
    database makes none. ``duo_orm.web`` puts one in each database's context."""

    __slots__ = ()

    def deferred_for(self, db: Database) -> DeferredFrame | None:
        raise NotImplementedError


class DeferredFrame:
    """A transaction that exists only once something uses it.

    A web request has one of these per database it touches instead of a frame
    (``RequestFrames``), so it creates no session until it needs one. The
    first ORM call that needs the transaction (from any task or worker thread of
    the request, since they all share this object) opens the real frame: a write,
    an explicit ``db.transaction()``, the raw session. Reads before that run on
    their own, in statement mode, and open nothing.
    """

    __slots__ = (
        "_calls",
        "_lock",
        "_open_frame",
        "closed",
        "db",
        "declined",
        "frame",
        "lone",
        "reads_only",
    )

    def __init__(self, open_frame: FrameOpener, db: Database, *, reads_only: bool = False) -> None:
        self._open_frame: FrameOpener | None = open_frame
        self.db = db
        # Expected to only read (a GET, a read-only path): its lone reads may go to a
        # replica. A request that may write reads the primary, or a lagging replica
        # could hand its write stale rows.
        self.reads_only = reads_only
        self._lock = threading.Lock()
        self.frame: Frame | None = None
        self.closed = False
        self.declined = False  # the route opted out: its calls run in statement mode
        # begun by lone writes, before any session (duo_orm.lone_transaction)
        self.lone: LoneTransaction | None = None
        self._calls: CallRegistry | None = None

    def calls(self) -> CallRegistry:
        """The async calls made in this unit of work and not awaited yet."""
        if self._calls is None:
            self._calls = CallRegistry()
        return self._calls

    def has_waiting_calls(self) -> bool:
        return self._calls is not None and bool(self._calls)

    def forgotten_calls(self) -> list[str]:
        """Where each call that was never awaited was made (and drop them)."""
        return [] if self._calls is None else self._calls.forgotten()

    def close(self) -> None:
        with self._lock:
            self.closed = True
            # The opener refers back to the request's state: dropping it here lets
            # reference counting free the request at once instead of the cycle GC.
            self._open_frame = None

    def lone_transaction(self) -> LoneTransaction | None:
        """Where a lone write may run: the transaction lone writes began, begun now if
        nothing has begun one; ``None`` once the session's frame is open, or if the
        opener declines (a route that opted out runs in statement mode)."""
        if self.frame is not None or self.closed or self.declined:
            return None
        with self._lock:
            opener = self._open_frame
            if self.lone is None and self.frame is None and opener is not None:
                self.lone = opener.begin_lone(self.db)
            return self.lone if self.frame is None else None

    def resolve(self, write: bool = False) -> Frame | None:
        """The real frame, opened now if needed (``write``: for a write, which takes
        the write lock at BEGIN); ``None`` if the opener declines (a route that
        opted out of the request transaction runs in statement mode)."""
        if self.frame is None and not (self.closed or self.declined):
            with self._lock:
                opener = self._open_frame
                if self.frame is None and opener is not None:
                    self.frame = opener.open_frame(self.db, write)
                    if self.frame is None:
                        # still open for the request's bookkeeping (calls never awaited)
                        self.declined = True
                        self._open_frame = None
        return self.frame
