"""The checkout liveness check (duo_orm.liveness) on a real PostgreSQL server.

What a user relies on: a pooled connection whose server session ended (terminated,
idle timeout, restart: ``test_availability.py`` covers restarts) is replaced before a
call uses it, with every driver, sync and async; a live connection is kept, even
when something arrived on it while it sat in the pool; ``pool_pre_ping`` given
explicitly is SQLAlchemy's own ping again.
"""

from __future__ import annotations

import time
from typing import Any

import anyio
import pytest
from sqlalchemy import text

from duo_orm import Database, liveness

from .conftest import async_tables, tables
from .models import Models, define_models

pytestmark = pytest.mark.postgres

TERMINATE_OTHERS = text(
    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
    "WHERE datname = current_database() AND pid <> pg_backend_pid()"
)
OTHERS = text(
    "SELECT count(*) FROM pg_stat_activity "
    "WHERE datname = current_database() AND pid <> pg_backend_pid()"
)


def terminate_pooled(db: Database) -> None:
    """End every other session on the test's database, as an idle timeout or an
    operator would, and wait until the server has closed them."""
    with db.sync_standalone_session() as session:
        session.execute(TERMINATE_OTHERS)
        session.commit()  # pg_stat_activity is read once per transaction
        deadline = time.monotonic() + 10
        while session.scalar(OTHERS) and time.monotonic() < deadline:
            session.commit()
            time.sleep(0.01)
        assert session.scalar(OTHERS) == 0


def backend_pids(db: Database) -> set[int]:
    with db.sync_standalone_session() as session:
        return set(
            session.scalars(
                text(
                    "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                    "AND pid <> pg_backend_pid()"
                )
            )
        )


@pytest.mark.anyio
async def test_postgresql_engines_check_at_checkout_instead_of_pinging(url: str) -> None:
    db = Database(url)  # psycopg on both sides, or asyncpg on the async one
    for pool in (db.sync_engine.pool, db.async_engine.sync_engine.pool):
        assert pool._pre_ping is False
        assert pool.dispatch.checkout  # duo_orm.liveness's check instead
    await db.disconnect()


def test_a_terminated_pooled_connection_is_replaced_sync(m: Models) -> None:
    m.User.create(email="a@x.io", name="A")
    for written in range(3):
        terminate_pooled(m.db)
        assert m.User.get_one(1).name == "A"  # a point read
        assert m.User.count() == 1 + written  # an ORM read
        m.User.create(email=f"{time.monotonic_ns()}@x.io", name="B")  # a write
    assert m.User.count() == 4


@pytest.mark.anyio
async def test_a_terminated_pooled_connection_is_replaced_async(url: str) -> None:
    async with async_tables(Database(url), define_models) as m:
        await m.User.create(email="a@x.io", name="A")
        for written in range(3):
            await anyio.to_thread.run_sync(terminate_pooled, m.db)
            assert (await m.User.get_one(1)).name == "A"
            assert await m.User.count() == 1 + written
            await m.User.create(email=f"{time.monotonic_ns()}@x.io", name="B")
        assert await m.User.count() == 4


def test_a_live_connection_with_a_message_waiting_is_kept(url: str) -> None:
    db, other = Database(url, engine_options={"pool_size": 1}), Database(url)
    with tables(db, define_models) as m:
        with db.sync_engine.connect() as connection:  # the pool's one connection
            connection.execute(text("LISTEN duo_orm_test"))
            connection.commit()
        before = backend_pids(other)
        with other.sync_standalone_session() as session:
            session.execute(text("NOTIFY duo_orm_test"))
            session.commit()
        time.sleep(0.05)  # the notification reaches the idle pooled connection
        assert m.User.count() == 0
        assert backend_pids(other) == before  # pinged, found alive, kept
    other.disconnect()


def test_pool_pre_ping_given_explicitly_is_sqlalchemys_own(url: str) -> None:
    db = Database(url, engine_options={"pool_pre_ping": True})
    with tables(db, define_models) as m:
        assert db.sync_engine.pool._pre_ping is True
        m.User.create(email="a@x.io", name="A")
        terminate_pooled(db)
        assert m.User.get_one(1).name == "A"


def test_the_probe_reads_a_closed_socket(url: str) -> None:
    db = Database(url)
    with tables(db, define_models):
        raw: Any = db.sync_engine.raw_connection()
        try:
            driver = raw.driver_connection
            probe = liveness.PROBES[db.sync_engine.dialect.driver]
            assert probe(driver) is liveness.Socket.QUIET
            terminate_pooled(db)
            assert probe(driver) is not liveness.Socket.QUIET
        finally:
            raw.invalidate()
            raw.close()


@pytest.mark.anyio
async def test_a_terminated_asyncpg_connection_is_replaced_whenever_the_loop_reads_it(
    asyncpg_url: str,
) -> None:
    # asyncpg may have read the server's goodbye already, and shows nothing of it
    # until the socket closes; or the goodbye may still wait unread on the socket.
    async with async_tables(Database(asyncpg_url), define_models) as m:
        await m.User.create(email="a@x.io", name="A")
        for _ in range(3):
            terminate_pooled(m.db)  # blocks the event loop: the goodbye stays unread
            assert (await m.User.get_one(1)).name == "A"
            await anyio.to_thread.run_sync(terminate_pooled, m.db)  # the loop reads it
            assert (await m.User.get_one(1)).name == "A"
            await m.User.create(email=f"{time.monotonic_ns()}@x.io", name="B")
        assert await m.User.count() == 4
