"""PostgreSQL-only behaviour: conflict errors from SQLSTATE and the PostgreSQL types."""

from __future__ import annotations

import threading
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import event, text

from duo_orm import (
    JSON,
    PG_ARRAY,
    PG_JSONB,
    PG_UUID,
    Database,
    DatabaseBusyError,
    DatabaseError,
    Integer,
    Mapped,
    String,
    TransactionConflictError,
    mapped_column,
)

from .conftest import async_tables, tables

pytestmark = pytest.mark.postgres


@dataclass
class Store:
    db: Database
    Account: Any
    Document: Any


def define_store(db: Database) -> Store:
    class Account(db.Model):
        __tablename__ = "accounts"
        id: Mapped[int] = mapped_column(primary_key=True)
        balance: Mapped[int]

    class Document(db.Model):
        __tablename__ = "documents"
        id: Mapped[int] = mapped_column(primary_key=True)
        public_id: Mapped[uuid.UUID] = mapped_column(PG_UUID(as_uuid=True), default=uuid.uuid4)
        body: Mapped[dict[str, Any]] = mapped_column(PG_JSONB)
        meta: Mapped[dict[str, Any] | None] = mapped_column(JSON)
        tags: Mapped[list[str]] = mapped_column(PG_ARRAY(String(30)))
        scores: Mapped[list[int] | None] = mapped_column(PG_ARRAY(Integer))

    return Store(db, Account, Document)


SNAPSHOTS = {"isolation_level": "REPEATABLE READ"}


@pytest.fixture
def store(url: str) -> Iterator[Store]:
    with tables(Database(url, engine_options=SNAPSHOTS), define_store) as models:
        yield models


@pytest.fixture
async def astore(url: str) -> AsyncIterator[Store]:
    async with async_tables(Database(url, engine_options=SNAPSHOTS), define_store) as models:
        yield models


def test_serialization_failure_is_a_retryable_conflict_sync(store: Store) -> None:
    account = store.Account.create(id=1, balance=10)
    other_committed = threading.Event()

    def concurrent_update() -> None:
        store.Account.get_one(1).update(balance=20)  # statement mode: commits at once
        other_committed.set()

    with pytest.raises(TransactionConflictError) as info, store.db.transaction():
        assert store.Account.get_one(1).balance == 10  # the snapshot is taken here
        worker = threading.Thread(target=concurrent_update)
        worker.start()
        worker.join()
        assert other_committed.is_set()
        store.Account.get_one(account.id).update(balance=11)
    assert info.value.retryable is True
    assert isinstance(info.value, DatabaseError)
    assert store.Account.get_one(1).balance == 20  # the losing transaction wrote nothing


@pytest.mark.anyio
async def test_serialization_failure_is_a_retryable_conflict_async(astore: Store) -> None:
    await astore.Account.create(id=1, balance=10)
    with pytest.raises(TransactionConflictError) as info:
        async with astore.db.transaction():
            assert (await astore.Account.get_one(1)).balance == 10

            async with astore.db.standalone_session() as other:  # an independent writer
                await other.execute(text("UPDATE accounts SET balance = 20 WHERE id = 1"))
                await other.commit()
            await (await astore.Account.get_one(1)).update(balance=11)
    assert info.value.retryable is True
    assert (await astore.Account.get_one(1)).balance == 20


def test_deadlock_is_a_retryable_conflict(store: Store) -> None:
    store.Account.create_bulk([store.Account(id=1, balance=0), store.Account(id=2, balance=0)])
    both_locked = threading.Barrier(2, timeout=10)
    errors: list[BaseException] = []

    def transfer(first: int, second: int) -> None:
        try:
            with store.db.transaction() as session:
                session.execute(
                    text("UPDATE accounts SET balance = balance + 1 WHERE id = :i"), {"i": first}
                )
                both_locked.wait()
                store.Account.get_one(second).update(balance=5)
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=transfer, args=pair) for pair in ((1, 2), (2, 1))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(errors) == 1, errors
    assert isinstance(errors[0], TransactionConflictError)
    assert errors[0].retryable


def test_postgresql_types_round_trip_sync(store: Store) -> None:
    doc = store.Document.create(
        body={"title": "a", "n": [1, 2]}, meta={"k": None}, tags=["x", "y"], scores=[3, 1]
    )
    loaded = store.Document.get_one(doc.id)
    assert loaded.body == {"title": "a", "n": [1, 2]}
    assert loaded.meta == {"k": None}
    assert loaded.tags == ["x", "y"] and loaded.scores == [3, 1]
    assert isinstance(loaded.public_id, uuid.UUID) and loaded.public_id == doc.public_id
    with store.db.transaction() as session:  # JSONB and ARRAY operators work on the columns
        hit = session.scalars(
            store.Document.__table__.select()
            .with_only_columns(store.Document.id)
            .where(store.Document.body["title"].astext == "a")
            .where(store.Document.tags.contains(["y"]))
        ).all()
    assert hit == [doc.id]


@pytest.mark.anyio
async def test_postgresql_types_round_trip_async(astore: Store) -> None:
    doc = await astore.Document.create(body={"a": {"b": True}}, tags=[], scores=None)
    await doc.update(body={"a": {"b": False}}, tags=["new"])
    loaded = await astore.Document.get_one(doc.id)
    assert loaded.body == {"a": {"b": False}} and loaded.tags == ["new"]
    assert loaded.scores is None and loaded.meta is None


def test_a_lock_wait_that_times_out_is_a_retryable_busy_error(url: str) -> None:
    db = Database(url, engine_options={"connect_args": {"options": "-c lock_timeout=100"}})
    with tables(db, define_store) as models:
        models.Account.create(id=1, balance=10)
        with db.sync_standalone_session() as holder:  # another connection locks the row
            holder.execute(text("SELECT * FROM accounts WHERE id = 1 FOR UPDATE"))
            with pytest.raises(DatabaseBusyError) as info:
                models.Account.get_one(1).update(balance=11)
            holder.rollback()
        assert info.value.retryable is True
        models.Account.get_one(1).update(balance=11)  # the retry succeeds
        assert models.Account.get_one(1).balance == 11


def test_a_lone_read_runs_in_autocommit_and_writes_in_a_transaction(store: Store) -> None:
    """One round trip for a read: psycopg sends no BEGIN, so no transaction is left
    open after the statement; a write's statements run inside one."""
    from psycopg.pq import TransactionStatus  # the sync side is psycopg for every URL

    seen: list[tuple[str, bool]] = []

    @event.listens_for(store.db._engines.sync_engine(), "after_cursor_execute")
    def record(conn: Any, cursor: Any, statement: str, *_args: Any) -> None:
        status = conn.connection.dbapi_connection.info.transaction_status
        seen.append((statement.split()[0], status == TransactionStatus.INTRANS))

    account = store.Account.create(id=1, balance=10)
    assert seen == [("INSERT", True)]
    seen.clear()
    store.Account.get(1)
    store.Account.where(store.Account.balance > 0).all()
    store.Account.count()
    assert seen == [("SELECT", False)] * 3
    seen.clear()
    account.update(balance=11)
    assert seen == [("UPDATE", True)]
