"""Async SQLite statements in one hop to aiosqlite's thread (duo_orm._aiosqlite_hops).

What a user relies on: async transactions on SQLite give the same rows, counts, keys
and errors as before, long results still stream in bounded batches, the write lock is
taken with the transaction's first statement, and a write transaction costs two hops
(BEGIN with the INSERT, then COMMIT) instead of eight.
"""

from __future__ import annotations

import sqlite3
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiosqlite
import pytest
from sqlalchemy import select, text

from duo_orm import Database, DatabaseBusyError, IntegrityError
from duo_orm._aiosqlite_hops import BATCH

from .conftest import async_tables, sqlite_write_lock
from .models import Models, define_models

pytestmark = pytest.mark.anyio


@pytest.fixture
def hops(monkeypatch: pytest.MonkeyPatch) -> Iterator[Counter[str]]:
    """Every call aiosqlite runs in its thread, by name (counted, then run as usual)."""
    seen: Counter[str] = Counter()
    run = aiosqlite.Connection._execute

    async def counted(self: Any, fn: Any, *args: Any, **kwargs: Any) -> Any:
        seen[getattr(fn, "__name__", "call")] += 1
        return await run(self, fn, *args, **kwargs)

    monkeypatch.setattr(aiosqlite.Connection, "_execute", counted)
    yield seen


@pytest.fixture
async def sm(tmp_path: Path) -> AsyncIterator[Models]:
    async with async_tables(Database(f"sqlite:///{tmp_path / 'hops.db'}"), define_models) as m:
        yield m


async def test_a_write_in_a_transaction_is_one_hop_per_statement(
    sm: Models, hops: Counter[str]
) -> None:
    await sm.Customer.create(name="warm")  # the pool's connection is made
    hops.clear()
    async with sm.db.transaction():
        customer = await sm.Customer.create(name="a")
    assert customer.id == 2  # the key came back from the INSERT
    assert sum(hops.values()) == 2  # BEGIN IMMEDIATE with the INSERT, then COMMIT


async def test_the_held_begin_takes_the_write_lock_with_the_first_statement(
    sm: Models, tmp_path: Path
) -> None:
    other = sqlite3.connect(tmp_path / "hops.db", timeout=0, isolation_level=None)
    async with sm.db.transaction():
        other.execute("BEGIN IMMEDIATE")  # nothing sent yet: the lock is free
        other.execute("ROLLBACK")
        await sm.Customer.create(name="a")
        with pytest.raises(sqlite3.OperationalError, match="locked"):
            other.execute("BEGIN IMMEDIATE")
    other.execute("BEGIN IMMEDIATE")  # committed: free again
    other.execute("ROLLBACK")
    async with sm.db.transaction():
        pass  # began and ended without a statement: nothing was sent, nothing is held
    other.execute("BEGIN IMMEDIATE")
    other.execute("ROLLBACK")
    other.close()
    assert await sm.Customer.count() == 1


async def test_a_begin_refused_at_the_first_statement_is_busy_and_lets_the_next_writer_on(
    tmp_path: Path,
) -> None:
    path = tmp_path / "busy.db"
    db = Database(f"sqlite:///{path}", engine_options={"connect_args": {"timeout": 0.2}})
    async with async_tables(db, define_models) as m:
        with sqlite_write_lock(path), pytest.raises(DatabaseBusyError):
            await m.Customer.create(name="waits too long")
        assert (await m.Customer.create(name="next")).name == "next"
        assert await m.Customer.count() == 1


async def test_results_stream_in_batches_and_match_the_table(sm: Models) -> None:
    rows = [{"name": f"c{number:05}"} for number in range(2 * BATCH + 500)]
    await sm.Customer.create_bulk(rows)
    streamed = [customer.name async for customer in sm.Customer.query().iterate(batch_size=300)]
    assert streamed == [row["name"] for row in rows]
    async with sm.db.standalone_session() as session:
        result = await session.stream(select(sm.Customer.name).order_by(sm.Customer.id))
        first = await result.fetchmany(7)
        rest = [row async for row in result]
        assert [name for (name,) in first + rest] == [row["name"] for row in rows]
        total = (await session.execute(text("SELECT count(*) FROM customers"))).scalar_one()
    assert total == len(rows)
    assert await sm.Customer.count() == len(rows)


async def test_counts_keys_and_errors_are_the_drivers(sm: Models) -> None:
    await sm.User.create(email="a@x.io", name="A")
    with pytest.raises(IntegrityError):
        await sm.User.create(email="a@x.io", name="again")
    async with sm.db.standalone_session() as session:
        changed = await session.execute(text("UPDATE users SET name = 'B' WHERE id = 1"))
        assert changed.rowcount == 1
        missed = await session.execute(text("UPDATE users SET name = 'B' WHERE id = 99"))
        assert missed.rowcount == 0
        await session.commit()
    assert (await sm.User.get_one(1)).name == "B"
    assert await sm.User.count() == 1
