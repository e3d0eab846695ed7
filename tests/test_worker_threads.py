"""The worker threads async SQLite calls hop to: the caller's context, the outcome
(a value or the very exception), a bound on threads, a cancelled caller that waits
for its call, idle threads that end. Real threads, a real event loop."""

from __future__ import annotations

import contextvars
import threading
import time
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
import pytest

from duo_orm import Database, Mapped, String, mapped_column
from duo_orm import _worker_threads as workers
from duo_orm._worker_threads import run_in_worker

from .conftest import async_tables, wait_until
from .models import define_models

pytestmark = pytest.mark.anyio

caller = contextvars.ContextVar("caller", default="none")


async def test_a_call_sees_the_callers_context_and_returns_its_value() -> None:
    caller.set("handler")
    seen = await run_in_worker(lambda: (caller.get(), threading.current_thread().name))
    assert seen == ("handler", "duo-orm-worker")


async def test_a_call_that_raises_raises_the_same_exception_in_the_caller() -> None:
    class Refused(Exception):
        pass

    error = Refused("no")

    def fail() -> None:
        raise error

    with pytest.raises(Refused) as info:
        await run_in_worker(fail)
    assert info.value is error


async def test_a_cancelled_caller_waits_for_its_call_to_finish() -> None:
    started, finished = threading.Event(), threading.Event()

    def slow() -> str:
        started.set()
        time.sleep(0.3)
        finished.set()
        return "done"

    scope = await cancelled_once_started(run_in_worker(slow), started)
    assert scope.cancelled_caught
    assert finished.is_set()  # the cancellation went on only after the call ended


@pytest.mark.usefixtures("fresh_workers")
async def test_a_caller_cancelled_before_its_call_starts_takes_it_back(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(anyio.to_thread.current_default_thread_limiter(), "total_tokens", 1)
    release, ran = threading.Event(), threading.Event()
    async with anyio.create_task_group() as tg:
        tg.start_soon(run_in_worker, release.wait, 2)  # holds the one thread, for a while
        await anyio.sleep(0.05)
        with anyio.move_on_after(0.05) as scope:
            await run_in_worker(ran.set)
        assert scope.cancelled_caught
        release.set()
    assert await run_in_worker(lambda: "next") == "next"  # the thread went on
    assert not ran.is_set()


async def cancelled_once_started(work: Any, started: threading.Event) -> anyio.CancelScope:
    """Await ``work`` in a scope cancelled as soon as its thread has started it."""
    scope = anyio.CancelScope()

    async def caller() -> None:
        with scope:
            await work

    async with anyio.create_task_group() as tg:
        tg.start_soon(caller)
        assert await anyio.to_thread.run_sync(started.wait, 10)
        scope.cancel()
    return scope


@pytest.fixture
def fresh_workers(monkeypatch: pytest.MonkeyPatch) -> None:
    """Threads of this test's own, none left idle by another test."""
    monkeypatch.setattr(workers, "_workers", workers._Workers())


@pytest.mark.usefixtures("fresh_workers")
async def test_no_more_threads_run_than_the_default_limiter_allows() -> None:
    limiter = anyio.to_thread.current_default_thread_limiter()
    before = limiter.total_tokens
    limiter.total_tokens = 2
    running, most = 0, 0
    lock = threading.Lock()

    def busy(number: int) -> int:
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
        time.sleep(0.05)
        with lock:
            running -= 1
        return number

    try:
        results: list[int] = []

        async def one(number: int) -> None:
            results.append(await run_in_worker(busy, number))

        async with anyio.create_task_group() as tg:
            for number in range(8):
                tg.start_soon(one, number)
        assert sorted(results) == list(range(8))
        assert most == 2
    finally:
        limiter.total_tokens = before


@pytest.mark.usefixtures("fresh_workers")
async def test_idle_threads_end_and_new_ones_are_made(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(workers, "IDLE_SECONDS", 0.05)
    monkeypatch.setattr(anyio.to_thread.current_default_thread_limiter(), "total_tokens", 1)
    used: list[threading.Thread] = []

    async def one() -> None:
        used.append(await run_in_worker(threading.current_thread))

    async with anyio.create_task_group() as tg:  # one thread, calls waiting for it
        for _ in range(3):
            tg.start_soon(one)
    [first] = set(used)
    wait_until(lambda: not first.is_alive())
    with anyio.fail_after(5):  # not handed to the thread that ended
        second = await run_in_worker(threading.current_thread)
    assert second is not first
    assert second.name == "duo-orm-worker"


@pytest.mark.usefixtures("fresh_workers")
async def test_an_idle_thread_is_reused() -> None:
    first = await run_in_worker(threading.current_thread)
    wait_until(lambda: bool(workers._workers._idle))  # it goes idle just after answering
    assert await run_in_worker(threading.current_thread) is first


@pytest.mark.parametrize("delay", [0, 0.0002, 0.001])
async def test_a_cancelled_sqlite_create_is_stored_whole_or_not_at_all(
    tmp_path: Path, delay: float
) -> None:
    async with async_tables(Database(f"sqlite:///{tmp_path / 'w.db'}"), define_models) as m:
        returned = []
        for number in range(20):
            with anyio.move_on_after(delay):
                returned.append(await m.User.create(email=f"u{number}@x.io", name="n"))
        stored = {user.email for user in await m.User.all()}
        assert {user.email for user in returned} <= stored
        assert m.db._engines.sync_engine().pool.checkedout() == 0
        assert await m.User.count() == len(stored)


def hooked_models(db: Database, pause: float, register: Any, started: Any = None) -> Any:
    """A model whose ``validate()`` says it started, pauses, then registers an
    after-commit callback."""

    class Note(db.Model):
        __tablename__ = "notes"
        id: Mapped[int] = mapped_column(primary_key=True)
        text: Mapped[str] = mapped_column(String(50))

        def validate(self) -> None:
            if started is not None:
                started.set()
            time.sleep(pause)
            db.on_commit(register)

    return Note


async def test_a_write_cancelled_after_it_started_still_runs_its_after_commit_callbacks(
    tmp_path: Path,
) -> None:
    ran: list[str] = []
    started = threading.Event()
    db = Database(f"sqlite:///{tmp_path / 'c.db'}")
    Note = hooked_models(db, 0.2, lambda: ran.append("after commit"), started)
    await db.create_all()
    try:
        scope = await cancelled_once_started(Note.create(text="kept"), started)
        assert scope.cancelled_caught
        assert [note.text for note in await Note.all()] == ["kept"]
        assert ran == ["after commit"]
    finally:
        await db.disconnect()


async def test_an_async_callback_registered_by_a_hook_runs_on_the_callers_loop(
    tmp_path: Path,
) -> None:
    loop_thread = threading.get_ident()
    ran: list[bool] = []

    async def send() -> None:
        ran.append(threading.get_ident() == loop_thread)

    db = Database(f"sqlite:///{tmp_path / 'a.db'}")
    Note = hooked_models(db, 0, send)
    await db.create_all()
    try:
        await Note.create(text="sent")
        assert ran == [True]
    finally:
        await db.disconnect()
