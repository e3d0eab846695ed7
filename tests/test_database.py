"""``Database``: URL derivation, lazy engines and drivers, connectivity errors, in-memory
SQLite, per-database model bases, SQLite strictness (foreign keys, busy timeout),
standalone sessions and the lifecycle calls (connect/disconnect/create_all/drop_all).

Complements ``test_engines.py``: the cases here are the URL shapes, sides and failure
paths that file does not exercise.
"""

from __future__ import annotations

import asyncio
import gc
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import anyio
import anyio.to_thread
import pytest
from sqlalchemy import exc as sa_exc
from sqlalchemy import inspect, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from duo_orm import (
    ConfigurationError,
    Database,
    DatabaseBusyError,
    DatabaseError,
    DatabaseUnavailableError,
    IntegrityError,
    Mapped,
    TransactionConflictError,
    mapped_column,
)
from duo_orm.urls import derive_urls

from .conftest import count_rows, sqlite_write_lock, user_emails
from .models import Models, define_models

UNREACHABLE_PG = "postgresql://duo:s3cret-pw@127.0.0.1:1/nowhere"


class Boom(Exception):
    pass


def table_names(db: Database) -> set[str]:
    """Tables that really exist in ``db``'s database (read on a fresh sync connection)."""
    with db.sync_standalone_session() as session:
        return set(inspect(session.connection()).get_table_names())


# -- URL derivation -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "dialect", "sync_driver", "async_driver"),
    [
        # driverless: the default driver per side
        ("sqlite:///./app.db", "sqlite", "pysqlite", "aiosqlite"),
        ("sqlite:///rel/dir/app.db", "sqlite", "pysqlite", "aiosqlite"),
        ("sqlite:////tmp/abs.db", "sqlite", "pysqlite", "aiosqlite"),
        ("postgresql://u:p@h:5433/db", "postgresql", "psycopg", "psycopg"),
        ("mysql://u:p@h/db", "mysql", "pymysql", "asyncmy"),
        ("mariadb://u@h/db", "mariadb", "pymysql", "asyncmy"),
        ("mssql://u:p@h/db", "mssql", "pyodbc", "aioodbc"),
        ("oracle://u:p@h/db", "oracle", "oracledb", "oracledb"),
        # aliases
        ("postgres://u@h/db", "postgresql", "psycopg", "psycopg"),
        ("sqlite3:///x.db", "sqlite", "pysqlite", "aiosqlite"),
        # explicit drivers: kept for the side they serve, the default on the other
        ("sqlite+pysqlite:///x.db", "sqlite", "pysqlite", "aiosqlite"),
        ("sqlite+aiosqlite:///x.db", "sqlite", "pysqlite", "aiosqlite"),
        ("postgresql+psycopg://u@h/db", "postgresql", "psycopg", "psycopg"),
        ("postgresql+psycopg_async://u@h/db", "postgresql", "psycopg", "psycopg_async"),
        ("postgresql+asyncpg://u@h/db", "postgresql", "psycopg", "asyncpg"),
        ("postgresql+pg8000://u@h/db", "postgresql", "pg8000", "psycopg"),
        ("mysql+asyncmy://u@h/db", "mysql", "pymysql", "asyncmy"),
        ("mysql+mysqldb://u@h/db", "mysql", "mysqldb", "asyncmy"),
        ("mssql+pymssql://u@h/db", "mssql", "pymssql", "aioodbc"),
        # the rest of the URL (credentials, port, query) travels to both sides
        ("postgresql://u:p@h/db?sslmode=require", "postgresql", "psycopg", "psycopg"),
    ],
)
def test_urls_derived_per_side(raw: str, dialect: str, sync_driver: str, async_driver: str) -> None:
    given = make_url(raw)
    derived = derive_urls(raw)
    assert derived.dialect == dialect and not derived.is_memory
    assert derived.sync == given.set(drivername=f"{dialect}+{sync_driver}")
    assert derived.async_ == given.set(drivername=f"{dialect}+{async_driver}")

    db = Database(raw)
    assert db.url == raw and db.dialect == dialect
    assert db.sync_url == derived.sync and db.async_url == derived.async_


