"""``db.on_commit(fn)``: work that must happen only once the data really is committed.

A transaction's frame keeps its callbacks in registration order. A SAVEPOINT
notes how many there were when it began and drops the ones added after that
mark if it rolls back; the outermost block runs them once its COMMIT has
succeeded (after the block's session is closed, so ORM calls they make run in
statement mode) and drops them on a rollback or a failed COMMIT. Outside a
transaction (statement mode) everything is already committed, so a callback
runs at once, unless a model hook registers it while its own one-call session
is still writing: it then waits for that session's COMMIT.

A callback runs the way the code that registered it runs: on the event loop
when registered there, in a worker thread when registered from one (a ``def``
endpoint), and an async callable (or one that returns an awaitable, such as
``lambda: send(user.id)``) is awaited on the event loop. A callback that raises
is logged on ``duo_orm.transaction`` and the others still run: the commit has
happened, and nothing can undo it.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import anyio
import anyio.from_thread
import anyio.to_thread

from ._worker_threads import caller_loop
from .exceptions import UnsupportedOperationError

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from .database import Database

__all__ = ["PENDING", "Callback", "register", "run_after_async_commit", "run_after_sync_commit"]

logger = logging.getLogger("duo_orm.transaction")

PENDING = "duo_orm.on_commit"  # Session.info key: callbacks of a one-call (statement) session

# Tasks started for async callbacks that nobody awaits (statement mode in async
# code): the loop keeps only weak references to tasks, so they are kept here.
_running: set[asyncio.Task[None]] = set()


@dataclass(frozen=True, slots=True)
class Callback:
    fn: Callable[[], object]
    # registered from a thread without a running event loop (a worker thread)
    from_worker: bool
    # the event loop an awaitable result runs on when none runs where the callback does
    loop: asyncio.AbstractEventLoop | None


def register(db: Database, fn: Callable[[], object], statement: Session | None = None) -> None:
    """Queue ``fn`` on the ambient transaction of ``db``, or run it now if there is none.

    ``statement`` is the one-call session a model hook is running in, if any.
    """
    if inspect.isawaitable(fn):
        if inspect.iscoroutine(fn):
            fn.close()  # it will never run: do not add a "never awaited" warning
        raise TypeError(
            "db.on_commit() takes the function to call, not the result of calling it: "
            "write db.on_commit(send) or db.on_commit(functools.partial(send, user_id)), "
            "not db.on_commit(send(user_id))."
        )
    if not callable(fn):
        raise TypeError(f"db.on_commit() needs a callable, got {type(fn).__name__}.")
    running = _running_loop()
    frame = db._current_frame()
    if frame is not None and frame.is_async:
        loop = frame.loop
    else:
        loop = running
        if loop is None and inspect.iscoroutinefunction(fn):
            loop = _worker_thread_loop()
            if loop is None:
                raise UnsupportedOperationError(
                    "db.on_commit() got an async function in sync code with no event loop "
                    "to run it on. Register a sync function here, or register the async one "
                    "from async code (or a worker thread of an async app)."
                )
    callback = Callback(fn, from_worker=running is None, loop=loop)
    if frame is not None:
        frame.callbacks.append(callback)
    elif statement is not None:  # a hook of a statement-mode call: after its COMMIT
        statement.info.setdefault(PENDING, []).append(callback)
    else:  # statement mode: every call has already committed
        run_after_sync_commit([callback])


def run_after_sync_commit(callbacks: Sequence[Callback]) -> None:
    """Run callbacks from sync code (a ``with`` block's exit, or statement mode)."""
    for callback in callbacks:
        try:
            result = callback.fn()
            if inspect.isawaitable(result):
                _finish_elsewhere(result, callback)
        except Exception:
            _log_failure(callback)


async def run_after_async_commit(callbacks: Sequence[Callback]) -> None:
    """Run callbacks on the event loop after an ``async with`` block (or a request) committed.

    Shielded: the COMMIT has happened, so a cancellation arriving now must not
    silently skip the work that depends on it.
    """
    with anyio.CancelScope(shield=True):
        for callback in callbacks:
            try:
                if callback.from_worker and not inspect.iscoroutinefunction(callback.fn):
                    result = await anyio.to_thread.run_sync(callback.fn)
                else:
                    result = callback.fn()
                if inspect.isawaitable(result):
                    await result
            except Exception:
                _log_failure(callback)


def _finish_elsewhere(result: Awaitable[object], callback: Callback) -> None:
    """Await ``result`` from sync code: on the callback's event loop, if it has one."""
    running = _running_loop()
    loop = callback.loop or running or _worker_thread_loop()
    if loop is None:
        if inspect.iscoroutine(result):
            result.close()
        raise UnsupportedOperationError(
            "the callback returned an awaitable, and no event loop is there to run it"
        )
    if loop is running:  # sync code on the loop's own thread: it cannot wait here
        task = loop.create_task(_guarded(result, callback))
        _running.add(task)
        task.add_done_callback(_running.discard)
        return
    asyncio.run_coroutine_threadsafe(_awaited(result), loop).result()


async def _awaited(result: Awaitable[object]) -> None:
    await result


async def _guarded(result: Awaitable[object], callback: Callback) -> None:
    try:
        await result
    except Exception:
        _log_failure(callback)


def _log_failure(callback: Callback) -> None:
    logger.exception("db.on_commit callback %s failed (the commit stands)", _name(callback.fn))


def _name(fn: Any) -> str:
    target = getattr(fn, "func", fn)  # functools.partial
    module = getattr(target, "__module__", None)
    name = getattr(target, "__qualname__", None) or repr(target)
    return f"{module}.{name}" if module else name


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


def _worker_thread_loop() -> asyncio.AbstractEventLoop | None:
    """The event loop this thread works for, if it is a worker thread: duo-orm's own
    (async SQLite calls) or anyio's."""
    loop = caller_loop()
    if loop is not None:
        return loop
    try:
        return anyio.from_thread.run_sync(asyncio.get_running_loop)
    except RuntimeError:  # not a worker thread (NoEventLoopError is a RuntimeError)
        return None
