"""``db.transaction()``: one session for a block, usable as ``with`` and ``async with``.

The outermost block owns a new session (no connection is taken until the first
statement), commits on normal exit and rolls back on any exception. A block
inside another one is a SAVEPOINT on the outer session.

``db.on_commit()`` callbacks run after the outermost block's COMMIT succeeded;
a SAVEPOINT that rolls back drops the ones registered inside it.
"""

from __future__ import annotations

import asyncio
from contextvars import Token
from types import TracebackType
from typing import TYPE_CHECKING, Any

import anyio
from sqlalchemy.ext.asyncio import AsyncSession, AsyncSessionTransaction
from sqlalchemy.orm import Session, SessionTransaction

from ._callbacks import run_after_async_commit, run_after_sync_commit
from .engines import Access
from .errors import translated_errors
from .exceptions import UnsupportedOperationError
from .frame import DeferredFrame, Frame, RequestFrames

if TYPE_CHECKING:
    from .database import Database


class TransactionBlock:
    def __init__(self, db: Database, access: Access = "write") -> None:
        self._db = db
        self._access = access  # "read": db.transaction(read_only=True)
        self._frame: Frame | None = None  # the frame this block created, if outermost
        self._token: Token[Frame | DeferredFrame | RequestFrames | None] | None = None
        self._outer: Frame | None = None  # the frame a nested block savepoints on
        self._savepoint: SessionTransaction | AsyncSessionTransaction | None = None
        self._mark = 0  # how many on_commit callbacks the outer frame had at the savepoint
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
            session = self._db._new_sync_session(self._access)
            self._open(Frame(session, loop=None))
            return session
        self._outer = outer
        self._mark = len(outer.callbacks)
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
            released = False
            try:
                if isinstance(savepoint, AsyncSessionTransaction):
                    released = outer.call_in_loop(
                        lambda: self._end_async_savepoint(outer, exc_type is None)
                    )
                elif savepoint is not None:
                    with outer.exclusive(), translated_errors():
                        released = _end_sync_savepoint(savepoint, commit=exc_type is None)
            finally:
                if not released:
                    del outer.callbacks[self._mark :]
            return
        frame = self._frame
        assert frame is not None and isinstance(frame.session, Session)
        committed = False
        try:
            with translated_errors():
                if exc_type is None:
                    frame.session.commit()
                    committed = True
                else:
                    frame.session.rollback()
        finally:
            frame.session.close()
            self._close()
            callbacks, frame.callbacks = frame.callbacks, []
        if committed and callbacks:
            run_after_sync_commit(callbacks)

    # -- async ------------------------------------------------------------

    async def __aenter__(self) -> AsyncSession:
        self._enter_once()
        outer = self._db._current_frame()
        if outer is None:
            session = self._db._new_async_session(self._access)
            self._open(Frame(session, loop=asyncio.get_running_loop()))
            return session
        if not isinstance(outer.session, AsyncSession):
            raise UnsupportedOperationError(
                "A sync db.transaction() is active here; an `async with db.transaction()` "
                "cannot nest inside it."
            )
        self._outer = outer
        self._mark = len(outer.callbacks)
        self._savepoint = await self._begin_async_savepoint(outer)
        return outer.session

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        outer = self._outer
        if outer is not None:
            released = False
            try:
                released = await self._end_async_savepoint(outer, commit=exc_type is None)
            finally:
                if not released:
                    del outer.callbacks[self._mark :]
            return
        frame = self._frame
        assert frame is not None and isinstance(frame.session, AsyncSession)
        committed = False
        try:
            with translated_errors():
                if exc_type is None:
                    await frame.session.commit()
                    committed = True
                else:
                    with anyio.CancelScope(shield=True):
                        await frame.session.rollback()
        finally:
            with anyio.CancelScope(shield=True):
                await frame.session.close()
            self._close()
            callbacks, frame.callbacks = frame.callbacks, []
        if committed and callbacks:
            await run_after_async_commit(callbacks)

    async def _begin_async_savepoint(self, outer: Frame) -> AsyncSessionTransaction:
        assert isinstance(outer.session, AsyncSession)
        with outer.exclusive(), translated_errors():
            return await outer.session.begin_nested()

    async def _end_async_savepoint(self, outer: Frame, commit: bool) -> bool:
        """RELEASE (True) or ROLLBACK TO (False) this block's savepoint."""
        savepoint = self._savepoint
        assert isinstance(savepoint, AsyncSessionTransaction)
        with outer.exclusive(), translated_errors():
            if commit and savepoint.is_active:
                await savepoint.commit()
                return True
            # also closes a savepoint that a failed flush already rolled back
            with anyio.CancelScope(shield=True):
                await savepoint.rollback()
            return False

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


def _end_sync_savepoint(savepoint: Any, commit: bool) -> bool:
    """RELEASE (True) or ROLLBACK TO (False) a savepoint."""
    if commit and savepoint.is_active:
        savepoint.commit()
        return True
    # also closes a savepoint that a failed flush already rolled back
    savepoint.rollback()
    return False
