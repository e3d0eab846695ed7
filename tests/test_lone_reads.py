"""Lone reads without the ORM session (duo_orm.lone_reads), sync and async.

A lone ``get``/``get_one`` of a plainly mapped model skips ``Session.get``, and a
lone ``count``/``exists``/``all``/``first`` runs on a ``Connection``. What a user
relies on: the instance is the one the ORM would have loaded (values, types, detached
state, savable afterwards), and anything that would notice the difference (events,
logging, eager relationships, criteria on every ORM statement) still sees the ORM.
"""

from __future__ import annotations

import datetime as dt
import decimal
import enum
import logging
import uuid
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import anyio
import pytest
from sqlalchemy import event, inspect, select, text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session, reconstructor, with_loader_criteria
from sqlalchemy.pool import NullPool

from duo_orm import (
    JSON,
    Database,
    DateTime,
    ForeignKey,
    Mapped,
    Numeric,
    ObjectNotFoundError,
    String,
    mapped_column,
    relationship,
)

from .conftest import async_tables, tables


class Colour(enum.Enum):
    red = "red"
    blue = "blue"


def define(db: Database) -> Any:
    class Item(db.Model):
        __tablename__ = "items"
        id: Mapped[int] = mapped_column(primary_key=True)
        name: Mapped[str] = mapped_column("item_name", String(50))  # attribute != column
        price: Mapped[decimal.Decimal] = mapped_column(Numeric(10, 2))
        seen_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
        on: Mapped[dt.date]
        active: Mapped[bool]
        colour: Mapped[Colour]
        token: Mapped[uuid.UUID]
        data: Mapped[dict[str, Any] | None] = mapped_column(JSON)
        hidden: Mapped[bool] = mapped_column(default=False)

    class Pair(db.Model):
        __tablename__ = "pairs"
        left: Mapped[int] = mapped_column(primary_key=True)
        right: Mapped[str] = mapped_column(String(10), primary_key=True)
        note: Mapped[str | None] = mapped_column(String(50))

    class Author(db.Model):
        __tablename__ = "authors"
        id: Mapped[int] = mapped_column(primary_key=True)
        books: Mapped[list[Book]] = relationship(back_populates="author")

    class Book(db.Model):
        __tablename__ = "books"
        id: Mapped[int] = mapped_column(primary_key=True)
        author_id: Mapped[int] = mapped_column(ForeignKey("authors.id"))
        author: Mapped[Author] = relationship(back_populates="books", lazy="selectin")

    class Note(db.Model):
        __tablename__ = "notes"
        id: Mapped[int] = mapped_column(primary_key=True)
        text: Mapped[str] = mapped_column(String(50))

        @reconstructor
        def loaded(self) -> None:
            self.from_database = True

    return SimpleNamespace(db=db, Item=Item, Pair=Pair, Author=Author, Book=Book, Note=Note)


ROW = {
    "name": "lamp",
    "price": decimal.Decimal("12.50"),
    "seen_at": dt.datetime(2026, 11, 26, 8, 30, tzinfo=dt.UTC),
    "on": dt.date(2026, 11, 26),
    "active": True,
    "colour": Colour.blue,
    "token": uuid.UUID("12345678-1234-5678-1234-567812345678"),
    "data": {"tags": ["a", "b"], "n": 1},
}


@pytest.fixture
def s(url: str) -> Iterator[Any]:
    with tables(Database(url), define) as models:
        yield models


def orm_loaded(models: Any, model: Any, *key: Any) -> Any:
    """The instance as ``Session.get`` loads it, the session then closed."""
    with Session(models.db.sync_engine) as session:
        return session.get(model, key if len(key) > 1 else key[0])


def loaded_state(instance: Any) -> dict[str, Any]:
    state = inspect(instance)
    values = {key: value for key, value in state.dict.items() if not key.startswith("_")}
    return {
        "values": values,
        "types": {key: type(value) for key, value in values.items()},
        "key": state.key,
        "detached": state.detached,
        "modified": state.modified,
        "expired": state.expired_attributes,
        "unloaded": state.unloaded,
    }


