"""Dispatch: one call, sync or awaitable by where it runs.

Worker threads joining an async transaction (and not joining when they should not),
the same calls in plain scripts and in fresh event loops, the combinations that are
refused, and model hooks whose own ORM calls run on the flushing session.

Complements ``test_threads.py`` with the cases that file does not exercise.
"""

from __future__ import annotations

import asyncio
import contextvars
import inspect as pyinspect
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
import pytest
from sqlalchemy import inspect

from duo_orm import Database, UnsupportedOperationError, ValidationError

from .conftest import count_rows, user_emails
from .models import Models, define_models


class Boom(Exception):
    pass


def user(n: int) -> dict[str, object]:
    return {"email": f"u{n}@x.io", "name": f"user {n}"}


def session_of(instance: object) -> object:
    return inspect(instance).session


# -- worker threads inside an async transaction ----------------------------------------


@pytest.mark.anyio
async def test_worker_write_depends_on_the_loops_uncommitted_row_and_rolls_back(
    am: Models,
) -> None:
    def in_worker(customer_id: int) -> tuple[bool, Any, Any]:
        # the customer exists only inside the transaction: a second connection would
        # fail this insert with a foreign-key error (or wait on a lock)
        order = am.Order.create(total=3, customer_id=customer_id)
        return am.db.in_transaction, am.Customer.get(customer_id), order

    with pytest.raises(Boom):
        async with am.db.transaction() as session:
            customer = await am.Customer.create(name="uncommitted")
            joined, seen, order = await anyio.to_thread.run_sync(in_worker, customer.id)
            assert joined is True
            assert seen is customer  # the same identity map, hence the same session
            assert session_of(order) is session.sync_session
            assert await am.Order.count() == 1
            raise Boom
    assert count_rows(am, "orders") == 0 and count_rows(am, "customers") == 0


@pytest.mark.anyio
async def test_worker_writes_commit_with_the_async_transaction(am: Models) -> None:
    async with am.db.transaction():
        customer = await am.Customer.create(name="c")

        def add_order(total: int) -> Any:
            return am.Order.create(total=total, customer_id=customer.id)

        for n in range(3):  # several hand-offs, one after another, all in the block
            await anyio.to_thread.run_sync(add_order, n)
        await asyncio.to_thread(lambda: am.User.create(user(1)))  # also copies the context
        assert await am.Order.count() == 3
    assert count_rows(am, "orders") == 3 and user_emails(am) == ["u1@x.io"]


@pytest.mark.anyio
async def test_worker_error_reaches_the_loop_and_the_transaction_goes_on(am: Models) -> None:
    async with am.db.transaction():
        await am.User.create(user(1))
        with pytest.raises(ValidationError) as info:
            await anyio.to_thread.run_sync(lambda: am.User.create(email="no-at-sign", name="bad"))
        assert info.value.field == "email"
        await anyio.to_thread.run_sync(lambda: am.User.create(user(2)))
    assert user_emails(am) == ["u1@x.io", "u2@x.io"]


@pytest.mark.anyio
async def test_worker_reads_and_streams_the_transactions_rows(am: Models) -> None:
    def in_worker() -> tuple[int, list[str], list[str]]:
        streamed = [u.email for u in am.User.iterate(batch_size=2)]
        queried = [u.email for u in am.User.order_by("-id").all()]
        return am.User.count(), streamed, queried

    with pytest.raises(Boom):
        async with am.db.transaction():
            for n in range(1, 6):
                await am.User.create(user(n))
            count, streamed, queried = await anyio.to_thread.run_sync(in_worker)
            assert count == 5
            assert streamed == [f"u{n}@x.io" for n in range(1, 6)]
            assert queried == list(reversed(streamed))
            raise Boom
    assert count_rows(am, "users") == 0


@pytest.mark.anyio
async def test_worker_update_and_delete_of_loop_loaded_rows_share_the_transaction(
    am: Models,
) -> None:
    first = await am.User.create(user(1))
    second = await am.User.create(user(2))
    with pytest.raises(Boom):
        async with am.db.transaction():
            loaded = await am.User.get(first.id)
            await anyio.to_thread.run_sync(lambda: loaded.update(name="renamed"))
            gone = await am.User.get(second.id)
            await anyio.to_thread.run_sync(gone.delete)
            assert (await am.User.get_one(first.id)).name == "renamed"
            assert await am.User.get(second.id) is None
            raise Boom
    assert (await am.User.get_one(first.id)).name == "user 1"  # both undone
    assert await am.User.get(second.id) is not None


@pytest.mark.anyio
async def test_plain_thread_without_the_context_does_not_join(am: Models) -> None:
    seen: list[bool] = []

    def plain_thread() -> None:  # threading.Thread starts with an empty context
        seen.append(am.db.in_transaction)
        am.User.create(user(1))  # statement mode: its own session, committed now

    with pytest.raises(Boom):
        async with am.db.transaction():
            thread = threading.Thread(target=plain_thread)
            thread.start()
            await anyio.to_thread.run_sync(thread.join)
            await am.User.create(user(2))
            raise Boom
    assert seen == [False]
    assert user_emails(am) == ["u1@x.io"]  # the block's rollback did not take it


