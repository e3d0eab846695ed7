"""Statement mode and db.transaction(): commit, rollback, SAVEPOINTs, isolation between tasks."""

from __future__ import annotations

import asyncio

import anyio
import pytest
from sqlalchemy import inspect, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session, defer

from duo_orm import IntegrityError, UnsupportedOperationError, ValidationError

from .conftest import count_rows, user_emails
from .models import Models
from .test_crud import column_state


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


def stored_users(models: Models) -> list[tuple[object, ...]]:
    """Every user row as (email, name, age, updated_at), read outside the session under test."""
    with models.db.sync_standalone_session() as session:
        query = select(
            models.User.email, models.User.name, models.User.age, models.User.updated_at
        ).order_by(models.User.email)
        return [tuple(row) for row in session.execute(query)]


def test_refused_update_inside_a_transaction_leaves_nothing_to_commit(m: Models) -> None:
    m.User.create(user(1))
    m.User.create(user(2))
    rows = stored_users(m)
    with m.db.transaction() as session:
        expired = m.User.get(1)
        session.expire(expired, ["name"])
        loaded = m.User.get(2)
        for instance in (expired, loaded):
            before = column_state(instance)
            with pytest.raises(ValidationError):
                instance.update(name="invalid")
            assert column_state(instance) == before
            assert not session.is_modified(instance) and instance not in session.dirty
        m.User.create(user(3))  # the rest of the block commits
    assert stored_users(m)[:2] == rows  # no NULL name, no new updated_at
    assert user_emails(m) == ["u1@x.io", "u2@x.io", "u3@x.io"]


@pytest.mark.anyio
async def test_refused_update_inside_a_transaction_leaves_nothing_to_commit_async(
    am: Models,
) -> None:
    await am.User.create(user(1))
    await am.User.create(user(2))
    rows = stored_users(am)
    async with am.db.transaction() as session:
        expired = await am.User.get(1)
        session.expire(expired, ["name"])
        loaded = await am.User.get(2)
        loaded.age = 7  # a change of its own, made before the refused update: kept
        for instance in (expired, loaded):
            before = column_state(instance)
            with pytest.raises(ValidationError):
                await instance.update(name=None)  # refused by the column check
            assert column_state(instance) == before
        assert not session.is_modified(expired) and session.is_modified(loaded)
        await am.User.create(user(3))
    stored = stored_users(am)
    assert stored[0] == rows[0]
    assert stored[1][:3] == ("u2@x.io", "user 2", 7)
    assert [row[0] for row in stored] == ["u1@x.io", "u2@x.io", "u3@x.io"]


def test_refused_update_keeps_an_attribute_deferred_by_a_query_option(m: Models) -> None:
    m.User.create(user(1))
    with m.db.transaction() as session:
        loaded = session.scalars(select(m.User).options(defer(m.User.email))).one()
        before = column_state(loaded)
        with pytest.raises(ValidationError):
            loaded.update(name="invalid")  # validate() loads email on the way
        assert column_state(loaded) == before
        assert loaded.email == "u1@x.io"  # unloaded again, and still loadable


def test_refused_update_keeps_a_pending_instance_pending(m: Models) -> None:
    with m.db.transaction() as session:
        fresh = m.User.from_schema(user(1))
        session.add(fresh)
        before = column_state(fresh)
        with pytest.raises(ValidationError):
            fresh.update(name="invalid")
        assert column_state(fresh) == before
        assert inspect(fresh).pending and fresh in session
    assert stored_users(m)[0][:2] == ("u1@x.io", "user 1")  # inserted at commit, as before


@pytest.mark.anyio
async def test_refused_update_leaves_an_outside_instance_outside_the_transaction_async(
    am: Models,
) -> None:
    created = await am.User.create(user(1))
    rows = stored_users(am)
    before = column_state(created)
    async with am.db.transaction() as session:
        with pytest.raises(ValidationError):
            await created.update(name="invalid")
        assert created not in session and column_state(created) == before
        assert (await am.User.get(1)) is not created
    assert inspect(created).detached
    assert stored_users(am) == rows


def test_update_refused_by_the_database_in_a_savepoint_leaves_the_instance_usable(
    m: Models,
) -> None:
    m.User.create(user(1))
    m.User.create(user(2))
    with m.db.transaction() as session:
        second = m.User.get(2)
        session.expire(second, ["name"])
        before = column_state(second)
        with pytest.raises(IntegrityError), m.db.transaction():
            second.update(email="u1@x.io")
        assert column_state(second) == before
        assert (second.email, second.name) == ("u2@x.io", "user 2")
        second.update(age=4)
    assert stored_users(m)[1][:3] == ("u2@x.io", "user 2", 4)


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
    engine = m.db.sync_engine
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