def test_database_accepts_a_url_object_and_never_shows_the_password() -> None:
    db = Database(make_url("postgresql://u:s3cret-pw@h/db"))
    assert db.sync_url == make_url("postgresql+psycopg://u:s3cret-pw@h/db")
    assert "s3cret-pw" not in db.url and "s3cret-pw" not in repr(db)
    assert "s3cret-pw" not in repr(Database("postgresql://u:s3cret-pw@h/db"))


@pytest.mark.parametrize("raw", ["sqlite://", "sqlite:///:memory:", "sqlite+aiosqlite:///:memory:"])
def test_memory_urls_become_one_named_shared_database(raw: str) -> None:
    derived = derive_urls(raw)
    assert derived.is_memory and derived.dialect == "sqlite"
    assert derived.sync.drivername == "sqlite+pysqlite"
    assert derived.async_.drivername == "sqlite+aiosqlite"
    # both sides name the same shared database, never a per-connection ":memory:"
    assert derived.sync.database == derived.async_.database
    assert derived.sync.database is not None and ":memory:" not in derived.sync.database
    assert derived.sync.query == derived.async_.query == {"vfs": "memdb", "uri": "true"}
    # and every Database gets its own one
    assert derive_urls(raw).sync.database != derived.sync.database


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("mongodb://h/db", r"Unsupported database URL scheme 'mongodb'.*Supported schemes:"),
        ("redis://h/0", r"Supported schemes: mariadb, mssql, mysql, oracle, postgresql, sqlite"),
        ("not a url", r"Could not parse database URL"),
        ("", r"Could not parse database URL"),
        ("postgresql+nosuchdriver://u@h/db", r"Unknown driver .*Known drivers for postgresql"),
        ("sqlite+nosuchdriver:///x.db", r"Unknown driver .*Known drivers for sqlite"),
        ("postgresql+psycopg+extra://u@h/db", r"Unknown driver"),
    ],
)
def test_bad_urls_are_configuration_errors_at_construction(raw: str, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        Database(raw)


# -- missing drivers: lazy, and named with the pip extra ------------------------------


@pytest.mark.parametrize(
    ("raw", "extra"),
    [
        ("mssql://u:p@127.0.0.1/db", "mssql"),
        ("mysql://u:p@127.0.0.1/db", "mysql"),
        ("oracle://u:p@127.0.0.1/db", "oracle"),
    ],
)
def test_missing_driver_fails_on_first_use_with_the_pip_extra(raw: str, extra: str) -> None:
    db = Database(raw)  # nothing is imported or connected yet
    models = define_models(db)  # declaring models needs no driver either
    hint = rf'pip install "duo-orm\[{extra}\]"'
    with pytest.raises(ConfigurationError, match=hint):
        db.connect()
    with pytest.raises(ConfigurationError, match=hint):
        models.User.count()  # the first ORM call says the same

    async def use_async() -> None:
        with pytest.raises(ConfigurationError, match=hint):
            await db.connect()
        with pytest.raises(ConfigurationError, match=hint):
            await models.User.count()

    asyncio.run(use_async())


def test_missing_mssql_driver_names_the_missing_module_sync_and_async() -> None:
    db = Database("mssql://u:p@127.0.0.1/db")
    with pytest.raises(ConfigurationError, match=r"mssql\+pyodbc.*pyodbc") as sync_info:
        db.connect()
    assert isinstance(sync_info.value.__cause__, ImportError)

    async def connect() -> None:
        await db.connect()

    with pytest.raises(ConfigurationError, match=r"mssql\+aioodbc.*aioodbc") as async_info:
        asyncio.run(connect())
    assert 'pip install "duo-orm[mssql]"' in str(async_info.value)


# -- derive_async=False ---------------------------------------------------------------


@pytest.mark.anyio
async def test_derive_async_false_refuses_every_async_entry_point(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'sync-only.db'}", derive_async=False)
    models = define_models(db)
    assert db.async_url is None and not db.derive_async
    await anyio.to_thread.run_sync(db.create_all)  # sync use, from a worker thread: fine
    await anyio.to_thread.run_sync(lambda: models.User.create(email="t@x.io", name="t"))

    with pytest.raises(ConfigurationError, match="derive_async=False"):
        await models.User.count()
    with pytest.raises(ConfigurationError, match="derive_async=False"):
        await models.User.create(email="a@x.io", name="a")
    with pytest.raises(ConfigurationError, match="derive_async=False"):
        await db.connect()
    with pytest.raises(ConfigurationError, match="derive_async=False"):
        await db.create_all()
    with pytest.raises(ConfigurationError, match="derive_async=False"):
        async with db.transaction():
            pass
    assert not db.in_transaction  # the refused block left nothing ambient
    with pytest.raises(ConfigurationError, match="derive_async=False"):
        async with db.standalone_session():
            pass
    with pytest.raises(ConfigurationError, match="derive_async=False"):
        async for _ in models.User.iterate():
            pass

    assert await anyio.to_thread.run_sync(models.User.count) == 1
    await db.disconnect()  # nothing async to dispose: must not fail either


def test_derive_async_false_sync_use_works(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'sync-only.db'}", derive_async=False)
    models = define_models(db)
    db.connect()
    db.create_all()
    with db.transaction():
        models.User.create(email="a@x.io", name="a")
    created = models.User.create(email="b@x.io", name="b")
    assert models.User.get_one(created.id).email == "b@x.io"
    assert [u.email for u in models.User.iterate()] == ["a@x.io", "b@x.io"]
    db.drop_all()
    assert table_names(db) == set()
    db.disconnect()


# -- connectivity ---------------------------------------------------------------------


def test_connect_to_unreachable_postgresql_is_a_database_error_sync() -> None:
    db = Database(UNREACHABLE_PG)
    with pytest.raises(DatabaseError) as info:
        db.connect()
    error = info.value
    # not a raw driver / SQLAlchemy error; "unavailable" says a retry may succeed
    assert type(error) is DatabaseUnavailableError and error.retryable
    assert not isinstance(error, sa_exc.SQLAlchemyError)
    assert "Could not connect to postgresql+psycopg://duo:***@127.0.0.1:1/nowhere" in str(error)
    assert "s3cret-pw" not in str(error)
    assert isinstance(error.__cause__, sa_exc.OperationalError)  # the original is kept
    db.disconnect()


@pytest.mark.anyio
async def test_connect_to_unreachable_postgresql_is_a_database_error_async() -> None:
    for raw in (UNREACHABLE_PG, UNREACHABLE_PG.replace("postgresql:", "postgresql+asyncpg:")):
        db = Database(raw)
        with pytest.raises(DatabaseError, match=r"Could not connect to .*127\.0\.0\.1:1") as info:
            await db.connect()
        assert not isinstance(info.value, sa_exc.SQLAlchemyError)
        assert isinstance(info.value, DatabaseUnavailableError)  # refused: both drivers
        assert "s3cret-pw" not in str(info.value)
        assert info.value.__cause__ is not None
        await db.disconnect()


def test_orm_call_on_unreachable_postgresql_is_a_database_error() -> None:
    db = Database(UNREACHABLE_PG)
    models = define_models(db)
    with pytest.raises(DatabaseUnavailableError) as info:
        models.User.count()
    assert isinstance(info.value.__cause__, sa_exc.DBAPIError)

    async def use() -> None:
        with pytest.raises(DatabaseError):
            await models.User.create(email="a@x.io", name="a")
        with pytest.raises(DatabaseError):
            async with db.transaction():
                await models.User.get(1)
        await db.disconnect()

    asyncio.run(use())
    db.disconnect()


def test_constructing_a_database_touches_nothing() -> None:
    db = Database(UNREACHABLE_PG)  # no connection attempt, no error
    define_models(db)
    with db.transaction():
        pass  # a block that makes no call opens no connection either
    db.disconnect()


@pytest.mark.anyio
async def test_connect_returns_none_in_sync_code_and_an_awaitable_in_async_code(
    tmp_path: Path,
) -> None:
    db = Database(f"sqlite:///{tmp_path / 'c.db'}")
    assert await anyio.to_thread.run_sync(db.connect) is None  # sync code (a worker thread)
    awaitable = db.connect()
    assert asyncio.iscoroutine(awaitable)
    assert await awaitable is None
    await db.disconnect()


# -- in-memory SQLite -----------------------------------------------------------------


def test_memory_database_survives_between_statements_and_is_shared_both_ways() -> None:
    db = Database("sqlite:///:memory:")
    models = define_models(db)
    db.create_all()
    first = models.User.create(email="sync@x.io", name="sync")  # one short session ...
    assert models.User.get_one(first.id).email == "sync@x.io"  # ... another one sees it

    async def async_side() -> list[str]:
        seen = [u.email for u in await models.User.order_by("id").all()]  # sync row, async read
        await models.User.create(email="async@x.io", name="async")
        async with db.transaction():
            await models.User.create(email="async-tx@x.io", name="tx")
        return seen

    assert asyncio.run(async_side()) == ["sync@x.io"]
    # async rows, sync read (on the sync engine's own connections)
    assert [u.email for u in models.User.order_by("id").all()] == [
        "sync@x.io",
        "async@x.io",
        "async-tx@x.io",
    ]
    assert user_emails(models) == ["async-tx@x.io", "async@x.io", "sync@x.io"]
    db.disconnect()


@pytest.mark.anyio
async def test_memory_database_shared_with_sync_code_in_worker_threads() -> None:
    db = Database("sqlite:///:memory:")
    models = define_models(db)
    await db.create_all()  # tables made on the async engine ...
    await anyio.to_thread.run_sync(lambda: models.User.create(email="w@x.io", name="w"))
    assert await models.User.count() == 1  # ... a sync write in a thread, read async
    assert table_names(db) == {"users", "customers", "orders", "memberships"}
    await db.disconnect()


def test_two_memory_databases_are_separate() -> None:
    first, second = Database("sqlite:///:memory:"), Database("sqlite:///:memory:")
    one, two = define_models(first), define_models(second)
    first.create_all()
    second.create_all()
    one.User.create(email="a@x.io", name="a")
    assert two.User.count() == 0 and one.User.count() == 1
    first.disconnect()
    second.disconnect()


def test_memory_database_outlives_disconnect() -> None:
    """An app's lifespan stopping (``db.disconnect()``) must not take the data with it."""
    db = Database("sqlite:///:memory:")
    models = define_models(db)
    db.create_all()
    models.User.create(email="a@x.io", name="a")
    db.disconnect()
    assert user_emails(models) == ["a@x.io"]  # engines rebuilt, same database
    db.disconnect()


@pytest.mark.anyio
async def test_memory_database_outlives_async_disconnect() -> None:
    db = Database("sqlite:///:memory:")
    models = define_models(db)
    await db.create_all()
    await models.User.create(email="a@x.io", name="a")
    await db.disconnect()
    assert await models.User.count() == 1
    await db.disconnect()


def test_memory_database_ends_with_its_database_object() -> None:
    db = Database("sqlite:///:memory:")
    define_models(db)
    db.create_all()
    shared = f"{db.sync_url.database}?vfs=memdb"  # the name every connection opens
    probe = sqlite3.connect(shared, uri=True)
    assert probe.execute("SELECT count(*) FROM sqlite_master").fetchone()[0] > 0
    probe.close()
    del db
    gc.collect()
    probe = sqlite3.connect(shared, uri=True)
    assert probe.execute("SELECT count(*) FROM sqlite_master").fetchone()[0] == 0
    probe.close()


# -- one model base per database ------------------------------------------------------


def test_same_table_names_on_two_databases_never_mix(tmp_path: Path) -> None:
    first = Database(f"sqlite:///{tmp_path / 'first.db'}")
    second = Database("sqlite:///:memory:")
    one, two = define_models(first), define_models(second)  # both declare "users" etc.

    class OnlyFirst(first.Model):  # type: ignore[name-defined,misc]
        __tablename__ = "only_first"
        id: Mapped[int] = mapped_column(primary_key=True)

    assert first.Model is not second.Model
    assert first.metadata is first.Model.metadata  # type: ignore[attr-defined]
    assert second.metadata is second.Model.metadata  # type: ignore[attr-defined]
    assert first.metadata is not second.metadata
    assert "only_first" in first.metadata.tables and "only_first" not in second.metadata.tables
    assert one.User.__table__ is not two.User.__table__

    first.create_all()
    second.create_all()
    assert "only_first" in table_names(first)
    assert "only_first" not in table_names(second)

    one.User.create(email="first@x.io", name="1")
    two.User.create(email="second@x.io", name="2")
    two.User.create(email="third@x.io", name="3")
    assert user_emails(one) == ["first@x.io"]
    assert user_emails(two) == ["second@x.io", "third@x.io"]

    with first.transaction():  # a transaction on one database does not capture the other
        one.User.create(email="tx@x.io", name="tx")
        assert first.in_transaction and not second.in_transaction
        two.User.create(email="statement@x.io", name="s")
    assert count_rows(one, "users") == 2 and count_rows(two, "users") == 3

    second.drop_all()
    assert table_names(second) == set() and "users" in table_names(first)
    first.disconnect()
    second.disconnect()


# -- SQLite strictness ----------------------------------------------------------------


@pytest.fixture(params=["file", "memory"])
def sqlite_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'strict.db'}" if request.param == "file" else "sqlite://"