@pytest.mark.anyio
async def test_context_kept_past_its_transaction_falls_back_to_statement_mode(
    am: Models,
) -> None:
    async with am.db.transaction():
        await am.User.create(user(1))
        kept = contextvars.copy_context()  # e.g. a background job captured in the block

    def later() -> tuple[bool, Any]:
        return am.db.in_transaction, am.User.create(user(2))

    joined, created = await anyio.to_thread.run_sync(kept.run, later)
    assert joined is False
    assert inspect(created).detached and created.email == "u2@x.io"
    assert user_emails(am) == ["u1@x.io", "u2@x.io"]


# -- worker threads with no ambient transaction ---------------------------------------


@pytest.mark.anyio
async def test_worker_without_a_transaction_commits_each_call(am: Models) -> None:
    def in_worker() -> tuple[bool, Any, int]:
        created = am.User.create(user(1))
        return am.db.in_transaction, created, count_rows(am, "users")

    joined, created, committed = await anyio.to_thread.run_sync(in_worker)
    assert joined is False
    assert committed == 1  # visible to another connection before the thread returned
    assert inspect(created).detached and created.name == "user 1"  # detached, loaded
    assert created.created_at is not None


@pytest.mark.anyio
async def test_worker_is_not_captured_by_another_databases_transaction(am: Models) -> None:
    other = Database("sqlite:///:memory:")
    others = define_models(other)
    await other.create_all()
    try:
        with pytest.raises(Boom):
            async with other.transaction():
                await others.User.create(user(9))
                assert not am.db.in_transaction
                await anyio.to_thread.run_sync(lambda: am.User.create(user(1)))
                raise Boom
        assert user_emails(am) == ["u1@x.io"]  # am's call ran in statement mode
        assert await others.User.count() == 0
    finally:
        await other.disconnect()


# -- the same call in scripts and in fresh event loops --------------------------------


def test_same_calls_in_a_script_and_in_two_event_loops(m: Models) -> None:
    assert m.User.create(user(1)).id == 1  # plain script: a value

    async def in_loop(n: int) -> tuple[bool, int, list[str]]:
        pending = m.User.count()
        awaitable = pyinspect.isawaitable(pending)
        await pending
        async with m.db.transaction():
            await m.User.create(user(n))
        emails = [u.email async for u in m.User.order_by("id").iterate()]
        return awaitable, await m.User.count(), emails

    assert asyncio.run(in_loop(2)) == (True, 2, ["u1@x.io", "u2@x.io"])
    with m.db.transaction():  # sync code between the loops still works
        m.User.create(user(3))
    awaitable, count, emails = asyncio.run(in_loop(4))  # a fresh loop: a fresh async engine
    assert (awaitable, count) == (True, 4) and emails[-1] == "u4@x.io"
    assert anyio.run(lambda: m.User.count()) == 4  # anyio.run works the same way
    assert [u.email for u in m.User.order_by("id").iterate()] == emails


def test_memory_database_survives_across_event_loops() -> None:
    db = Database("sqlite:///:memory:")
    models = define_models(db)

    async def setup() -> None:
        await db.create_all()
        await models.User.create(user(1))

    async def read() -> list[str]:
        return [u.email for u in await models.User.all()]

    asyncio.run(setup())
    assert asyncio.run(read()) == ["u1@x.io"]  # the first loop's engine is gone, the data not
    assert [u.email for u in models.User.all()] == ["u1@x.io"]
    db.disconnect()


@pytest.mark.anyio
async def test_sync_and_async_flavours_of_one_call_agree(am: Models) -> None:
    await am.User.create(user(1))
    in_loop = await am.User.where(am.User.email.icontains("U1")).one()
    in_thread = await anyio.to_thread.run_sync(
        lambda: am.User.where(am.User.email.icontains("U1")).one()
    )
    assert in_loop.to_dict() == in_thread.to_dict()
    assert in_loop is not in_thread  # two statement sessions, two detached copies


# -- refused combinations -------------------------------------------------------------


def test_async_calls_inside_a_sync_transaction_are_refused(m: Models) -> None:
    with m.db.transaction():
        m.User.create(user(1))

        async def nested_loop() -> list[str]:
            refused: list[str] = []
            attempts: list[Callable[[], Any]] = [
                lambda: m.User.count(),
                lambda: m.User.create(user(2)),
                lambda: m.User.get(1),
            ]
            for attempt in attempts:
                with pytest.raises(UnsupportedOperationError, match=r"sync db\.transaction"):
                    await attempt()
                refused.append("call")
            with pytest.raises(UnsupportedOperationError, match=r"sync db\.transaction"):
                async for _ in m.User.iterate():
                    pass
            refused.append("iterate")
            with pytest.raises(UnsupportedOperationError):
                async with m.db.transaction():
                    pass
            refused.append("block")
            return refused

        assert asyncio.run(nested_loop()) == ["call", "call", "call", "iterate", "block"]
        m.User.create(user(3))  # the sync transaction is untouched and goes on
        assert m.db.in_transaction
    assert user_emails(m) == ["u1@x.io", "u3@x.io"]