def took_direct_path(model: Any) -> bool:
    plans = model.__dict__.get("__duo_lone_reads__") or {}
    return any(plan is not None for plan in plans.values())


def test_get_builds_the_instance_the_orm_would(s: Any) -> None:
    s.Item.create(**ROW)
    s.Pair.create(left=1, right="x", note="n")
    got, pair = s.Item.get(1), s.Pair.get(1, "x")
    assert took_direct_path(s.Item) and took_direct_path(s.Pair)
    assert loaded_state(got) == loaded_state(orm_loaded(s, s.Item, 1))
    assert loaded_state(pair) == loaded_state(orm_loaded(s, s.Pair, 1, "x"))
    assert {key: getattr(got, key) for key in ROW} == ROW
    assert s.Item.get_one(1).name == "lamp"
    listed = s.Item.where(s.Item.price > 1).order_by("-id").all()
    assert [loaded_state(item) for item in listed] == [loaded_state(got)]
    assert loaded_state(s.Pair.first()) == loaded_state(pair)
    assert s.Item.get(2) is None
    with pytest.raises(ObjectNotFoundError, match="Item id=2 not found"):
        s.Item.get_one(2)


@pytest.mark.anyio
async def test_get_builds_the_instance_the_orm_would_async(url: str) -> None:
    async with async_tables(Database(url), define) as models:
        await models.Item.create(**ROW)
        got = await models.Item.get(1)
        assert took_direct_path(models.Item)
        async with AsyncSession(models.db.async_engine) as session:
            expected = await session.get(models.Item, 1)
        assert loaded_state(got) == loaded_state(expected)
        assert (await models.Item.get_one(1)).colour is Colour.blue
        assert await models.Item.get(2) is None
        with pytest.raises(ObjectNotFoundError):
            await models.Item.get_one(2)


def test_an_instance_read_directly_saves_updates_and_deletes(s: Any) -> None:
    s.Item.create(**ROW)
    item = s.Item.get(1)
    item.name = "desk"
    item.save()
    assert orm_loaded(s, s.Item, 1).name == "desk"
    s.Item.get(1).update(price=decimal.Decimal("3.00"))
    assert orm_loaded(s, s.Item, 1).price == decimal.Decimal("3.00")
    s.Item.get(1).delete()
    assert s.Item.get(1) is None


def test_a_get_inside_a_transaction_uses_its_session(s: Any) -> None:
    s.Item.create(**ROW)
    with s.db.transaction():
        first = s.Item.get(1)
        first.name = "changed, not flushed"
        assert s.Item.get(1) is first  # the transaction's identity map
    assert s.Item.get(1).name == "changed, not flushed"


def test_eager_relationships_and_reconstructors_are_loaded_by_the_orm(s: Any) -> None:
    s.Author.create(id=1)
    s.Book.create(id=1, author_id=1)
    s.Note.create(id=1, text="x")
    book = s.Book.get(1)
    assert book.author.id == 1  # loaded eagerly, before the session closed
    assert s.Note.get_one(1).from_database is True
    assert not took_direct_path(s.Book) and not took_direct_path(s.Note)
    assert took_direct_path(s.Author) or s.Author.get(1) is not None
    assert took_direct_path(s.Author)  # a lazy collection leaves it plain


def test_criteria_added_to_every_orm_statement_apply_to_lone_reads(s: Any) -> None:
    s.Item.create(**ROW)
    s.Item.create(**{**ROW, "token": uuid.uuid4()}, hidden=True)

    def hide(state: Any) -> None:
        if state.is_select:
            state.statement = state.statement.options(
                with_loader_criteria(s.Item, s.Item.hidden.is_(False))
            )

    assert s.Item.count() == 2
    event.listen(Session, "do_orm_execute", hide)
    try:
        assert s.Item.get(1) is not None
        assert s.Item.get(2) is None
        assert s.Item.count() == 1
        assert s.Item.where(s.Item.id == 2).exists() is False
        assert [item.id for item in s.Item.all()] == [1]
    finally:
        event.remove(Session, "do_orm_execute", hide)
    assert s.Item.get(2) is not None
    assert s.Item.where(s.Item.id == 2).exists() is True