@pytest.fixture
def lite(sqlite_url: str) -> Iterator[Models]:
    db = Database(sqlite_url)
    models = define_models(db)
    db.create_all()
    yield models
    db.disconnect()


def test_sqlite_foreign_keys_enforced_sync(lite: Models) -> None:
    with pytest.raises(IntegrityError) as info:
        lite.Order.create(total=1, customer_id=404)
    assert info.value.kind == "foreign_key"
    assert isinstance(info.value.__cause__, sa_exc.IntegrityError)
    customer = lite.Customer.create(name="c")
    with pytest.raises(IntegrityError) as in_block, lite.db.transaction():
        lite.Order.create(total=1, customer_id=customer.id)
        lite.Order.create(total=2, customer_id=405)
    assert in_block.value.kind == "foreign_key"
    assert count_rows(lite, "orders") == 0  # the block's first, valid row went too
    user = lite.User.create(email="a@x.io", name="a")
    lite.Membership.create(user_id=user.id, group="g")  # no ORM relationship: the DB decides
    with pytest.raises(IntegrityError) as on_delete:
        user.delete()  # still referenced
    assert on_delete.value.kind == "foreign_key"
    assert count_rows(lite, "users") == 1 and count_rows(lite, "memberships") == 1


@pytest.mark.anyio
async def test_sqlite_foreign_keys_enforced_async(sqlite_url: str) -> None:
    db = Database(sqlite_url)
    models = define_models(db)
    await db.create_all()
    try:
        with pytest.raises(IntegrityError) as info:
            await models.Order.create(total=1, customer_id=404)
        assert info.value.kind == "foreign_key"
        with pytest.raises(IntegrityError):
            async with db.transaction():
                customer = await models.Customer.create(name="c")
                await models.Order.create(total=1, customer_id=customer.id + 1)
        assert count_rows(models, "orders") == 0 and count_rows(models, "customers") == 0
    finally:
        await db.disconnect()


