"""Connection health on a real PostgreSQL server that is restarted, stopped and black-holed.

The server here is this module's own (``controlled_postgres_server``), so stopping it
disturbs no other test. Every wait is bounded: connect timeouts are set short, and
the server helper gives up after 60 s.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import anyio
import anyio.to_thread
import pytest
from sqlalchemy.engine import URL

from duo_orm import DatabaseError, DatabaseUnavailableError
from duo_orm.engines import DEFAULT_CONNECT_TIMEOUT

from .conftest import async_tables, tables
from .faults import (
    DRIVERS,
    black_hole,
    black_hole_url,
    database,
    fill_pool_async,
    fill_pool_sync,
)
from .models import define_models
from .postgres_server import PostgresServer, controlled_postgres_server, empty_database

pytestmark = pytest.mark.postgres


@pytest.fixture(scope="module")
def server() -> Iterator[PostgresServer]:
    with controlled_postgres_server() as running:
        yield running


@pytest.fixture
def fault_url(server: PostgresServer) -> Iterator[URL]:
    """An empty database on the module's server; the server is running before and after."""
    with empty_database(server) as url:
        yield url


# -- pooled connections after a restart ------------------------------------------------


def test_pooled_connections_survive_a_restart_sync(server: PostgresServer, fault_url: URL) -> None:
    with tables(database(fault_url), define_models) as m:
        fill_pool_sync(m.db)
        server.restart()
        for i in range(10):  # every one of them, including the first, succeeds
            m.User.create(email=f"{i}@x.io", name="after")
        assert m.User.count() == 10


@pytest.mark.anyio
@DRIVERS
async def test_pooled_connections_survive_a_restart_async(
    server: PostgresServer, fault_url: URL, driver: str
) -> None:
    async with async_tables(database(fault_url, driver), define_models) as m:
        await fill_pool_async(m.db)
        await anyio.to_thread.run_sync(server.restart)
        burst = [m.User.create(email=f"{i}@x.io", name="after") for i in range(10)]
        await asyncio.wait_for(asyncio.gather(*burst), 30)
        assert await m.User.count() == 10


@pytest.mark.anyio
@DRIVERS
async def test_without_pre_ping_a_dead_connection_is_unavailable_then_recovers(
    server: PostgresServer, fault_url: URL, driver: str
) -> None:
    """``pool_pre_ping=False`` is honoured; the lost connection is then a retryable
    DatabaseUnavailableError (a 503 through the adapters), and the next call works."""
    db = database(fault_url, driver, pool_pre_ping=False)
    async with async_tables(db, define_models) as m:
        await fill_pool_async(db, 1)
        await anyio.to_thread.run_sync(server.restart)
        with pytest.raises(DatabaseUnavailableError) as lost:
            await m.User.count()
        assert lost.value.retryable is True
        assert await m.User.count() == 0


# -- a stopped server ----------------------------------------------------------------


def test_stopped_server_is_unavailable_then_recovers_sync(
    server: PostgresServer, fault_url: URL
) -> None:
    with tables(database(fault_url), define_models) as m:
        fill_pool_sync(m.db)
        server.stop()
        with pytest.raises(DatabaseUnavailableError):
            m.User.count()
        with pytest.raises(DatabaseUnavailableError):
            m.User.create(email="a@x.io", name="down")
        server.start()
        m.User.create(email="b@x.io", name="up")  # same Database, same pool: no restart
        assert m.User.count() == 1


@pytest.mark.anyio
@DRIVERS
async def test_stopped_server_is_unavailable_then_recovers_async(
    server: PostgresServer, fault_url: URL, driver: str
) -> None:
    async with async_tables(database(fault_url, driver), define_models) as m:
        await fill_pool_async(m.db)
        await anyio.to_thread.run_sync(server.stop)
        with pytest.raises(DatabaseUnavailableError):
            await m.User.count()
        with pytest.raises(DatabaseUnavailableError):
            async with m.db.transaction():
                await m.User.create(email="a@x.io", name="down")
        with pytest.raises(DatabaseUnavailableError, match="Could not connect to"):
            await m.db.connect()
        await anyio.to_thread.run_sync(server.start)
        await m.User.create(email="b@x.io", name="up")
        assert await m.User.count() == 1


# -- a host that accepts TCP but never answers ----------------------------------------


def test_default_connect_timeout_is_at_most_ten_seconds() -> None:
    assert 0 < DEFAULT_CONNECT_TIMEOUT <= 10


@pytest.mark.parametrize(
    "options",
    [
        {"connect_timeout": 2},  # duo-orm's own option, for every driver
        {"connect_args": {"connect_timeout": 2}},  # psycopg's own argument wins
    ],
    ids=["engine-option", "driver-connect-args"],
)
def test_black_hole_fails_connect_within_the_timeout_sync(options: dict[str, object]) -> None:
    with black_hole() as port:
        db = database(black_hole_url(port), **options)
        started = time.monotonic()
        with pytest.raises(DatabaseUnavailableError, match="Could not connect to"):
            db.connect()
        assert time.monotonic() - started < 2 + 3
        db.disconnect()


@pytest.mark.anyio
@DRIVERS
async def test_black_hole_fails_connect_within_the_timeout_async(driver: str) -> None:
    with black_hole() as port:
        db = database(black_hole_url(port), driver, connect_timeout=2)
        started = time.monotonic()
        with pytest.raises(DatabaseUnavailableError, match="Could not connect to"):
            await db.connect()
        assert time.monotonic() - started < 2 + 3
        await db.disconnect()


@pytest.mark.anyio
@DRIVERS
async def test_black_hole_fails_within_the_default_timeout(driver: str) -> None:
    """No option at all: the default applies to the async engine of each driver."""
    with black_hole() as port:
        db = database(black_hole_url(port), driver)
        started = time.monotonic()
        with pytest.raises(DatabaseError, match="Could not connect to"):
            await asyncio.wait_for(db.connect(), DEFAULT_CONNECT_TIMEOUT + 20)
        assert time.monotonic() - started < DEFAULT_CONNECT_TIMEOUT + 3
        await db.disconnect()


@pytest.mark.anyio
@DRIVERS
async def test_unknown_host_is_unavailable_not_a_raw_socket_error(driver: str) -> None:
    """asyncpg lets ``socket.gaierror`` through; it is translated like psycopg's failure."""
    url = URL.create("postgresql", "duo", None, "no-such-host.invalid", 5432, "app")
    db = database(url, driver, connect_timeout=2)
    models = define_models(db)
    with anyio.fail_after(30):
        with pytest.raises(DatabaseUnavailableError):
            await models.User.count()
        with pytest.raises(DatabaseUnavailableError, match="Could not connect to"):
            await db.connect()
    await db.disconnect()
