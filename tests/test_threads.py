"""Sync/async dispatch: worker threads joining async transactions, fresh event loops, hooks."""

from __future__ import annotations

import asyncio

import anyio
import anyio.to_thread
import pytest

from duo_orm import UnsupportedOperationError, ValidationError

from .conftest import count_rows, user_emails
from .models import Models


class Boom(Exception):
    pass


@pytest.mark.anyio
async def test_worker_thread_write_joins_the_async_transaction_and_rolls_back(am: Models) -> None:
    with pytest.raises(Boom):
        async with am.db.transaction():
            await am.User.create(email="loop@x.io", name="loop")
            created = await anyio.to_thread.run_sync(
                lambda: am.User.create(email="worker@x.io", name="worker")
            )
            assert await am.User.get(created.id) is created  # one session, one identity map
            raise Boom
    assert count_rows(am, "users") == 0  # the worker's write went with the rollback


@pytest.mark.anyio
async def test_worker_thread_write_commits_with_the_async_transaction(am: Models) -> None:
    async with am.db.transaction():
        await anyio.to_thread.run_sync(lambda: am.User.create(email="w@x.io", name="w"))
        assert await am.User.count() == 1  # visible inside, before the commit
        with pytest.raises(UnsupportedOperationError, match="async with"), am.db.transaction():
            pass  # a sync block on the loop's own thread would block the loop
    assert user_emails(am) == ["w@x.io"]


@pytest.mark.anyio
async def test_worker_thread_savepoint_inside_async_transaction(am: Models) -> None:
    def in_thread() -> None:
        am.User.create(email="kept@x.io", name="kept")
        with pytest.raises(Boom), am.db.transaction():  # a SAVEPOINT on the owner's loop
            am.User.create(email="undone@x.io", name="undone")
            raise Boom

    async with am.db.transaction():
        await anyio.to_thread.run_sync(in_thread)
    assert user_emails(am) == ["kept@x.io"]


@pytest.mark.anyio
async def test_worker_thread_without_a_transaction_runs_in_statement_mode(am: Models) -> None:
    user = await anyio.to_thread.run_sync(lambda: am.User.create(email="s@x.io", name="s"))
    assert not am.db.in_transaction
    assert (await am.User.get_one(user.id)).email == "s@x.io"


def test_same_calls_in_two_fresh_event_loops_in_a_row(m: Models) -> None:
    async def work(n: int) -> int:
        await m.User.create(email=f"u{n}@x.io", name="n")
        return int(await m.User.count())

    assert asyncio.run(work(1)) == 1
    assert asyncio.run(work(2)) == 2  # a new loop: the async engine is rebuilt for it
    assert m.User.count() == 2  # and plain sync code still works in between


def test_awaiting_inside_a_sync_transaction_is_refused(m: Models) -> None:
    with m.db.transaction():
        m.User.create(email="a@x.io", name="a")

        async def inner() -> None:
            await m.User.count()

        with pytest.raises(UnsupportedOperationError, match=r"sync db\.transaction"):
            asyncio.run(inner())
    assert count_rows(m, "users") == 1


def test_validate_hook_may_make_orm_calls_on_the_same_session(m: Models) -> None:
    customer = m.Customer.create(name="vip")
    seen: list[bool] = []

    def validate(order: object) -> None:
        owner = m.Customer.get(order.customer_id)  # type: ignore[attr-defined]
        seen.append(owner is not None and m.db.in_transaction is False)
        if owner is None or owner.name != "vip":
            raise ValidationError("only vip customers may order", field="customer_id")

    m.Order.validate = validate
    assert m.Order.create(total=5, customer_id=customer.id).total == 5
    other = m.Customer.create(name="plain")
    with pytest.raises(ValidationError):
        m.Order.create(total=5, customer_id=other.id)
    assert seen == [True, True] and count_rows(m, "orders") == 1


@pytest.mark.anyio
async def test_validate_hook_orm_call_in_async_code(am: Models) -> None:
    customer = await am.Customer.create(name="vip")

    def validate(order: object) -> None:
        # a sync-looking call inside the hook: it runs on the flushing session
        owner = am.Customer.get(order.customer_id)  # type: ignore[attr-defined]
        if owner is None:
            raise ValidationError("unknown customer", field="customer_id")

    am.Order.validate = validate
    async with am.db.transaction():
        assert (await am.Order.create(total=1, customer_id=customer.id)).total == 1
    assert count_rows(am, "orders") == 1


def test_validate_hook_that_writes_is_refused_with_a_typed_error(m: Models) -> None:
    def validate(order: object) -> None:
        m.Customer.create(name="side effect")

    m.Order.validate = validate
    customer = m.Customer.create(name="c")
    with pytest.raises(UnsupportedOperationError, match="already flushing"):
        m.Order.create(total=1, customer_id=customer.id)
    assert count_rows(m, "orders") == 0 and count_rows(m, "customers") == 1
