"""SQLite writers of one process queue for the write lock, first come first served,
instead of polling SQLite's busy handler; a wait past the busy timeout is still
``DatabaseBusyError``. Real SQLite files, real threads and tasks."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import pytest
from sqlalchemy import select

from duo_orm import Database, DatabaseBusyError
from duo_orm._writer_queue import WriterQueue

from .conftest import async_tables, tables, wait_until
from .models import Models, define_models

WRITERS = 6


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A file: in a shared memory database (the memdb VFS) a reader waits for the
    writer too, so a writer is held up in SQLite before it could reach the queue."""
    return f"sqlite:///{tmp_path / 'queue.db'}"


def queue_of(db: Database) -> WriterQueue:
    return db._engines.writer_queue()


def emails_in_commit_order(m: Models) -> list[str]:
    with m.db.sync_standalone_session() as session:
        return list(session.scalars(select(m.User.email).order_by(m.User.id)))


def test_waiting_writers_commit_in_the_order_they_arrived(sqlite_url: str) -> None:
    with tables(Database(sqlite_url), define_models) as m:
        queue = queue_of(m.db)
        release = threading.Event()

        def holder() -> None:
            with m.db.transaction():
                m.User.create(email="holder@x.io", name="holder")
                release.wait(30)

        def writer(n: int) -> None:
            m.User.create(email=f"w{n}@x.io", name=f"w{n}")

        threads = [threading.Thread(target=holder)]
        threads[0].start()
        wait_until(lambda: queue._held)
        for n in range(WRITERS):
            threads.append(threading.Thread(target=writer, args=(n,)))
            threads[-1].start()
            wait_until(lambda n=n: len(queue._waiting) == n + 1)  # type: ignore[misc]
        release.set()
        for thread in threads:
            thread.join(30)
        assert emails_in_commit_order(m) == ["holder@x.io", *(f"w{n}@x.io" for n in range(WRITERS))]
        assert not queue._held and not queue._waiting


def test_async_transactions_queue_on_the_event_loop_without_blocking_it(sqlite_url: str) -> None:
    """The holder can only commit if the waiters leave the loop free."""

    async def main() -> list[str]:
        async with async_tables(Database(sqlite_url), define_models) as m:
            queue = queue_of(m.db)
            go_on = asyncio.Event()

            async def holder() -> None:
                async with m.db.transaction():
                    await m.User.create(email="holder@x.io", name="holder")
                    await go_on.wait()

            async def writer(n: int) -> None:
                async with m.db.transaction():
                    await m.User.create(email=f"w{n}@x.io", name=f"w{n}")

            tasks = [asyncio.create_task(holder())]
            while not queue._held:
                await asyncio.sleep(0)
            for n in range(WRITERS):
                tasks.append(asyncio.create_task(writer(n)))
                while len(queue._waiting) < n + 1:
                    await asyncio.sleep(0)
            go_on.set()
            await asyncio.gather(*tasks)
            async with m.db.transaction() as session:
                return list(await session.scalars(select(m.User.email).order_by(m.User.id)))

    assert asyncio.run(main()) == ["holder@x.io", *(f"w{n}@x.io" for n in range(WRITERS))]


def test_a_writer_that_outwaits_the_busy_timeout_in_the_queue_is_busy(tmp_path: Path) -> None:
    db = Database(
        f"sqlite:///{tmp_path / 'busy.db'}", engine_options={"connect_args": {"timeout": 0.05}}
    )
    with tables(db, define_models) as m:
        release = threading.Event()

        def holder() -> None:
            with m.db.transaction():
                m.User.create(email="holder@x.io", name="holder")
                release.wait(30)

        thread = threading.Thread(target=holder)
        thread.start()
        wait_until(lambda: queue_of(m.db)._held)
        with pytest.raises(DatabaseBusyError):
            m.User.create(email="late@x.io", name="late")
        release.set()
        thread.join(30)
        m.User.create(email="after@x.io", name="after")  # the queue moved on
        assert emails_in_commit_order(m) == ["holder@x.io", "after@x.io"]


def test_a_cancelled_waiter_hands_its_turn_on() -> None:
    queue = WriterQueue()

    async def main() -> list[str]:
        order: list[str] = []
        assert await queue.acquire_async(1)

        async def waiter(name: str) -> None:
            assert await queue.acquire_async(5)
            order.append(name)
            queue.release()

        cancelled = asyncio.create_task(waiter("cancelled"))
        kept = asyncio.create_task(waiter("kept"))
        while len(queue._waiting) < 2:
            await asyncio.sleep(0)
        cancelled.cancel()
        queue.release()
        await kept
        with pytest.raises(asyncio.CancelledError):
            await cancelled
        return order

    assert asyncio.run(main()) == ["kept"]
    assert not queue._held and not queue._waiting


def test_a_thread_and_a_task_share_one_queue() -> None:
    queue = WriterQueue()
    order: list[str] = []
    assert queue.acquire(1)

    def in_thread() -> None:
        assert queue.acquire(5)
        order.append("thread")
        queue.release()

    async def main() -> None:
        thread = threading.Thread(target=in_thread)
        thread.start()
        while not queue._waiting:
            await asyncio.sleep(0)
        task = asyncio.create_task(queue.acquire_async(5))
        while len(queue._waiting) < 2:
            await asyncio.sleep(0)
        queue.release()  # the thread came first
        assert await task
        order.append("task")
        queue.release()
        await asyncio.to_thread(thread.join, 5)

    asyncio.run(main())
    assert order == ["thread", "task"]
    assert not queue._held and not queue._waiting


def test_a_timed_out_wait_leaves_the_queue() -> None:
    queue = WriterQueue()
    assert queue.acquire(1)
    assert not queue.acquire(0.01)
    assert not asyncio.run(queue.acquire_async(0.01))
    assert len(queue._waiting) == 0
    queue.release()
    assert not queue._held


def test_the_queue_can_be_turned_off(tmp_path: Path) -> None:
    """``sqlite_queue_writers=False``: writers meet SQLite's busy handler directly."""
    db = Database(
        f"sqlite:///{tmp_path / 'off.db'}", engine_options={"sqlite_queue_writers": False}
    )
    with tables(db, define_models) as m, m.db.transaction():
        m.User.create(email="holder@x.io", name="holder")
        assert not queue_of(m.db)._held