def test_sqlite_second_writer_waits_for_the_first(lite: Models) -> None:
    holding, failures = threading.Event(), []

    def first_writer() -> None:
        try:
            with lite.db.transaction():
                lite.User.create(email="first@x.io", name="first")  # takes the write lock
                holding.set()
                time.sleep(0.3)
        except BaseException as exc:  # pragma: no cover - reported below
            failures.append(exc)
            holding.set()

    thread = threading.Thread(target=first_writer)
    thread.start()
    assert holding.wait(5)
    started = time.monotonic()
    lite.User.create(email="second@x.io", name="second")  # waits, then writes
    waited = time.monotonic() - started
    thread.join()
    assert failures == []
    assert waited >= 0.15  # it waited for the lock instead of failing at once
    assert user_emails(lite) == ["first@x.io", "second@x.io"]


@pytest.mark.anyio
async def test_sqlite_async_writer_waits_without_blocking_the_loop(sqlite_url: str) -> None:
    db = Database(sqlite_url)
    models = define_models(db)
    await db.create_all()
    holding, release = threading.Event(), threading.Event()

    def first_writer() -> None:
        with db.transaction():
            models.User.create(email="first@x.io", name="first")
            holding.set()
            release.wait(5)
            time.sleep(0.3)

    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await anyio.sleep(0.02)
            ticks += 1

    thread = threading.Thread(target=first_writer)  # a fresh context: not ambient here
    thread.start()
    try:
        assert await anyio.to_thread.run_sync(holding.wait, 5)
        release.set()
        async with anyio.create_task_group() as tg:
            tg.start_soon(ticker)
            started = time.monotonic()
            await models.User.create(email="second@x.io", name="second")
            waited = time.monotonic() - started
            tg.cancel_scope.cancel()
        assert waited >= 0.15
        assert ticks >= 3  # the event loop kept running while the write waited
        assert user_emails(models) == ["first@x.io", "second@x.io"]
    finally:
        release.set()
        thread.join()
        await db.disconnect()