@pytest.mark.parametrize(
    ("on", "event_name"), [("engine", "before_cursor_execute"), ("dialect", "do_execute")]
)
def test_statement_listeners_see_every_get(s: Any, on: str, event_name: str) -> None:
    s.Item.create(**ROW)
    seen: list[str] = []

    def record(*args: Any) -> None:  # the statement is the listener's first string
        seen.append(next(arg for arg in args if isinstance(arg, str)))

    engine = s.db.sync_engine
    target = engine if on == "engine" else engine.dialect
    event.listen(target, event_name, record)
    try:
        assert s.Item.get(1) is not None
        assert s.Item.count() == 1
    finally:
        event.remove(target, event_name, record)
    assert [statement.split()[0] for statement in seen] == ["SELECT", "SELECT"]
    assert all("FROM items" in statement for statement in seen)


def test_sql_logging_sees_every_get(s: Any, caplog: pytest.LogCaptureFixture) -> None:
    s.Item.create(**ROW)
    with caplog.at_level(logging.INFO, logger="sqlalchemy.engine"):
        assert s.Item.get(1) is not None
    assert any("FROM items" in record.getMessage() for record in caplog.records)


def test_a_database_error_is_the_same_either_way(s: Any) -> None:
    s.Item.create(**ROW)
    with s.db.sync_engine.begin() as connection:
        connection.execute(text("DROP TABLE items"))
    with pytest.raises(Exception) as direct:
        s.Item.get(1)
    assert took_direct_path(s.Item)
    engine = s.db.sync_engine
    event.listen(engine, "before_cursor_execute", ignore)  # the ORM path, then
    try:
        with pytest.raises(Exception) as orm:
            s.Item.get(1)
    finally:
        event.remove(engine, "before_cursor_execute", ignore)
    assert (type(direct.value), str(direct.value)) == (type(orm.value), str(orm.value))


def ignore(*args: Any) -> None:
    pass


@pytest.mark.postgres
def test_a_read_leaves_no_transaction_open_on_postgresql(s: Any) -> None:
    s.Item.create(**ROW)
    for _ in range(3):
        assert s.Item.get(1) is not None
    # autocommit is switched back: a transaction after the read still rolls back
    with pytest.raises(RuntimeError), s.db.transaction():
        s.Item.create(**{**ROW, "token": uuid.uuid4()})
        raise RuntimeError("roll back")
    with s.db.sync_standalone_session() as session:
        assert session.scalar(select(text("count(*)")).select_from(text("items"))) == 1
        idle = session.scalar(
            text(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND state = 'idle in transaction' AND pid <> pg_backend_pid()"
            )
        )
    assert idle == 0


@pytest.mark.postgres
def test_a_pooled_connection_whose_server_went_away_is_replaced(s: Any) -> None:
    s.Item.create(**ROW)
    assert s.Item.get(1) is not None
    with s.db.sync_standalone_session() as session:
        session.execute(
            text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        )
    assert s.Item.get_one(1).name == "lamp"


@pytest.mark.postgres
@pytest.mark.anyio
async def test_an_async_read_leaves_the_pool_as_it_found_it(url: str) -> None:
    async with async_tables(Database(url), define) as models:
        await models.Item.create(**ROW)
        for _ in range(3):
            assert await models.Item.get(1) is not None
        with pytest.raises(RuntimeError):
            async with models.db.transaction():
                await models.Item.create(**{**ROW, "token": uuid.uuid4()})
                raise RuntimeError("roll back")
        assert await models.Item.count() == 1
        async with models.db.standalone_session() as session:
            await session.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
            )
        assert (await models.Item.get_one(1)).name == "lamp"  # a dead connection replaced
        assert models.db.async_engine.sync_engine.pool.checkedout() == 0


