"""The worker threads an async call on SQLite runs its sync operation in.

An async statement-mode call on SQLite runs the whole sync operation in one worker
thread (``dispatch._one_thread_hop``), so every such call pays for one hop.
``anyio.to_thread.run_sync`` took 88 µs a hop on asyncio's loop here (62 on uvloop):
a capacity limiter, cancel scopes, a future bridged to the loop. Handing the call to
an idle thread and the outcome back with ``call_soon_threadsafe`` takes 31 µs (17),
where a whole SQLite count takes 50 µs in sync code.

What callers of anyio's hop count on still holds: the call runs in a copy of the
caller's context; no more threads run than anyio's default limiter allows (further
calls wait); a caller cancelled before a thread starts its call takes it back; one
cancelled later waits for the call to end (a write committed or rolled back, its
connection back in the pool) before the cancellation goes on.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import contextvars
import os
import queue
import threading
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import anyio
import anyio.to_thread

T = TypeVar("T")

IDLE_SECONDS = 10.0  # a thread with nothing to do for this long ends

_serving = threading.local()  # the event loop of the call this thread is running


def caller_loop() -> asyncio.AbstractEventLoop | None:
    """The event loop whose call this thread is running, if it is one of these workers
    (as ``anyio.from_thread`` finds it in anyio's own worker threads)."""
    loop: asyncio.AbstractEventLoop | None = getattr(_serving, "loop", None)
    return loop


class _Call:
    """One call handed to a worker; its outcome is settled on the caller's loop."""

    __slots__ = (
        "_claimed",
        "args",
        "context",
        "error",
        "finished",
        "fn",
        "loop",
        "result",
        "waiter",
    )

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        context: contextvars.Context,
        fn: Callable[..., Any],
        args: tuple[Any, ...],
    ) -> None:
        self.loop = loop
        self.waiter: asyncio.Future[None] = loop.create_future()
        self.context = context
        self.fn = fn
        self.args = args
        self.result: Any = None
        self.error: BaseException | None = None
        self.finished = False
        self._claimed = threading.Lock()  # by the worker that runs it, or the caller

    def withdraw(self) -> bool:
        """Whether a cancelled caller took the call back before any thread started it."""
        return self._claimed.acquire(blocking=False)

    def run(self) -> None:
        if not self._claimed.acquire(blocking=False):
            return  # withdrawn
        _serving.loop = self.loop
        try:
            self.result = self.context.run(self.fn, *self.args)
        except BaseException as error:  # handed to the caller, whatever it is
            self.error = error
        finally:
            _serving.loop = None
        with contextlib.suppress(RuntimeError):  # a closed loop: nobody waits any more
            self.loop.call_soon_threadsafe(self._settle)

    def _settle(self) -> None:
        """On the caller's loop, so it never races the caller swapping ``waiter``."""
        self.finished = True
        if not self.waiter.done():
            self.waiter.set_result(None)

    def outcome(self) -> Any:
        if self.error is not None:
            error, self.error = self.error, None  # no cycle through the traceback
            raise error
        return self.result


class _Workers:
    """Threads made when none is idle, each handed its calls one at a time.

    An idle thread waits on its own inbox, so a call goes to a thread known to be
    waiting, and a thread that ends after ``IDLE_SECONDS`` can never strand a call
    handed to it. Past the limit, calls wait in ``backlog`` for the next free thread.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._idle: list[queue.SimpleQueue[_Call]] = []  # the most recently idle last
        self._backlog: collections.deque[_Call] = collections.deque()
        self._threads = 0

    def submit(self, call: _Call) -> None:
        with self._lock:
            if self._idle:
                inbox = self._idle.pop()
            else:
                limit = anyio.to_thread.current_default_thread_limiter().total_tokens
                if self._threads >= limit:
                    self._backlog.append(call)
                    return
                self._threads += 1
                inbox = None
        if inbox is not None:
            inbox.put(call)
            return
        try:
            threading.Thread(
                target=self._work, args=(call,), name="duo-orm-worker", daemon=True
            ).start()
        except BaseException:  # no thread made: do not count it
            with self._lock:
                self._threads -= 1
            raise

    def _work(self, first: _Call) -> None:
        inbox: queue.SimpleQueue[_Call] = queue.SimpleQueue()
        call: _Call | None = first
        del first  # neither the first call nor the last stays alive while this one idles
        while call is not None:
            call.run()
            call = None
            call = self._next(inbox)

    def _next(self, inbox: queue.SimpleQueue[_Call]) -> _Call | None:
        """The next call for this thread, or ``None`` when it has idled long enough."""
        with self._lock:
            if self._backlog:
                return self._backlog.popleft()
            self._idle.append(inbox)
        try:
            return inbox.get(timeout=IDLE_SECONDS)
        except queue.Empty:
            with self._lock:
                if inbox in self._idle:  # nothing was handed to it: end
                    self._idle.remove(inbox)
                    self._threads -= 1
                    return None
            return inbox.get()  # a call was handed over as the wait ran out


_workers = _Workers()


def _forget_threads() -> None:
    """A forked child has none of its parent's threads."""
    global _workers
    _workers = _Workers()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_threads)


async def run_in_worker(
    fn: Callable[..., T],
    *args: Any,
    then: Callable[[T], Awaitable[None]] | None = None,
) -> T:
    """``fn(*args)`` in a worker thread, awaited, then ``then(result)`` if given.

    A caller cancelled before a thread starts the call takes it back. One cancelled
    later waits for the call to end, and still runs ``then`` on its result (the call
    may have committed: its after-commit work is due), before the cancellation goes on.
    """
    loop = asyncio.get_running_loop()
    call = _Call(loop, contextvars.copy_context(), fn, args)
    _workers.submit(call)
    try:
        await call.waiter
    except asyncio.CancelledError:
        if call.withdraw():
            raise
        with anyio.CancelScope(shield=True):  # anyio would cancel again at every wait
            while not call.finished:
                call.waiter = loop.create_future()
                with contextlib.suppress(asyncio.CancelledError):  # a plain asyncio cancel
                    await call.waiter
            if call.error is None and then is not None:
                await then(call.result)
        raise
    result: T = call.outcome()
    if then is not None:
        await then(result)
    return result