def test_sqlite_busy_timeout_is_configurable_and_expiry_is_a_retryable_busy_error(
    tmp_path: Path,
) -> None:
    path = tmp_path / "busy.db"
    db = Database(f"sqlite:///{path}", engine_options={"connect_args": {"timeout": 0.1}})
    models = define_models(db)
    db.create_all()
    with sqlite_write_lock(path):
        started = time.monotonic()
        with pytest.raises(DatabaseBusyError) as info:
            models.User.create(email="a@x.io", name="a")
        assert 0.05 <= time.monotonic() - started < 3  # the short timeout applied
        assert info.value.retryable is True
        # still a conflict (retry the transaction) and an unavailability (503, later)
        assert isinstance(info.value, TransactionConflictError)
        assert isinstance(info.value, DatabaseUnavailableError)
    models.User.create(email="a@x.io", name="a")  # the retry succeeds
    assert count_rows(models, "users") == 1
    db.disconnect()


def test_an_exhausted_pool_is_a_retryable_busy_error(tmp_path: Path) -> None:
    db = Database(
        f"sqlite:///{tmp_path / 'pool.db'}",
        engine_options={"pool_size": 1, "max_overflow": 0, "pool_timeout": 0.1},
    )
    models = define_models(db)
    db.create_all()
    with db.sync_standalone_session() as session:
        session.execute(text("SELECT 1"))  # the pool's one connection, held
        with pytest.raises(DatabaseBusyError, match="pool"):
            models.User.count()
    assert models.User.count() == 0
    db.disconnect()


