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
from sqlalchemy import Connection, PoolProxiedConnection
from sqlalchemy import exc as sa_exc
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import instance_state

from . import _lone_statement
from .frame import exclusive

if TYPE_CHECKING:
    from .database import Database


class LoneTransaction:
    """One request's transaction on ``db`` while it has only lone writes."""

    __slots__ = ("_in_use", "connection", "db", "doomed_by", "engine", "pooled", "written")

    def __init__(self, db: Database) -> None:
        self.db = db
        self.engine: AsyncEngine | None = None  # these three are taken by the first write
        self.pooled: PoolProxiedConnection | None = None
        self.connection: AsyncConnection | None = None  # around ``pooled``, for a session
        self.written: list[Any] = []  # instances written here, for the session to adopt
        self.doomed_by: BaseException | None = None
        self._in_use = threading.Lock()

    async def send(self, sql: str, parameters: Any) -> _lone_statement.Outcome:
        """Send one write in this transaction, begun with the first."""
        with exclusive(self._in_use):
            self._check_usable()
            try:
                if self.pooled is None:
                    await self._begin()
                assert self.engine is not None and self.pooled is not None
                return await _lone_statement.execute_async(
                    self.pooled, sql, parameters, self.engine.sync_engine
                )
            except BaseException as error:
                self.doomed_by = error
                raise

    async def _begin(self) -> None:
        # The pool lends the driver's connection with no ``Connection`` around it
        # (a greenlet trip per call saved); the BEGIN goes with the first statement.
        engines = self.db._engines
        self.engine = engine = engines.lone_engine()
        self.pooled = await _lone_statement.checkout(engine.sync_engine)
        await engines.begin_lone(self.pooled)

    @property
    def began(self) -> bool:
        """Whether a write took a connection (and so a session can adopt instances)."""
        return self.pooled is not None

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
        if self.pooled is None:
            return None
        if self.connection is None:
            assert self.engine is not None
            sync_connection = Connection(self.engine.sync_engine, connection=self.pooled)
            self.connection = AsyncConnection(self.engine, sync_connection)
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
        if self.pooled is None:
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
        await self._end(commit=True)

    async def rollback(self) -> None:
        if self.pooled is not None:
            await self._end(commit=False)

    async def close(self) -> None:
        """Give the connection back to the pool (rolled back if still in a transaction)."""
        if self.connection is not None:
            with anyio.CancelScope(shield=True):
                await self.connection.close()
        elif self.pooled is not None:
            await _lone_statement.give_back(self.pooled)  # shielded

    async def _end(self, *, commit: bool) -> None:
        assert self.engine is not None and self.pooled is not None
        await _lone_statement.end_transaction(
            self.pooled, self.engine.sync_engine, self.db._engines.end_lone, commit=commit
        )

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
