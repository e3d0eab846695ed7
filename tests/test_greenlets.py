"""The greenlets lone statements run the pool's checkout in: SQLAlchemy's ``await_``
inside them, the caller's context, the outcome (a value or the very exception), a
cancelled caller, and the greenlet kept for the next call. A real event loop."""

from __future__ import annotations

import asyncio
import contextvars
import gc
import threading
import weakref
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import pytest
from greenlet import getcurrent
from sqlalchemy.util import await_only

from duo_orm._greenlets import KEPT_PER_THREAD, run_sync

pytestmark = pytest.mark.anyio

caller = contextvars.ContextVar[Any]("caller", default=None)


async def test_a_call_awaits_through_sqlalchemy_and_returns_its_value() -> None:
    def checkout() -> int:
        return await_only(asyncio.sleep(0, result=20)) + 1

    assert await run_sync(checkout) == 21


async def test_a_call_sees_the_callers_context_and_what_it_sets_stays_set() -> None:
    caller.set("handler")

    def call() -> Any:
        seen = caller.get()
        caller.set("set inside")
        return seen

    assert await run_sync(call) == "handler"
    assert caller.get() == "set inside"  # as greenlet_spawn leaves it


async def test_an_error_inside_comes_out_as_the_same_exception() -> None:
    error = LookupError("gone")

    def fail() -> None:
        await_only(asyncio.sleep(0))
        raise error

    with pytest.raises(LookupError) as info:
        await run_sync(fail)
    assert info.value is error


async def test_an_error_the_awaited_call_raises_is_raised_inside_where_it_can_be_handled() -> None:
    async def refused() -> None:
        raise ConnectionRefusedError

    def connect() -> str:
        try:
            await_only(refused())
        except ConnectionRefusedError:
            return "handled inside"
        return "not raised"

    assert await run_sync(connect) == "handled inside"


async def test_the_next_call_runs_in_the_greenlet_the_last_one_finished_in() -> None:
    first = await run_sync(getcurrent)
    second = await run_sync(getcurrent)
    assert first is second
    assert first is not getcurrent()


async def test_calls_that_await_at_once_each_get_a_greenlet_and_their_own_outcome() -> None:
    release = asyncio.Event()
    runners: dict[int, Any] = {}

    def call(n: int) -> int:
        runners[n] = getcurrent()
        await_only(release.wait())
        return n * 10

    results: dict[int, int] = {}

    async def one(n: int) -> None:
        results[n] = await run_sync(call, n)

    async with anyio.create_task_group() as tasks:
        for n in range(KEPT_PER_THREAD + 2):
            tasks.start_soon(one, n)
        await anyio.wait_all_tasks_blocked()
        release.set()
    assert results == {n: n * 10 for n in range(KEPT_PER_THREAD + 2)}
    assert len({id(r) for r in runners.values()}) == KEPT_PER_THREAD + 2


async def test_a_cancelled_caller_cancels_the_call_inside_and_the_greenlet_serves_again() -> None:
    cleaned_up = []

    def checkout() -> None:
        try:
            await_only(asyncio.sleep(60))
        finally:
            cleaned_up.append(True)

    with anyio.move_on_after(0.05) as scope:
        await run_sync(checkout)
    assert scope.cancelled_caught
    assert cleaned_up == [True]
    assert await run_sync(lambda: await_only(asyncio.sleep(0, result="again"))) == "again"


def in_a_new_thread(work: Callable[[], Awaitable[Any]]) -> Any:
    """``work`` on an event loop of a thread of its own: runners made afresh there."""
    outcome: list[Any] = []
    thread = threading.Thread(target=lambda: outcome.append(asyncio.run(work())))
    thread.start()
    thread.join()
    return outcome[0]


def test_a_greenlet_holds_on_to_nothing_of_its_calls() -> None:
    class Connection:
        pass

    def give_back(pooled: Connection) -> Any:
        return weakref.ref(getcurrent())

    async def work() -> tuple[Any, Any, Any]:
        connection = Connection()
        caller.set(connection)  # the context the call runs in
        runner = await run_sync(give_back, connection)  # the first call of a new runner
        assert await run_sync(give_back, connection) is runner  # and a later one
        caller.set(None)
        gone = weakref.ref(connection)
        del connection
        gc.collect()
        return gone(), runner().gr_context, runner

    left, context, _ = in_a_new_thread(work)
    assert left is None
    assert context is None


def test_greenlets_past_those_kept_and_those_of_an_ended_thread_are_freed() -> None:
    async def burst() -> tuple[int, list[Any]]:
        release = asyncio.Event()
        runners: list[Any] = []

        def checkout() -> None:
            runners.append(weakref.ref(getcurrent()))
            await_only(release.wait())

        async with anyio.create_task_group() as tasks:
            for _ in range(KEPT_PER_THREAD * 3):
                tasks.start_soon(run_sync, checkout)
            await anyio.wait_all_tasks_blocked()
            release.set()
        gc.collect()
        return sum(r() is not None for r in runners), runners

    kept, runners = in_a_new_thread(burst)
    assert len(runners) == KEPT_PER_THREAD * 3
    assert kept == KEPT_PER_THREAD
    gc.collect()
    assert all(r() is None for r in runners)


async def test_an_error_raised_into_the_call_keeps_where_the_driver_raised_it() -> None:
    async def driver_connect() -> None:
        raise ConnectionRefusedError

    def checkout() -> None:
        await_only(driver_connect())

    with pytest.raises(ConnectionRefusedError) as info:
        await run_sync(checkout)
    assert "driver_connect" in [entry.name for entry in info.traceback]