# -- standalone sessions --------------------------------------------------------------


def test_standalone_session_is_raw_uncommitted_work_is_discarded(m: Models) -> None:
    with m.db.standalone_session() as session:
        assert isinstance(session, Session) and not m.db.in_transaction
        session.add(m.Customer(name="kept"))
        session.commit()  # the caller commits
        session.add(m.Customer(name="dropped"))
        session.flush()  # flushed but never committed
    with m.db.sync_standalone_session() as session:
        names = session.scalars(select(m.Customer.name)).all()
    assert names == ["kept"]


def test_standalone_session_is_not_the_ambient_transaction(m: Models) -> None:
    # (It is written to before the block takes a write lock: on in-memory SQLite a
    # pending write blocks every other connection, readers included.)
    with pytest.raises(Boom), m.db.transaction() as ambient:
        with m.db.standalone_session() as session:
            assert session is not ambient and m.db.in_transaction
            session.add(m.Customer(name="independent"))
            session.commit()  # commits on its own connection ...
        m.User.create(email="a@x.io", name="a")
        raise Boom  # ... so the block's rollback does not take it back
    assert count_rows(m, "customers") == 1
    assert count_rows(m, "users") == 0


@pytest.mark.anyio
async def test_standalone_session_async(am: Models) -> None:
    async with am.db.standalone_session() as session:
        assert isinstance(session, AsyncSession) and not am.db.in_transaction
        session.add(am.Customer(name="kept"))
        await session.commit()
        session.add(am.Customer(name="dropped"))
        await session.flush()
    with pytest.raises(Boom):
        async with am.db.transaction() as ambient:
            async with am.db.standalone_session() as session:
                assert session is not ambient
                session.add(am.Customer(name="independent"))
                await session.commit()
            await am.User.create(email="a@x.io", name="a")
            raise Boom
    async with am.db.standalone_session() as session:
        names = (await session.scalars(select(am.Customer.name).order_by(am.Customer.id))).all()
    assert names == ["kept", "independent"]
    assert count_rows(am, "users") == 0


