"""Read replicas on a real streaming standby: where reads go, read-your-writes, fallback.

``Server`` maps a view that reports ``pg_is_in_recovery()`` of the server that
answered (id 2 on a standby, 1 on the primary, so two answers are two rows).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from typing import Any

import anyio.to_thread
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.orm import Mapped, mapped_column

from duo_orm import Database
from duo_orm.exceptions import ConfigurationError

from .replication import Replicated, ReplicatedDatabase, replicated_database

pytestmark = [pytest.mark.postgres, pytest.mark.anyio]

ASYNC_DRIVERS = ["postgresql", "postgresql+asyncpg"]


def define(db: Database) -> tuple[Any, Any]:
    class Note(db.Model):
        __tablename__ = "notes"
        id: Mapped[int] = mapped_column(primary_key=True)
        body: Mapped[str]

    class Server(db.Model):
        __tablename__ = "server"
        id: Mapped[int] = mapped_column(primary_key=True)
        standby: Mapped[bool]

    return Note, Server


@pytest.fixture(scope="module")
def pair(replicated: Replicated) -> Iterator[ReplicatedDatabase]:
    with replicated_database(replicated) as created:
        engine = create_engine(created.primary)
        with engine.begin() as connection:
            connection.execute(text("CREATE TABLE notes (id serial PRIMARY KEY, body text)"))
            connection.execute(
                text(
                    "CREATE VIEW server AS SELECT CASE WHEN pg_is_in_recovery() THEN 2 ELSE 1 "
                    "END AS id, pg_is_in_recovery() AS standby"
                )
            )
        engine.dispose()
        replicated.wait_replayed()
        yield created


def on_standby(Server: Any) -> bool:
    return bool(Server.first().standby)


def test_reads_go_to_the_replica_and_writes_to_the_primary(pair: ReplicatedDatabase) -> None:
    db = Database(pair.primary, replicas=[pair.standby])
    Note, Server = define(db)
    try:
        assert on_standby(Server)  # a lone read in statement mode
        assert Server.where(Server.id > 0).all()[0].standby
        Note.create(body="statement write")  # the standby would refuse it
        with db.transaction(read_only=True):
            assert on_standby(Server)
            note = Note.create(body="read-only block write")
            # read-your-writes: once the block wrote, it reads on the primary
            assert not on_standby(Server)
            assert Note.get(note.id) is not None
        with db.transaction():
            assert not on_standby(Server)
    finally:
        db.disconnect()


@pytest.mark.parametrize("driver", ASYNC_DRIVERS)
async def test_async_reads_go_to_the_replica_until_the_block_writes(
    pair: ReplicatedDatabase, driver: str
) -> None:
    primary, standby = pair.urls(driver)
    db = Database(primary, replicas=[standby])
    Note, Server = define(db)
    try:
        assert (await Server.first()).standby
        async with db.transaction(read_only=True):
            assert (await Server.first()).standby
            note = await Note.create(body="async write")
            assert not (await Server.first()).standby
            assert await Note.get(note.id) is not None
        async with db.transaction():
            assert not (await Server.first()).standby
    finally:
        await db.disconnect()


def test_a_replica_behind_the_lag_bound_is_skipped(pair: ReplicatedDatabase) -> None:
    servers = pair.servers
    strict = Database(pair.primary, replicas=[pair.standby], max_replica_lag=0)
    patient = Database(pair.primary, replicas=[pair.standby], max_replica_lag=None)
    Note, StrictServer = define(strict)
    PatientNote, PatientServer = define(patient)
    try:
        with servers.replay_paused():
            Note.create(body="not replayed yet")
            servers.wait_received()
            # with no bound the standby serves, and it has not seen the write
            assert on_standby(PatientServer)
            assert PatientNote.where(PatientNote.body == "not replayed yet").count() == 0
            # behind by more than 0 s: the primary serves, and sees the write
            assert not on_standby(StrictServer)
            assert Note.where(Note.body == "not replayed yet").count() == 1
    finally:
        strict.disconnect()
        patient.disconnect()


async def test_reads_fall_back_to_the_primary_when_the_replica_stops(
    pair: ReplicatedDatabase, caplog: pytest.LogCaptureFixture
) -> None:
    servers = pair.servers
    db = Database(pair.primary, replicas=[pair.standby], replica_check_interval=0.2)
    sync_db = Database(pair.primary, replicas=[pair.standby], replica_check_interval=0.2)
    _, Server = define(db)
    _, SyncServer = define(sync_db)
    try:
        assert (await Server.first()).standby
        assert await anyio.to_thread.run_sync(on_standby, SyncServer)
        servers.standby.stop()  # its pooled connections are dead now, its port closed
        try:
            with caplog.at_level(logging.WARNING, logger="duo_orm.routing"):
                assert not (await Server.first()).standby
                async with db.transaction(read_only=True):
                    assert not (await Server.first()).standby
                assert not await anyio.to_thread.run_sync(on_standby, SyncServer)
            assert "reads go to the primary" in caplog.text
        finally:
            servers.standby.start()
        servers.wait_replayed()
        await asyncio.sleep(0.2)  # the down replica's last check goes stale
        assert (await Server.first()).standby  # back in service once checked again
    finally:
        await db.disconnect()
        await anyio.to_thread.run_sync(sync_db.disconnect)


def test_replicas_must_be_of_the_primary_dialect(tmp_path: Any) -> None:
    with pytest.raises(ConfigurationError, match="must be a postgresql database"):
        Database("postgresql://127.0.0.1/app", replicas=[f"sqlite:///{tmp_path / 'r.db'}"])
    with pytest.raises(ConfigurationError, match="max_replica_lag"):
        Database("postgresql://127.0.0.1/app", replicas=["postgresql://r/app"], max_replica_lag=-1)
