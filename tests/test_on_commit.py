"""db.on_commit(): callbacks that run only once the unit of work has really committed."""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import anyio
import anyio.to_thread
import pytest
from sqlalchemy import text

from duo_orm import (
    Database,
    IntegrityError,
    Mapped,
    String,
    UnsupportedOperationError,
    mapped_column,
)

from .conftest import async_tables, count_rows, tables, user_emails
from .models import Models


def user(n: int) -> dict[str, object]:
    return {"email": f"u{n}@x.io", "name": f"user {n}"}


class Boom(Exception):
    pass


def deferred_foreign_key(models: Models) -> None:
    """A ``notes`` table whose foreign key is checked only at COMMIT."""
    with models.db.sync_standalone_session() as session:
        session.execute(
            text(
                "CREATE TABLE notes (id INTEGER PRIMARY KEY, user_id INTEGER "
                "REFERENCES users(id) DEFERRABLE INITIALLY DEFERRED)"
            )
        )
        session.commit()


# -- sync blocks ---------------------------------------------------------------


def test_runs_after_the_commit_in_registration_order_sync(m: Models) -> None:
    seen: list[tuple[str, int, bool]] = []

    def note(label: str) -> None:  # what a fresh connection sees, and whether a block is open
        seen.append((label, count_rows(m, "users"), m.db.in_transaction))

    with m.db.transaction():
        m.User.create(user(1))
        m.db.on_commit(functools.partial(note, "first"))
        m.db.on_commit(lambda: note("second"))
        assert seen == []  # nothing runs before the COMMIT
    assert seen == [("first", 1, False), ("second", 1, False)]


def test_callback_orm_calls_run_in_statement_mode_sync(m: Models) -> None:
    with m.db.transaction():
        m.User.create(user(1))
        m.db.on_commit(lambda: m.User.create(user(2)))
    assert user_emails(m) == ["u1@x.io", "u2@x.io"]


def test_savepoints_keep_or_drop_their_callbacks_sync(m: Models) -> None:
    ran: list[str] = []
    with m.db.transaction():
        m.db.on_commit(lambda: ran.append("outer"))
        with m.db.transaction():
            m.User.create(user(1))
            m.db.on_commit(lambda: ran.append("kept savepoint"))
        assert ran == []  # a released savepoint waits for the outermost COMMIT
        with pytest.raises(Boom), m.db.transaction():
            m.db.on_commit(lambda: ran.append("rolled-back savepoint"))
            raise Boom
        with pytest.raises(IntegrityError), m.db.transaction():  # the flush fails: rolled back
            m.db.on_commit(lambda: ran.append("failed flush"))
            m.User.create(user(1))
        with m.db.transaction():
            with pytest.raises(Boom), m.db.transaction():
                m.db.on_commit(lambda: ran.append("inner of a kept savepoint"))
                raise Boom
            m.db.on_commit(lambda: ran.append("after the inner rollback"))
        m.db.on_commit(lambda: ran.append("last"))
    assert ran == ["outer", "kept savepoint", "after the inner rollback", "last"]


def test_a_savepoint_dropped_with_its_parent_drops_its_callbacks_sync(m: Models) -> None:
    ran: list[str] = []
    with m.db.transaction(), pytest.raises(Boom), m.db.transaction():
        with m.db.transaction():
            m.db.on_commit(lambda: ran.append("released, then its parent rolled back"))
        raise Boom
    assert ran == []


def test_rollback_drops_every_callback_sync(m: Models) -> None:
    ran: list[str] = []
    with pytest.raises(Boom), m.db.transaction():
        m.db.on_commit(lambda: ran.append("outer"))
        with m.db.transaction():
            m.db.on_commit(lambda: ran.append("savepoint"))
        raise Boom
    assert ran == []
    with m.db.transaction():  # nothing left over for the next transaction either
        pass
    assert ran == []


def test_failed_commit_drops_the_callbacks_sync(m: Models) -> None:
    deferred_foreign_key(m)
    ran: list[str] = []
    with pytest.raises(IntegrityError), m.db.transaction() as session:
        m.User.create(user(1))
        session.execute(text("INSERT INTO notes (id, user_id) VALUES (1, 999)"))
        m.db.on_commit(lambda: ran.append("never"))
    assert ran == [] and count_rows(m, "users") == 0


def test_statement_mode_runs_at_once_sync(m: Models) -> None:
    ran: list[int] = []
    m.User.create(user(1))
    assert m.db.on_commit(lambda: ran.append(count_rows(m, "users"))) is None
    assert ran == [1]


def test_async_callback_without_an_event_loop_is_refused_sync(m: Models) -> None:
    async def send() -> None:
        pass

    with pytest.raises(UnsupportedOperationError, match="no event loop"):
        m.db.on_commit(send)  # statement mode
    with pytest.raises(UnsupportedOperationError, match="no event loop"), m.db.transaction():
        m.db.on_commit(send)


def test_passing_a_call_instead_of_a_function_is_refused(m: Models) -> None:
    async def send(n: int) -> None:
        pass

    with pytest.raises(TypeError, match="not the result of calling it"):
        m.db.on_commit(send(1))  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="needs a callable"):
        m.db.on_commit("send")  # type: ignore[arg-type]


