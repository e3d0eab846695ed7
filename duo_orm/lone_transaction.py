"""A request transaction begun by lone writes, before any session exists.

A web request's transaction opens at its first write (``DeferredFrame``). When
that write is a ``create`` or an ``update`` that ``lone_writes`` can send itself,
the transaction starts as a connection alone: the statement goes to the driver
inside the open transaction, and when the response starts the transaction commits
or rolls back. The session, its transaction object and the flush, most of a small
write's cost, are never made.

The moment a call needs the session (another ORM call, the raw session,
``db.on_commit()``), it is made on this same connection and transaction and adopts
the instances written so far, so from then on everything is as if it had been there
from the start. An instance changed after its lone write but never handed to the
session is adopted when the request commits, and its change flushed before the
COMMIT, as the session would have done. A failed write dooms the transaction, as a
failed flush dooms a session's: what comes after it fails too, COMMIT included."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import anyio
from sqlalchemy import exc as sa_exc
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import instance_state
from sqlalchemy.util import greenlet_spawn

from . import _lone_statement
from .frame import exclusive

if TYPE_CHECKING:
    from .database import Database


class LoneTransaction:
    """One request's transaction on ``db`` while it has only lone writes."""

    __slots__ = ("_in_use", "connection", "db", "doomed_by", "written")

    def __init__(self, db: Database) -> None:
        self.db = db
        self.connection: AsyncConnection | None = None  # taken by the first write
        self.written: list[Any] = []  # instances written here, for the session to adopt
        self.doomed_by: BaseException | None = None
        self._in_use = threading.Lock()

    async def send(self, sql: str, parameters: Any) -> _lone_statement.Outcome:
        """Send one write in this transaction, begun with the first."""
        with exclusive(self._in_use):
            self._check_usable()
            try:
                if self.connection is None:
                    self.connection = await self.db._engines.begun_connection()
                connection = self.connection
                if connection.dialect.is_async and connection.dialect.name == "postgresql":
                    return await _lone_statement.run_in_transaction(connection, sql, parameters)
                pooled = await connection.get_raw_connection()  # aiosqlite: in a greenlet
                return await greenlet_spawn(
                    _lone_statement.execute, pooled, sql, parameters, connection.sync_engine
                )
            except BaseException as error:
                self.doomed_by = error
                raise

    def check(self, found: Callable[[Any], None], row: Any) -> None:
        """``found(row)``, whose failure (a row that is gone) dooms the transaction."""
        try:
            found(row)
        except Exception as error:
            self.doomed_by = error
            raise

    def adopt_later(self, instance: Any) -> None:
        """Note an instance a lone write stored, for the session to adopt."""
        self.written.append(instance)

    def session(self) -> AsyncSession | None:
        """The request's session, made now on this connection, holding what was written
        (``None`` if no write took a connection: any new session will do then)."""
        self._check_usable()
        if self.connection is None:
            return None
        session = self.db.async_session_factory(bind=self.connection)
        # Its transaction on the connection begins now (no statement: the database's
        # is open already), so that its COMMIT is the database's even when nothing
        # it does afterwards needs the connection.
        session.sync_session.connection()
        self._adopt(session.sync_session)
        return session

    async def commit(self) -> None:
        """COMMIT, after flushing the changes of instances changed since their create."""
        self._check_usable()
        if self.connection is None:
            return
        if any(instance_state(instance).modified for instance in self.written):
            session = self.session()
            assert session is not None
            try:
                await session.commit()
            finally:
                with anyio.CancelScope(shield=True):
                    await session.close()
            return
        await _lone_statement.end_transaction(self.connection, commit=True)

    async def rollback(self) -> None:
        if self.connection is not None:
            await _lone_statement.end_transaction(self.connection, commit=False)

    async def close(self) -> None:
        """Give the connection back to the pool (rolled back if still in a transaction)."""
        if self.connection is not None:
            with anyio.CancelScope(shield=True):
                await self.connection.close()

    def _adopt(self, session: Session) -> None:
        for instance in self.written:
            session.add(instance)
        self.written.clear()

    def _check_usable(self) -> None:
        if self.doomed_by is not None:
            raise sa_exc.PendingRollbackError(
                "This request's transaction was rolled back by an earlier failed write; "
                f"nothing more can run in it. Original exception was: {self.doomed_by}"
            )