@pytest.mark.postgres
@pytest.mark.anyio
@pytest.mark.parametrize("event_name", ["checkin", "reset"])
async def test_pool_listeners_that_use_the_driver_see_every_async_read(
    url: str, event_name: str
) -> None:
    """A listener on the way back to the pool may await the driver (through
    SQLAlchemy's adapter), so the connection then goes back through the greenlet bridge."""
    async with async_tables(Database(url), define) as models:
        await models.Item.create(**ROW)
        pool = models.db.async_engine.sync_engine.pool
        seen = []

        def listener(dbapi_connection: Any, *_: Any) -> None:
            dbapi_connection.rollback()  # the adapter awaits the driver's rollback()
            seen.append(1)

        event.listen(pool, event_name, listener)
        for _ in range(3):
            assert (await models.Item.get_one(1)).name == "lamp"
            assert await models.Item.count() == 1
        assert seen == [1] * 6
        assert pool.checkedout() == 0


@pytest.mark.postgres
@pytest.mark.anyio
async def test_async_reads_on_a_pool_that_closes_what_comes_back(
    url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """NullPool closes every connection given back, which awaits the driver."""
    db = Database(url, engine_options={"poolclass": NullPool})
    async with async_tables(db, define) as models:
        await models.Item.create(**ROW)
        with caplog.at_level(logging.ERROR):
            for _ in range(3):
                assert (await models.Item.get_one(1)).name == "lamp"
                assert await models.Item.count() == 1
        assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []


@pytest.mark.anyio
async def test_a_cancelled_async_read_returns_its_connection(url: str, backend: str) -> None:
    options: dict[str, Any] = {}
    if backend == "postgresql-asyncpg":
        # asyncpg cancels the query itself and its connection serves the next one. The
        # checkout's ping is left out: cancelled midway it is dropped, as SQLAlchemy's
        # pre-ping is, and asyncpg reports connection_lost() to the event loop.
        options["pool_pre_ping"] = False
    async with async_tables(Database(url, engine_options=options), define) as models:
        await models.Item.create(**ROW)
        pool = models.db.async_engine.sync_engine.pool
        connected: list[object] = []
        event.listen(pool, "connect", lambda *_: connected.append(None))
        for _ in range(20):
            with anyio.move_on_after(0):  # cancelled at its first wait
                await models.Item.get(1)
            with anyio.move_on_after(0.0005):  # or somewhere in the middle
                await models.Item.get(1)
        assert (await models.Item.get_one(1)).name == "lamp"
        assert pool.checkedout() == 0
        if backend == "postgresql-asyncpg":
            assert connected == []  # the cancelled statements' connection served on


@pytest.mark.postgres
@pytest.mark.anyio
async def test_an_asyncpg_read_after_a_column_changed_type_decodes_the_new_type(
    asyncpg_url: str,
) -> None:
    async with async_tables(Database(asyncpg_url), define) as models:
        await models.Item.create(**ROW)
        assert (await models.Item.get_one(1)).price == decimal.Decimal("12.50")
        async with models.db.async_engine.begin() as other:
            await other.execute(text("ALTER TABLE items ALTER COLUMN price TYPE float8"))
        got = await models.Item.get_one(1)  # prepared again, for float8
        async with AsyncSession(models.db.async_engine) as session:
            expected = await session.get(models.Item, 1)
        assert took_direct_path(models.Item)
        assert type(got.price) is type(expected.price) is decimal.Decimal
        assert got.price == expected.price


@pytest.mark.postgres
@pytest.mark.anyio
async def test_asyncpg_with_its_statement_cache_off_reads_on_a_connection(
    asyncpg_url: str,
) -> None:
    # statement_cache_size=0 is what a transaction pooler needs of asyncpg: the
    # statements this module would keep prepared could clash there
    options = {"connect_args": {"statement_cache_size": 0}}
    async with async_tables(Database(asyncpg_url, engine_options=options), define) as models:
        await models.Item.create(**ROW)
        assert (await models.Item.get_one(1)).name == "lamp"
        assert not took_direct_path(models.Item)