def test_failing_callback_is_logged_and_the_others_run_sync(
    m: Models, caplog: pytest.LogCaptureFixture
) -> None:
    ran: list[str] = []

    def fails() -> None:
        raise Boom("smtp down")

    with caplog.at_level(logging.ERROR, logger="duo_orm.transaction"), m.db.transaction():
        m.User.create(user(1))
        m.db.on_commit(lambda: ran.append("before"))
        m.db.on_commit(fails)
        m.db.on_commit(lambda: ran.append("after"))
    assert ran == ["before", "after"]
    assert count_rows(m, "users") == 1  # the commit stands
    [record] = [r for r in caplog.records if r.name == "duo_orm.transaction"]
    assert record.levelno == logging.ERROR and "fails" in record.getMessage()
    assert record.exc_info is not None and isinstance(record.exc_info[1], Boom)


# -- async blocks --------------------------------------------------------------


@pytest.mark.anyio
async def test_runs_after_the_commit_sync_and_async_callables(am: Models) -> None:
    seen: list[tuple[str, int]] = []

    async def send(label: str) -> None:
        await anyio.sleep(0)
        seen.append((label, count_rows(am, "users")))

    async with am.db.transaction():
        await am.User.create(user(1))
        assert am.db.on_commit(functools.partial(send, "partial")) is None  # nothing to await
        am.db.on_commit(lambda: send("lambda returning a coroutine"))
        am.db.on_commit(lambda: seen.append(("sync", count_rows(am, "users"))))
        am.db.on_commit(lambda: am.User.create(user(2)))  # an ORM call: awaited, statement mode
        assert seen == []
    assert seen == [("partial", 1), ("lambda returning a coroutine", 1), ("sync", 1)]
    assert user_emails(am) == ["u1@x.io", "u2@x.io"]


@pytest.mark.anyio
async def test_savepoints_keep_or_drop_their_callbacks_async(am: Models) -> None:
    ran: list[str] = []
    async with am.db.transaction():
        async with am.db.transaction():
            am.db.on_commit(lambda: ran.append("kept savepoint"))
        assert ran == []
        with pytest.raises(Boom):
            async with am.db.transaction():
                am.db.on_commit(lambda: ran.append("rolled-back savepoint"))
                raise Boom
        await am.User.create(user(1))
        with pytest.raises(IntegrityError):
            async with am.db.transaction():  # a failed flush rolls the savepoint back
                am.db.on_commit(lambda: ran.append("failed flush"))
                await am.User.create(user(1))
        am.db.on_commit(lambda: ran.append("last"))
    assert ran == ["kept savepoint", "last"]


@pytest.mark.anyio
async def test_rollback_and_failed_commit_drop_the_callbacks_async(am: Models) -> None:
    deferred_foreign_key(am)
    ran: list[str] = []
    with pytest.raises(Boom):
        async with am.db.transaction():
            am.db.on_commit(lambda: ran.append("rolled back"))
            raise Boom
    with pytest.raises(IntegrityError):
        async with am.db.transaction() as session:
            await am.User.create(user(1))
            await session.execute(text("INSERT INTO notes (id, user_id) VALUES (1, 999)"))
            am.db.on_commit(lambda: ran.append("commit failed"))
    assert ran == [] and count_rows(am, "users") == 0


@pytest.mark.anyio
async def test_statement_mode_runs_at_once_async(am: Models) -> None:
    ran: list[str] = []
    done = anyio.Event()

    async def send() -> None:
        ran.append("async")
        done.set()

    await am.User.create(user(1))
    am.db.on_commit(lambda: ran.append("sync"))
    assert ran == ["sync"]  # a sync callable is called right here
    am.db.on_commit(send)  # an async one starts as a task at once
    with anyio.fail_after(5):
        await done.wait()
    assert ran == ["sync", "async"]


@pytest.mark.anyio
async def test_failing_callbacks_are_logged_and_the_others_run_async(
    am: Models, caplog: pytest.LogCaptureFixture
) -> None:
    ran: list[str] = []

    async def fails_async() -> None:
        raise Boom("queue down")

    def fails_sync() -> None:
        raise Boom("smtp down")

    with caplog.at_level(logging.ERROR, logger="duo_orm.transaction"):
        async with am.db.transaction():
            await am.User.create(user(1))
            am.db.on_commit(fails_async)
            am.db.on_commit(lambda: ran.append("between"))
            am.db.on_commit(fails_sync)
            am.db.on_commit(lambda: ran.append("after"))
    assert ran == ["between", "after"] and count_rows(am, "users") == 1
    records = [r for r in caplog.records if r.name == "duo_orm.transaction"]
    assert [r.levelno for r in records] == [logging.ERROR, logging.ERROR]
    assert "fails_async" in records[0].getMessage() and "fails_sync" in records[1].getMessage()
    assert all(r.exc_info is not None and isinstance(r.exc_info[1], Boom) for r in records)


