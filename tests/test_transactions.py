"""Statement mode and db.transaction(): commit, rollback, SAVEPOINTs, isolation between tasks."""

from __future__ import annotations

import asyncio

import anyio
import pytest
from sqlalchemy import inspect, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from duo_orm import IntegrityError, UnsupportedOperationError, ValidationError

from .conftest import count_rows, user_emails
from .models import Models


def user(n: int) -> dict[str, object]:
    return {"email": f"u{n}@x.io", "name": f"user {n}"}


class Boom(Exception):
    pass


def test_transaction_commits_on_exit_sync(m: Models) -> None:
    with m.db.transaction() as session:
        assert isinstance(session, Session)
        assert m.db.in_transaction
        first = m.User.create(user(1))
        second = m.User.create(user(2))
        assert m.User.get(first.id) is first  # one identity map for the block
    assert not m.db.in_transaction
    assert inspect(second).detached and second.email == "u2@x.io"
    assert count_rows(m, "users") == 2


def test_transaction_rolls_back_on_exception_sync(m: Models) -> None:
    with pytest.raises(Boom), m.db.transaction():
        m.User.create(user(1))
        raise Boom
    assert count_rows(m, "users") == 0


@pytest.mark.anyio
async def test_transaction_commit_and_rollback_async(am: Models) -> None:
    async with am.db.transaction() as session:
        assert isinstance(session, AsyncSession)
        await am.User.create(user(1))
    with pytest.raises(Boom):
        async with am.db.transaction():
            await am.User.create(user(2))
            raise Boom
    assert await am.User.get(1) is not None
    assert await am.User.get(2) is None


def test_nested_transaction_is_a_savepoint_sync(m: Models) -> None:
    with m.db.transaction():
        m.User.create(user(1))
        with pytest.raises(Boom), m.db.transaction():
            m.User.create(user(2))
            raise Boom
        with m.db.transaction():
            m.User.create(user(3))
    with m.db.sync_standalone_session() as session:
        emails = session.scalars(select(m.User.email).order_by(m.User.email)).all()
    assert emails == ["u1@x.io", "u3@x.io"]


@pytest.mark.anyio
async def test_nested_transaction_is_a_savepoint_async(am: Models) -> None:
    async with am.db.transaction():
        await am.User.create(user(1))
        with pytest.raises(IntegrityError):
            async with am.db.transaction():  # a write that may fail goes in a savepoint
                await am.User.create(user(1))
        await am.User.create(user(2))
    assert user_emails(am) == ["u1@x.io", "u2@x.io"]


def test_validation_error_inside_transaction_leaves_it_usable(m: Models) -> None:
    with m.db.transaction():
        with pytest.raises(ValidationError):
            m.User.create(email="bad", name="x")
        m.User.create(user(1))
    assert count_rows(m, "users") == 1


def test_commit_failure_raises_and_writes_nothing(m: Models) -> None:
    from sqlalchemy import text

    with m.db.sync_standalone_session() as session:  # a constraint checked only at COMMIT
        session.execute(
            text(
                "CREATE TABLE notes (id INTEGER PRIMARY KEY, user_id INTEGER "
                "REFERENCES users(id) DEFERRABLE INITIALLY DEFERRED)"
            )
        )
        session.commit()
    with pytest.raises(IntegrityError) as info, m.db.transaction() as session:
        m.User.create(user(1))
        session.execute(text("INSERT INTO notes (id, user_id) VALUES (1, 999)"))
    assert info.value.kind == "foreign_key"
    assert count_rows(m, "users") == 0


def test_transaction_that_touches_nothing_takes_no_connection(m: Models) -> None:
    engine = m.db._engines.sync_engine()
    with m.db.transaction():
        assert engine.pool.checkedout() == 0
    assert engine.pool.checkedout() == 0


@pytest.mark.anyio
async def test_concurrent_tasks_each_get_their_own_transaction(am: Models) -> None:
    sessions: dict[str, object] = {}

    async def work(name: str, n: int, fail: bool) -> None:
        async with am.db.transaction() as session:
            sessions[name] = session
            await am.User.create(user(n))
            await anyio.sleep(0.05)  # both transactions are open at once
            if fail:
                raise Boom

    async def guarded(name: str, n: int, fail: bool) -> None:
        with pytest.raises(Boom) if fail else _nothing():
            await work(name, n, fail)

    async with anyio.create_task_group() as tg:
        tg.start_soon(guarded, "a", 1, True)
        tg.start_soon(guarded, "b", 2, False)
    assert sessions["a"] is not sessions["b"]
    async with am.db.standalone_session() as session:  # SQLite reuses rolled-back ids
        emails = (await session.scalars(select(am.User.email))).all()
    assert emails == ["u2@x.io"]
    assert not am.db.in_transaction


@pytest.mark.anyio
async def test_two_tasks_sharing_one_transaction_at_once_is_refused(am: Models) -> None:
    async with am.db.transaction():
        results = await asyncio.gather(
            am.User.create(user(1)), am.User.create(user(2)), return_exceptions=True
        )
        errors = [r for r in results if isinstance(r, BaseException)]
        assert len(errors) == 1 and isinstance(errors[0], UnsupportedOperationError)
        assert "same time" in str(errors[0])


@pytest.mark.anyio
async def test_task_outliving_its_transaction_falls_back_to_statement_mode(am: Models) -> None:
    started = anyio.Event()
    release = anyio.Event()

    async def later() -> None:
        started.set()
        await release.wait()
        await am.User.create(user(2))  # its context still names the finished transaction

    async with anyio.create_task_group() as tg:
        async with am.db.transaction():
            await am.User.create(user(1))
            tg.start_soon(later)
            await started.wait()
        release.set()
    assert await am.User.get(2) is not None


def test_async_block_inside_sync_transaction_is_refused(m: Models) -> None:
    with m.db.transaction():

        async def inner() -> None:
            async with m.db.transaction():
                pass

        with pytest.raises(UnsupportedOperationError):
            asyncio.run(inner())


def test_block_cannot_be_entered_twice(m: Models) -> None:
    block = m.db.transaction()
    with block:
        pass
    with pytest.raises(UnsupportedOperationError), block:
        pass


class _nothing:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *args: object) -> None:
        return None
