"""One thread hop per SQLite statement under aiosqlite, where SQLAlchemy's adapter makes three.

aiosqlite runs each sqlite3 call in its connection's thread, and SQLAlchemy's adapter
awaits a cursor, the statement, its rows and the cursor's close one by one: three or
four hops to aiosqlite's thread for an INSERT, each a queue put and an event-loop wake
up. The cursor handed to the adapter here does the whole statement in one hop (cursor,
execute, the first rows, close) and answers the rest from what that hop brought back;
a transaction's BEGIN rides along with its first statement. An async write
transaction is then two hops (BEGIN and the INSERT, then COMMIT) instead of eight.
A result longer than ``BATCH`` rows keeps its sqlite3 cursor open and fetches further
batches on demand, so streaming stays bounded in memory.
"""

from __future__ import annotations

import sqlite3
from collections import deque
from collections.abc import Callable, Generator, Sequence
from typing import Any, TypeVar

T = TypeVar("T")
BATCH = 1000  # rows brought back by the statement's own hop; the rest on demand


class OneHopConnection:
    """An aiosqlite connection whose cursors are ``OneHopCursor``; the rest is aiosqlite's.

    ``begin_with_next`` holds a BEGIN back until the transaction's first statement,
    which then sends both in its one hop. Ending the transaction (or a connection
    that never sent one) drops a BEGIN still held.
    """

    __slots__ = ("_aiosqlite", "_done", "_sent", "held_begin")

    def __init__(self, connection: Any) -> None:
        self._aiosqlite = connection
        self.held_begin: str | None = None
        # Statements handed to aiosqlite's thread, and those it has run: each count is
        # written by one thread only. A task cancelled while its statement waits there
        # does not stop it, so until the two meet SQLite's flag may not say it all.
        self._sent = self._done = 0

    def cursor(self) -> OneHopCursor:
        return OneHopCursor(self)

    def begin_with_next(self, sql: str) -> None:
        self.held_begin = sql

    def take_begin(self) -> str | None:
        sql, self.held_begin = self.held_begin, None
        return sql

    async def commit(self) -> None:
        # A BEGIN still held, or none sent: nothing was begun, nothing to end. (The
        # pool's reset on every checkin is such a ROLLBACK: a hop saved each time.)
        if self.take_begin() is None and self.in_transaction:
            await self._aiosqlite.commit()

    async def rollback(self) -> None:
        if self.take_begin() is None and self.in_transaction:
            await self._aiosqlite.rollback()

    @property
    def in_transaction(self) -> bool:
        """SQLite's own flag, read without a hop; True while a statement sent here has
        yet to run (it may begin one), and once closed (aiosqlite's own COMMIT or
        ROLLBACK is left to say so)."""
        if self._sent != self._done:
            return True
        try:
            return bool(self._aiosqlite._conn.in_transaction)
        except (ValueError, sqlite3.Error):
            return True

    async def hop(self, function: Callable[..., T], *args: Any) -> T:
        """``function(*args)`` in aiosqlite's thread, counted until it has run there."""

        def counted() -> T:
            try:
                return function(*args)
            finally:
                self._done += 1

        self._sent += 1
        result: T = await self._aiosqlite._execute(counted)
        return result

    async def execute(self, sql: str, parameters: Sequence[Any] | None = None) -> Any:
        cursor = OneHopCursor(self)
        return await cursor.execute(sql, parameters)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._aiosqlite, name)


class OneHopCursor:
    """Enough of ``aiosqlite.Cursor`` for SQLAlchemy's adapter, one hop per statement."""

    def __init__(self, connection: OneHopConnection) -> None:
        self._connection = connection
        self._aiosqlite = connection._aiosqlite
        self._open: sqlite3.Cursor | None = None  # rows still to fetch
        self._rows: deque[Any] = deque()
        self.description: Any = None
        self.rowcount = -1
        self.lastrowid: int | None = None
        self.arraysize = 1

    # awaited (SQLAlchemy 2.0: ``await connection.cursor()``) or entered (2.1)
    def __await__(self) -> Generator[Any, None, OneHopCursor]:
        async def itself() -> OneHopCursor:
            return self

        return itself().__await__()

    async def __aenter__(self) -> OneHopCursor:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.close()

    async def execute(self, sql: str, parameters: Sequence[Any] | None = None) -> OneHopCursor:
        await self._drop_open()
        begin = self._connection.take_begin()
        self._take(await self._connection.hop(self._run, begin, sql, parameters))
        return self

    async def executemany(self, sql: str, parameters: Any) -> OneHopCursor:
        await self._drop_open()
        begin = self._connection.take_begin()
        self._take(await self._connection.hop(self._run_many, begin, sql, parameters))
        return self

    def _run(
        self, begin: str | None, sql: str, parameters: Sequence[Any] | None
    ) -> tuple[Any, ...]:
        """In aiosqlite's thread: the held BEGIN, the statement and its first rows."""
        raw = self._aiosqlite._conn
        if begin is not None:
            raw.execute(begin)
        cursor = raw.cursor()
        try:
            cursor.execute(sql, () if parameters is None else parameters)
            rows = cursor.fetchmany(BATCH) if cursor.description else []
        except BaseException:
            cursor.close()
            raise
        done = len(rows) < BATCH
        state = (cursor.description, cursor.rowcount, cursor.lastrowid, rows)
        if done:
            cursor.close()
        return (*state, None if done else cursor)

    def _run_many(self, begin: str | None, sql: str, parameters: Any) -> tuple[Any, ...]:
        raw = self._aiosqlite._conn
        if begin is not None:
            raw.execute(begin)
        cursor = raw.cursor()
        try:
            cursor.executemany(sql, parameters)
            return (cursor.description, cursor.rowcount, cursor.lastrowid, [], None)
        finally:
            cursor.close()

    def _take(self, result: tuple[Any, ...]) -> None:
        self.description, self.rowcount, self.lastrowid, rows, self._open = result
        self._rows = deque(rows)

    async def _more(self, wanted: int | None) -> None:
        """Fetch further rows from the open cursor (all of them for ``None``)."""
        cursor = self._open
        if cursor is None:
            return

        def fetch() -> list[Any]:
            rows = cursor.fetchall() if wanted is None else cursor.fetchmany(max(wanted, BATCH))
            if wanted is None or len(rows) < max(wanted, BATCH):
                cursor.close()
                self._open = None
            return rows

        self._rows.extend(await self._connection.hop(fetch))

    async def fetchone(self) -> Any:
        if not self._rows:
            await self._more(1)
        return self._rows.popleft() if self._rows else None

    async def fetchmany(self, size: int | None = None) -> list[Any]:
        wanted = self.arraysize if size is None else size
        if len(self._rows) < wanted:
            await self._more(wanted - len(self._rows))
        return [self._rows.popleft() for _ in range(min(wanted, len(self._rows)))]

    async def fetchall(self) -> list[Any]:
        await self._more(None)
        rows, self._rows = list(self._rows), deque()
        return rows

    async def close(self) -> None:
        self._rows.clear()
        await self._drop_open()

    async def _drop_open(self) -> None:
        cursor, self._open = self._open, None
        if cursor is not None:
            await self._connection.hop(cursor.close)