@pytest.mark.anyio
async def test_cancelled_after_the_commit_the_callbacks_still_run(am: Models) -> None:
    ran: list[str] = []
    started = anyio.Event()

    async def slow() -> None:
        started.set()
        await anyio.sleep(0.2)  # the cancellation arrives here
        ran.append("slow")

    async def work() -> None:
        async with am.db.transaction():
            await am.User.create(user(1))
            am.db.on_commit(slow)
            am.db.on_commit(lambda: ran.append("next"))

    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            tg.start_soon(work)
            await started.wait()
            tg.cancel_scope.cancel()
    assert ran == ["slow", "next"] and count_rows(am, "users") == 1


# -- worker threads ------------------------------------------------------------


@pytest.mark.anyio
async def test_worker_thread_registers_inside_an_async_transaction(am: Models) -> None:
    loop_thread = threading.get_ident()
    ran: list[tuple[str, bool]] = []  # (label, ran on the event loop's thread?)

    async def send() -> None:
        ran.append(("async", threading.get_ident() == loop_thread))

    def in_worker() -> None:
        am.User.create(user(1))
        am.db.on_commit(lambda: ran.append(("sync", threading.get_ident() == loop_thread)))
        am.db.on_commit(send)
        with pytest.raises(Boom), am.db.transaction():  # a SAVEPOINT on the owner's loop
            am.db.on_commit(lambda: ran.append(("rolled back", True)))
            raise Boom

    async with am.db.transaction():
        await anyio.to_thread.run_sync(in_worker)
        assert ran == []
    # a sync callback registered from a worker thread runs in one, not on the loop
    assert ran == [("sync", False), ("async", True)]
    assert user_emails(am) == ["u1@x.io"]


@pytest.mark.anyio
async def test_worker_thread_rollback_drops_its_callbacks(am: Models) -> None:
    ran: list[str] = []
    with pytest.raises(Boom):
        async with am.db.transaction():
            await anyio.to_thread.run_sync(lambda: am.db.on_commit(lambda: ran.append("x")))
            raise Boom
    assert ran == []


@pytest.mark.anyio
async def test_sync_transaction_in_a_worker_thread_runs_async_callbacks_on_the_loop(
    am: Models,
) -> None:
    ran: list[tuple[str, int]] = []

    async def send() -> None:
        await anyio.sleep(0)
        ran.append(("async", count_rows(am, "users")))

    def in_worker() -> None:
        with am.db.transaction():  # no async transaction here: a sync one of its own
            am.User.create(user(1))
            am.db.on_commit(send)
            am.db.on_commit(lambda: ran.append(("sync", count_rows(am, "users"))))
        assert ran == [("async", 1), ("sync", 1)]  # both done before the block's exit returns
        am.db.on_commit(send)  # statement mode: at once, on the loop
        assert ran[-1] == ("async", 1)

    await anyio.to_thread.run_sync(in_worker)


# -- model hooks -----------------------------------------------------------------


@dataclass
class Signups:
    db: Database
    Signup: Any
    seen: list[tuple[str, int]]  # (email, rows committed when the callback ran)


def define_signups(db: Database) -> Signups:
    seen: list[tuple[str, int]] = []

    class Signup(db.Model):
        __tablename__ = "signups"
        id: Mapped[int] = mapped_column(primary_key=True)
        email: Mapped[str] = mapped_column(String(255), unique=True)

        def validate(self) -> None:  # a hook registering work for after the write
            email = self.email
            db.on_commit(lambda: seen.append((email, count_rows(models, "signups"))))

    models = Signups(db, Signup, seen)
    return models


@pytest.fixture
def signups(url: str) -> Iterator[Signups]:
    with tables(Database(url), define_signups) as models:
        yield models


@pytest.fixture
async def asignups(url: str) -> AsyncIterator[Signups]:
    async with async_tables(Database(url), define_signups) as models:
        yield models


def test_a_hook_in_statement_mode_waits_for_its_statements_commit_sync(signups: Signups) -> None:
    signups.Signup.create(email="a@x.io")
    assert signups.seen == [("a@x.io", 1)]  # ran after the INSERT committed
    with pytest.raises(IntegrityError):
        signups.Signup.create(email="a@x.io")  # the write fails: its callback is dropped
    assert signups.seen == [("a@x.io", 1)]
    with signups.db.transaction():
        signups.Signup.create(email="b@x.io")
        assert signups.seen == [("a@x.io", 1)]  # in a block: after the block's COMMIT
    assert signups.seen == [("a@x.io", 1), ("b@x.io", 2)]


@pytest.mark.anyio
async def test_a_hook_in_statement_mode_waits_for_its_statements_commit_async(
    asignups: Signups,
) -> None:
    await asignups.Signup.create(email="a@x.io")
    assert asignups.seen == [("a@x.io", 1)]
    with pytest.raises(IntegrityError):
        await asignups.Signup.create(email="a@x.io")
    assert asignups.seen == [("a@x.io", 1)]
    async with asignups.db.transaction():
        await asignups.Signup.create(email="b@x.io")
        assert asignups.seen == [("a@x.io", 1)]  # in a block: after the block's COMMIT
    assert asignups.seen == [("a@x.io", 1), ("b@x.io", 2)]