def test_event_loop_in_a_thread_with_a_sync_transactions_context_is_refused(m: Models) -> None:
    errors: list[BaseException] = []

    async def use() -> None:
        await m.User.count()

    def thread_body(context: contextvars.Context) -> None:
        try:
            context.run(asyncio.run, use())
        except BaseException as exc:
            errors.append(exc)

    with m.db.transaction():
        m.User.create(user(1))
        thread = threading.Thread(target=thread_body, args=(contextvars.copy_context(),))
        thread.start()
        thread.join()
    assert len(errors) == 1 and isinstance(errors[0], UnsupportedOperationError)
    assert count_rows(m, "users") == 1


@pytest.mark.anyio
async def test_sync_block_on_the_loop_thread_is_refused_and_the_async_one_survives(
    am: Models,
) -> None:
    async with am.db.transaction():
        await am.User.create(user(1))
        with pytest.raises(UnsupportedOperationError, match="async with"), am.db.transaction():
            pass
        await am.User.create(user(2))
    assert user_emails(am) == ["u1@x.io", "u2@x.io"]


# -- model hooks that make ORM calls --------------------------------------------------


@pytest.fixture
def hooked(m: Models) -> Iterator[list[tuple[object, object]]]:
    """Order.validate() loads the customer through the ORM and records both sessions."""
    calls: list[tuple[object, object]] = []

    def validate(order: Any) -> None:
        owner = m.Customer.get(order.customer_id)
        calls.append((session_of(order), session_of(owner) if owner is not None else None))
        if owner is None or owner.name == "blocked":
            raise ValidationError("customer may not order", field="customer_id")

    m.Order.validate = validate
    yield calls


def test_hook_orm_call_runs_on_the_flushing_session_sync(
    m: Models, hooked: list[tuple[object, object]]
) -> None:
    customer = m.Customer.create(name="ok")
    m.Order.create(total=1, customer_id=customer.id)  # statement mode
    with m.db.transaction() as block:
        fresh = m.Customer.create(name="uncommitted")  # visible only on this session
        m.Order.create(total=2, customer_id=fresh.id)
    blocked = m.Customer.create(name="blocked")
    with pytest.raises(ValidationError):
        m.Order.create(total=3, customer_id=blocked.id)

    assert len(hooked) == 3
    for flushing, read_on in hooked:
        assert read_on is flushing  # the hook's read used the session being flushed
    assert hooked[1][0] is block
    assert count_rows(m, "orders") == 2


@pytest.mark.anyio
async def test_hook_orm_call_runs_on_the_flushing_session_async(am: Models) -> None:
    sessions: list[tuple[object, object]] = []

    def validate(order: Any) -> None:
        owner = am.Customer.get(order.customer_id)  # a plain value here, never an awaitable
        assert not pyinspect.isawaitable(owner)
        sessions.append((session_of(order), session_of(owner)))

    am.Order.validate = validate
    customer = await am.Customer.create(name="ok")
    await am.Order.create(total=1, customer_id=customer.id)
    async with am.db.transaction() as block:
        fresh = await am.Customer.create(name="uncommitted")
        await am.Order.create(total=2, customer_id=fresh.id)
        await anyio.to_thread.run_sync(lambda: am.Order.create(total=3, customer_id=fresh.id))
    assert len(sessions) == 3
    assert all(flushing is read_on for flushing, read_on in sessions)
    assert sessions[1][0] is block.sync_session and sessions[2][0] is block.sync_session
    assert count_rows(am, "orders") == 3


def test_hook_reading_another_database_uses_that_database(m: Models, tmp_path: Path) -> None:
    registry = Database(f"sqlite:///{tmp_path / 'registry.db'}")
    reg = define_models(registry)
    registry.create_all()
    reg.Customer.create(name="allowed")

    def validate(order: Any) -> None:
        if not reg.Customer.where(reg.Customer.name == "allowed").exists():
            raise ValidationError("not registered", field="customer_id")

    m.Order.validate = validate
    customer = m.Customer.create(name="c")
    assert m.Order.create(total=1, customer_id=customer.id).total == 1
    reg.Customer.where(reg.Customer.name == "allowed").delete_bulk()
    with pytest.raises(ValidationError):
        m.Order.create(total=2, customer_id=customer.id)

    async def in_loop() -> None:
        await reg.Customer.create(name="allowed")
        async with m.db.transaction():
            await m.Order.create(total=3, customer_id=customer.id)

    asyncio.run(in_loop())
    assert count_rows(m, "orders") == 2
    registry.disconnect()