# -- lifecycle ------------------------------------------------------------------------


def test_disconnect_then_use_again_sync(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'life.db'}")
    models = define_models(db)
    db.connect()
    db.create_all()
    db.create_all()  # idempotent
    models.User.create(email="a@x.io", name="a")
    db.disconnect()
    db.disconnect()  # twice is fine
    assert models.User.count() == 1  # engines are rebuilt on the next use
    db.connect()
    db.drop_all()
    assert table_names(db) == set()
    with pytest.raises(DatabaseError, match="no such table"):
        models.User.count()
    db.drop_all()  # nothing left to drop: still fine
    db.create_all()
    assert models.User.count() == 0
    db.disconnect()


@pytest.mark.anyio
async def test_disconnect_then_use_again_async(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'life.db'}")
    models = define_models(db)
    assert await db.create_all() is None
    await models.User.create(email="a@x.io", name="a")
    assert await db.disconnect() is None
    assert await models.User.count() == 1
    async with db.transaction():
        await models.User.create(email="b@x.io", name="b")
    await db.disconnect()
    await db.connect()
    assert await db.drop_all() is None
    with pytest.raises(DatabaseError, match="no such table"):
        await models.User.count()
    await db.create_all()
    assert await models.User.count() == 0
    await db.disconnect()


@pytest.mark.anyio
async def test_create_all_and_drop_all_awaited_on_every_backend(am: Models) -> None:
    await am.db.drop_all()
    assert table_names(am.db) == set()
    with pytest.raises(DatabaseError):
        await am.User.count()
    await am.db.create_all()
    await am.db.create_all()  # idempotent
    assert {"users", "customers", "orders", "memberships"} <= table_names(am.db)
    assert await am.User.count() == 0


def test_create_all_and_drop_all_sync_on_every_backend(m: Models) -> None:
    m.db.drop_all()
    assert table_names(m.db) == set()
    with pytest.raises(DatabaseError):
        m.User.count()
    m.db.create_all()
    m.User.create(email="a@x.io", name="a")
    assert m.User.count() == 1
