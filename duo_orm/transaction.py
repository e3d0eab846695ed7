"""``db.transaction()``: one session for a block, usable as ``with`` and ``async with``.

The outermost block owns a new session (no connection is taken until the first
statement), commits on normal exit and rolls back on any exception. A block
inside another one is a SAVEPOINT on the outer session.
"""

from __future__ import annotations

import asyncio
from contextvars import Token
from types import TracebackType
from typing import TYPE_CHECKING, Any

import anyio
from sqlalchemy.ext.asyncio import AsyncSession, AsyncSessionTransaction
from sqlalchemy.orm import Session, SessionTransaction

from .errors import translated_errors
from .exceptions import UnsupportedOperationError
from .frame import DeferredFrame, Frame

if TYPE_CHECKING:
    from .database import Database


class TransactionBlock:
    def __init__(self, db: Database) -> None:
        self._db = db
        self._frame: Frame | None = None  # the frame this block created, if outermost
        self._token: Token[Frame | DeferredFrame | None] | None = None
        self._outer: Frame | None = None  # the frame a nested block savepoints on
        self._savepoint: SessionTransaction | AsyncSessionTransaction | None = None
        self._entered = False

    @classmethod
    def around(cls, db: Database, frame: Frame) -> TransactionBlock:
        """A block that owns an already open frame (set in the context by someone else)."""
        block = cls(db)
        block._entered = True
        block._frame = frame
        return block

    def _enter_once(self) -> None:
        if self._entered:
            raise UnsupportedOperationError("A db.transaction() block can be entered only once.")
        self._entered = True

    # -- sync -------------------------------------------------------------

    def __enter__(self) -> Session:
        self._enter_once()
        outer = self._db._current_frame()
        if outer is None:
            session = self._db._new_sync_session()
            self._open(Frame(session, loop=None))
            return session
        self._outer = outer
        if isinstance(outer.session, AsyncSession):
            # A worker thread of an async transaction: savepoint on the owner's loop.
            async_session = outer.session
            self._savepoint = outer.call_in_loop(lambda: self._begin_async_savepoint(outer))
            return async_session.sync_session
        with outer.exclusive(), translated_errors():
            self._savepoint = outer.session.begin_nested()
        return outer.session

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        outer, savepoint = self._outer, self._savepoint
        if outer is not None:
            if isinstance(savepoint, AsyncSessionTransaction):
                outer.call_in_loop(lambda: self._end_async_savepoint(outer, exc_type is None))
            elif savepoint is not None:
                with outer.exclusive(), translated_errors():
                    _end_sync_savepoint(savepoint, commit=exc_type is None)
            return
        frame = self._frame
        assert frame is not None and isinstance(frame.session, Session)
        try:
            with translated_errors():
                if exc_type is None:
                    frame.session.commit()
                else:
                    frame.session.rollback()
        finally:
            frame.session.close()
            self._close()

    # -- async ------------------------------------------------------------

    async def __aenter__(self) -> AsyncSession:
        self._enter_once()
        outer = self._db._current_frame()
        if outer is None:
            session = self._db._new_async_session()
            self._open(Frame(session, loop=asyncio.get_running_loop()))
            return session
        if not isinstance(outer.session, AsyncSession):
            raise UnsupportedOperationError(
                "A sync db.transaction() is active here; an `async with db.transaction()` "
                "cannot nest inside it."
            )
        self._outer = outer
        self._savepoint = await self._begin_async_savepoint(outer)
        return outer.session

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._outer is not None:
            await self._end_async_savepoint(self._outer, commit=exc_type is None)
            return
        frame = self._frame
        assert frame is not None and isinstance(frame.session, AsyncSession)
        try:
            with translated_errors():
                if exc_type is None:
                    await frame.session.commit()
                else:
                    with anyio.CancelScope(shield=True):
                        await frame.session.rollback()
        finally:
            with anyio.CancelScope(shield=True):
                await frame.session.close()
            self._close()

    async def _begin_async_savepoint(self, outer: Frame) -> AsyncSessionTransaction:
        assert isinstance(outer.session, AsyncSession)
        with outer.exclusive(), translated_errors():
            return await outer.session.begin_nested()

    async def _end_async_savepoint(self, outer: Frame, commit: bool) -> None:
        savepoint = self._savepoint
        assert isinstance(savepoint, AsyncSessionTransaction)
        with outer.exclusive(), translated_errors():
            if commit and savepoint.is_active:
                await savepoint.commit()
            else:  # also closes a savepoint that a failed flush already rolled back
                with anyio.CancelScope(shield=True):
                    await savepoint.rollback()

    # -- shared -----------------------------------------------------------

    def _open(self, frame: Frame) -> None:
        self._frame = frame
        self._token = self._db._ambient.set(frame)

    def _close(self) -> None:
        assert self._frame is not None
        self._frame.active = False
        if self._token is None:  # adopted with around(): the context is not ours
            return
        try:
            self._db._ambient.reset(self._token)
        except ValueError:  # exited in another context than it was entered in
            self._db._ambient.set(
                self._token.old_value if self._token.old_value is not Token.MISSING else None
            )


def _end_sync_savepoint(savepoint: Any, commit: bool) -> None:
    if commit and savepoint.is_active:
        savepoint.commit()
    else:  # also closes a savepoint that a failed flush already rolled back
        savepoint.rollback()
