"""Per-test isolation: every session of a ``Database`` joins one outer transaction.

The pytest plugin (``duo_orm_pytest``) opens one real connection per test and
begins a transaction on it. While that is in place, every session duo-orm
creates (statement mode, ``db.transaction()``, request units of work, sync and
async) binds to that connection with ``join_transaction_mode="create_savepoint"``:
its BEGIN becomes a SAVEPOINT, its COMMIT a RELEASE, its rollback a ROLLBACK TO.
Ending the isolation rolls the outer transaction back, so nothing a test or the
app under test committed survives it.

One connection is the only way the test and the app under test can see one
uncommitted transaction, so it is held where most of the work runs:

- ``SyncIsolation`` (sync tests): a sync-driver connection. The app's async code,
  run by a sync test client on a loop of its own, drives it through
  ``AsyncSession``'s greenlet bridge, which runs sync driver calls as they are.
- ``AsyncIsolation`` (async tests): an ``AsyncConnection`` on the test's event
  loop, so the app's async code runs on the async driver (asyncpg, aiosqlite).
  Sync ORM calls from worker threads hop onto that loop, as they do inside an
  async request.

Both check that savepoints end in the order they began: two tasks or threads
interleaving units of work on the one connection would otherwise release or roll
back each other's savepoints without a word.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import Connection, event
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncTransaction
from sqlalchemy.orm import Session
from sqlalchemy.sql.expression import (
    ReleaseSavepointClause,
    RollbackToSavepointClause,
    SavepointClause,
)

from .errors import translated_errors
from .exceptions import ConfigurationError, UnsupportedOperationError
from .session import DuoSession

if TYPE_CHECKING:
    from sqlalchemy import RootTransaction

    from .database import Database

__all__ = ["AsyncIsolation", "Isolation", "SyncIsolation"]

T = TypeVar("T")
DDL = Callable[[Connection], None]

OVERLAP = (
    "Two units of work overlapped on the test's one connection: savepoint {name} ended "
    "while {newer} (begun after it, by another task or thread) was still open. Under the "
    "per-test rollback every transaction of {db} is a savepoint of one connection, so "
    "concurrent transactions (asyncio.gather, threads, parallel requests) would undo each "
    "other's work. Run them one after another, or mark the test "
    "@pytest.mark.duo_orm_commits to give it real connections."
)


class Isolation:
    """One connection and its outer transaction, shared by every session of ``db``."""

    db: Database
    connection: Connection  # what sync sessions bind to (and async ones, underneath)

    def _guard(self) -> None:
        self._open: list[str] = []
        event.listen(self.connection, "before_execute", self._savepoints_in_order)

    def _savepoints_in_order(
        self, _connection: Connection, statement: object, *_args: object
    ) -> None:
        if isinstance(statement, SavepointClause):
            self._open.append(statement.ident)
        elif isinstance(statement, (ReleaseSavepointClause, RollbackToSavepointClause)):
            name = statement.ident
            if name not in self._open:
                return
            newer = self._open[self._open.index(name) + 1 :]
            if newer:
                raise UnsupportedOperationError(
                    OVERLAP.format(name=name, newer=newer[0], db=self.db)
                )
            self._open.pop()

    def ddl(self, ddl: DDL) -> Coroutine[Any, Any, None] | None:
        """Run ``ddl`` in a savepoint; a coroutine when the caller must await it."""
        raise NotImplementedError


class SyncIsolation(Isolation):
    """A sync-driver connection, for a sync test (see the module docstring)."""

    def __init__(self, db: Database) -> None:
        self.db = db
        try:
            engine = db._engines.isolated_engine()
        except ConfigurationError as exc:
            if not isinstance(exc.__cause__, ImportError):
                raise
            raise ConfigurationError(
                f"A sync test runs on the sync driver of {db.sync_url.drivername!r}, which is "
                f"not installed. Install it ({exc}), or write the test as an async test "
                "(pytest.mark.anyio or pytest-asyncio), which runs on the async driver."
            ) from exc
        with translated_errors():
            self.connection = engine.connect()
        self.transaction: RootTransaction = self.connection.begin()
        self.session_class: type[Session] = _joining(self.connection)
        self._guard()

    def ddl(self, ddl: DDL) -> None:
        with translated_errors(), self.connection.begin_nested():
            ddl(self.connection)
        return None

    def end(self) -> None:
        """Roll back everything the test did and give the connection back."""
        try:
            if self.transaction.is_active:
                self.transaction.rollback()
        finally:
            self.connection.close()


def _joining(connection: Connection) -> type[Session]:
    """A session class that always binds to ``connection`` and joins its transaction.

    ``async_sessionmaker`` builds its sync session with ``bind=None``; this class
    puts the test's connection in its place.
    """

    class JoiningSession(DuoSession):
        def __init__(self, bind: Any = None, **options: Any) -> None:
            super().__init__(bind=connection, join_transaction_mode="create_savepoint", **options)

    return JoiningSession


class AsyncIsolation(Isolation):
    """An async-driver connection on the test's event loop, opened with ``await open()``."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.loop = asyncio.get_running_loop()  # the test's: the connection belongs to it

    async def open(self) -> AsyncIsolation:
        self.engine = self.db._engines.isolated_async_engine()
        try:
            with translated_errors():
                self.async_connection: AsyncConnection = await self.engine.connect()
        except BaseException:
            await self.engine.dispose()
            raise
        self.transaction: AsyncTransaction = await self.async_connection.begin()
        connection = self.async_connection.sync_connection
        assert connection is not None  # set once connected
        self.connection = connection
        self._guard()
        return self

    def check_loop(self) -> None:
        """Refuse async work from another loop: the connection belongs to the test's."""
        if asyncio.get_running_loop() is not self.loop:
            raise UnsupportedOperationError(
                f"This async test holds {self.db}'s connection on its own event loop, and "
                "this call runs on another one (a sync TestClient's?). In an async test, "
                "call the app through the `async_client` fixture (httpx.AsyncClient)."
            )

    def call_in_loop(self, make: Callable[[], Awaitable[T]]) -> T:
        """From a worker thread: run a coroutine on the test's loop and wait for it."""

        async def run() -> T:
            return await make()

        return asyncio.run_coroutine_threadsafe(run(), self.loop).result()

    def ddl(self, ddl: DDL) -> Coroutine[Any, Any, None] | None:
        async def run() -> None:
            with translated_errors():
                async with self.async_connection.begin_nested():
                    await self.async_connection.run_sync(ddl)

        try:
            asyncio.get_running_loop()
        except RuntimeError:  # a worker thread
            self.call_in_loop(run)
            return None
        self.check_loop()
        return run()

    async def end(self) -> None:
        """Roll back everything the test did and give the connection back."""
        try:
            if self.transaction.is_active:
                await self.transaction.rollback()
        finally:
            await self.async_connection.close()
            await self.engine.dispose()
