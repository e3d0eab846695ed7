"""``Query.iterate()``: stream rows from one open result in constant memory.

Rows are fetched ``batch_size`` at a time with ``yield_per`` (a server-side
cursor where the driver has one), so only one batch is in memory. Outside a
transaction the stream owns a session until it ends or is closed; inside one it
reads on the transaction's session, taking the session only while fetching so
the loop body may make ORM calls of its own.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import nullcontext
from typing import TYPE_CHECKING, Any

import anyio
from sqlalchemy import Select
from sqlalchemy.ext.asyncio import AsyncScalarResult, AsyncSession
from sqlalchemy.orm import Session

from . import dispatch
from .errors import translated_errors
from .exceptions import UnsupportedOperationError
from .frame import Frame

if TYPE_CHECKING:
    from .database import Database


def stream(db: Database, statement: Select[Any], batch_size: int, batch: bool) -> Any:
    """A generator in sync code, an async generator in async code."""
    statement = statement.execution_options(yield_per=batch_size)
    if dispatch.event_loop_running():
        return _stream_async(db, statement, batch_size, batch)
    return _stream_sync(db, statement, batch_size, batch)


def _stream_sync(
    db: Database, statement: Select[Any], batch_size: int, batch: bool
) -> Iterator[Any]:
    frame = db._current_frame()
    if frame is not None and frame.is_async:
        yield from _stream_from_worker_thread(frame, statement, batch_size, batch)
        return
    owned = frame is None
    session = db._new_sync_session() if frame is None else frame.session
    assert isinstance(session, Session)
    try:
        with _using(frame), translated_errors():
            result = session.scalars(statement)
        try:
            while True:
                with _using(frame), translated_errors():
                    rows = result.fetchmany(batch_size)
                if not rows:
                    return
                if batch:
                    yield list(rows)
                else:
                    yield from rows
        finally:
            result.close()
    finally:
        if owned:
            session.close()


async def _stream_async(
    db: Database, statement: Select[Any], batch_size: int, batch: bool
) -> AsyncIterator[Any]:
    frame = db._current_frame()
    if frame is not None and not frame.is_async:
        raise UnsupportedOperationError(
            "A sync db.transaction() is active here; `async for` over iterate() cannot "
            "join it. Use `async with db.transaction():` in async code."
        )
    owned = frame is None
    session = db._new_async_session() if frame is None else frame.session
    assert isinstance(session, AsyncSession)
    try:
        with _using(frame), translated_errors():
            result = await session.stream_scalars(statement)
        try:
            while True:
                with _using(frame), translated_errors():
                    rows = await result.fetchmany(batch_size)
                if not rows:
                    return
                if batch:
                    yield list(rows)
                else:
                    for row in rows:
                        yield row
        finally:
            with anyio.CancelScope(shield=True):
                await result.close()
    finally:
        if owned:
            with anyio.CancelScope(shield=True):
                await session.close()


def _stream_from_worker_thread(
    frame: Frame, statement: Select[Any], batch_size: int, batch: bool
) -> Iterator[Any]:
    """A sync loop in a worker thread of an async transaction: fetch on the owner's loop."""
    session = frame.session
    assert isinstance(session, AsyncSession)

    async def open_result() -> AsyncScalarResult[Any]:
        with frame.exclusive(), translated_errors():
            return await session.stream_scalars(statement)

    result = frame.call_in_loop(open_result)

    async def fetch() -> list[Any]:
        with frame.exclusive(), translated_errors():
            return list(await result.fetchmany(batch_size))

    async def close() -> None:
        await result.close()

    try:
        while rows := frame.call_in_loop(fetch):
            if batch:
                yield rows
            else:
                yield from rows
    finally:
        frame.call_in_loop(close)


def _using(frame: Frame | None) -> Any:
    """Hold the transaction's session while fetching (nothing to hold for an owned one)."""
    return frame.exclusive() if frame is not None else nullcontext()
