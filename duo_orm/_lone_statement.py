"""One autocommitted statement on a pooled DBAPI connection, past ``Connection``.

``lone_reads`` and ``lone_writes`` send a statement compiled once, with parameters
they processed themselves, straight to the driver: no execution context, cursor
wrapper or result object. What ``Connection`` would still have done is done here:
the pool lends and takes back the connection, a driver error comes out wrapped as
SQLAlchemy wraps it (so it is translated the same way), and a disconnect
invalidates the connection. On PostgreSQL the statement runs in autocommit, one
round trip, and the connection goes back to the pool as it came.

A request's lone writes (``lone_transaction``) use the same pieces inside a
transaction of their own: ``checkout``, ``execute_async``, ``end_transaction`` and
``give_back``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar, cast

import anyio
from sqlalchemy import Dialect, Engine, PoolProxiedConnection, QueuePool
from sqlalchemy import exc as sa_exc
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool.base import ResetStyle

from ._greenlets import run_sync

# The row (or None; every row with ``many``) and the cursor's description, as the
# driver gave them.
Outcome = tuple[Any, Any]


def run(engine: Engine, sql: str, parameters: Any, *, many: bool = False) -> Outcome:
    try:
        pooled = engine.raw_connection()
    except engine.dialect.loaded_dbapi.Error as error:  # the server is down, refuses, ...
        raise wrapped(error, None, None, engine, connecting=True) from error
    try:
        connection: Any = pooled.driver_connection
        autocommit = engine.dialect.name == "postgresql" and not connection.autocommit
        if autocommit:  # one round trip, and no transaction left for the pool to end
            connection.autocommit = True
        try:
            return execute(pooled, sql, parameters, engine, many=many)
        finally:
            if autocommit and pooled.is_valid:
                connection.autocommit = False
    finally:
        pooled.close()


def execute(
    pooled: PoolProxiedConnection, sql: str, parameters: Any, engine: Engine, *, many: bool = False
) -> Outcome:
    """One statement on a pooled connection, in whatever transaction it is in. Sync:
    on an async engine's connection (aiosqlite's adapter) it runs in a greenlet."""
    dialect = engine.dialect
    dbapi_error: type[Any] = dialect.loaded_dbapi.Error
    connection: Any = pooled.dbapi_connection
    cursor = connection.cursor()
    try:
        cursor.execute(sql, parameters)
        description = cursor.description
        if description is None:
            row = None
        elif many:
            row = cursor.fetchall()
        else:
            row = cursor.fetchone()
    except Exception as error:  # the driver's, or a value it cannot send (OverflowError)
        if isinstance(error, dbapi_error) and dialect.is_disconnect(error, connection, cursor):
            pooled.invalidate(error)
        raise wrapped(error, sql, parameters, engine) from error
    finally:
        cursor.close()
    return row, description


async def run_async(
    engine: AsyncEngine, sql: str, parameters: Any, *, many: bool = False
) -> Outcome:
    """``run`` on psycopg's async connection (the only async driver sent to)."""
    sync_engine = engine.sync_engine
    pooled = await checkout(sync_engine)
    driver: Any = pooled.driver_connection
    autocommit = False
    try:
        if not driver.autocommit:
            await driver.set_autocommit(True)
            autocommit = True
        return await execute_async(pooled, sql, parameters, sync_engine, many)
    finally:
        await give_back(pooled, autocommit=autocommit)


async def checkout(sync_engine: Engine) -> PoolProxiedConnection:
    """A pooled connection of an async engine; a refused connect comes out as
    SQLAlchemy's error, as ``Connection`` would raise it."""
    try:
        return await run_sync(sync_engine.raw_connection)
    except sync_engine.dialect.loaded_dbapi.Error as error:
        raise wrapped(error, None, None, sync_engine, connecting=True) from error


async def lose(pooled: PoolProxiedConnection, error: BaseException | None = None) -> None:
    """Drop ``pooled``, gone bad, from the pool (once)."""
    if pooled.is_valid:
        await run_sync(pooled.invalidate, error)


async def give_back(pooled: PoolProxiedConnection, *, autocommit: bool = False) -> None:
    """Hand a psycopg, asyncpg or aiosqlite connection back to the pool, out of
    autocommit if ``autocommit``, and rolled back if a transaction is still open on it
    (as the pool's reset would; an asyncpg connection in one is dropped instead, see
    ``_reusable``)."""
    driver: Any = pooled.driver_connection  # None once invalidated
    if driver is not None and pooled.is_valid and _idle(driver) and _checkin_never_waits(pooled):
        # The usual way back sends nothing and waits for nothing (autocommit goes off
        # on an idle psycopg connection without I/O), so a cancel cannot land on it and
        # needs no shield (an anyio shield costs 8-13 µs here). Should the switch ever
        # wait and be cancelled, the shielded way below finishes the job.
        try:
            if autocommit:
                await driver.set_autocommit(False)
        except BaseException:
            await _give_back_shielded(pooled, driver, autocommit=autocommit)
            raise
        _returned(pooled, True)
        return
    await _give_back_shielded(pooled, driver, autocommit=autocommit)


async def _give_back_shielded(
    pooled: PoolProxiedConnection, driver: Any, *, autocommit: bool
) -> None:
    with anyio.CancelScope(shield=True):
        # A query cancelled midway: psycopg closes the connection, or (before
        # 3.2) leaves the query running on it. Either way it is not reusable.
        reusable = driver is not None and _reusable(driver)
        try:
            if reusable and not _idle(driver):
                await driver.rollback()
        except Exception:
            reusable = False
        idle = reusable and _idle(driver)
        try:
            if not idle:
                await lose(pooled)
            elif autocommit and pooled.is_valid:
                await driver.set_autocommit(False)
        finally:
            if idle and _checkin_never_waits(pooled):
                _returned(pooled, idle)  # no await on the way: no greenlet needed
            else:
                await run_sync(_returned, pooled, idle)


def _returned(pooled: PoolProxiedConnection, idle: bool) -> None:
    """Back to the pool. A connection known to be outside a transaction is not rolled
    back again on its way (the pool's reset would cost a lock and a greenlet switch),
    as ``Connection.close()`` skips it after ending its own transaction."""
    if idle:
        cast(Any, pooled)._close_special(transaction_reset=True)
    else:
        pooled.close()


def _checkin_never_waits(pooled: PoolProxiedConnection) -> bool:
    """Whether ``_returned`` of an idle connection runs nothing that awaits the driver,
    so it needs no trip through the greenlet bridge (11 µs here): a queue pool with
    room for it (else the pool closes it), no checkin listener but duo-orm's own
    (``idle_safe``), no reset listener, no COMMIT on return."""
    pool = getattr(pooled, "_pool", None)  # the pool it came from, even after dispose()
    return (
        isinstance(pool, QueuePool)
        and pool.checkedin() < pool.size()
        and all(getattr(listener, _IDLE_SAFE, False) for listener in pool.dispatch.checkin)
        and not pool.dispatch.reset
        and getattr(pool, "_reset_on_return", None) is not ResetStyle.reset_commit
    )


_IDLE_SAFE = "_duo_orm_idle_safe"
Listener = TypeVar("Listener", bound=Callable[..., None])


def idle_safe(listener: Listener) -> Listener:
    """Mark one of duo-orm's pool ``checkin`` listeners as one that sends nothing to
    the driver for a connection in no transaction (``_checkin_never_waits``)."""
    setattr(listener, _IDLE_SAFE, True)
    return listener


async def execute_async(
    pooled: PoolProxiedConnection,
    sql: str,
    parameters: Any,
    engine: Engine,
    many: bool = False,
) -> Outcome:
    """``execute`` on an async driver connection (psycopg's, or aiosqlite's
    ``OneHopConnection``), in whatever transaction it is in; a connection gone bad is
    dropped from the pool."""
    dialect = engine.dialect
    dbapi_error: type[Any] = dialect.loaded_dbapi.Error
    driver: Any = pooled.driver_connection
    cursor = driver.cursor() if many else _kept_cursor(pooled, driver)
    try:
        await cursor.execute(sql, parameters)
        description = cursor.description
        if description is None:
            row = None
        elif many:
            row = await cursor.fetchall()
        else:
            row = await cursor.fetchone()
    except Exception as error:  # the driver's, or a value it cannot send
        if isinstance(error, dbapi_error) and dialect.is_disconnect(error, driver, cursor):
            await lose(pooled, error)
        raise wrapped(error, sql, parameters, engine) from error
    # The cursor is not closed: a client-side cursor holds no server resource, and
    # dropping it frees its result, without an await (and a shielded scope) per call.
    return row, description


_CURSOR = "duo_orm_cursor"  # in a pooled connection's ``info`` (cleared if it reconnects)


def _kept_cursor(pooled: PoolProxiedConnection, driver: Any) -> Any:
    """The connection's cursor for statements of one row, made once and reused: a new
    psycopg cursor costs 15 µs more per statement (its own adapters and transformer).
    A result of many rows gets a cursor of its own, which goes with it, so that no
    idle pooled connection keeps a large result alive."""
    kept = pooled.info.get(_CURSOR)
    if kept is not None and kept[0] is driver:
        return kept[1]
    cursor = driver.cursor()
    pooled.info[_CURSOR] = (driver, cursor)
    return cursor


async def end_transaction(
    pooled: PoolProxiedConnection,
    engine: Engine,
    end: Callable[[PoolProxiedConnection, bool], Awaitable[None]],
    *,
    commit: bool,
) -> None:
    """COMMIT or ROLLBACK (``end``) the DBAPI transaction of a connection that has no
    SQLAlchemy transaction. A refused COMMIT comes out as SQLAlchemy's error; a
    ROLLBACK that cannot run (the query was cancelled midway, the connection is gone)
    drops the connection instead."""
    if commit:
        await _end(pooled, engine, end, commit=True)
    else:
        with anyio.CancelScope(shield=True):
            await _end(pooled, engine, end, commit=False)


async def _end(
    pooled: PoolProxiedConnection,
    engine: Engine,
    end: Callable[[PoolProxiedConnection, bool], Awaitable[None]],
    *,
    commit: bool,
) -> None:
    dialect = engine.dialect
    if not pooled.is_valid:
        if commit:
            raise sa_exc.PendingRollbackError("The connection was lost; nothing committed.")
        return
    if not commit and not _reusable(pooled.driver_connection):
        await lose(pooled)
        return
    try:
        await end(pooled, commit)
    except Exception as error:
        if not commit:
            await lose(pooled, error)
            return
        if not isinstance(error, dialect.loaded_dbapi.Error):
            raise
        if dialect.is_disconnect(error, pooled.dbapi_connection, None):
            await lose(pooled, error)
        raise wrapped(error, "COMMIT", None, engine) from error


# libpq's transaction states (``PQTRANS_*``), read from ``pgconn``: ``driver.info``
# would make an object per read.
_IDLE, _ACTIVE = 0, 1


def _reusable(driver: Any) -> bool:
    """Whether a psycopg connection is open and not in the middle of a query (aiosqlite
    finishes a statement in its thread whatever happens to the task that sent it, and
    asyncpg finishes cancelling one before the connection's next statement). An
    asyncpg connection is reusable only outside a transaction: there is no driver
    ROLLBACK here to end one (statement mode never begins one on it)."""
    pgconn = getattr(driver, "pgconn", None)
    if pgconn is None:
        return not _asyncpg(driver) or _idle(driver)
    return not driver.closed and pgconn.transaction_status != _ACTIVE


def _idle(driver: Any) -> bool:
    """Whether a psycopg, asyncpg or aiosqlite (``OneHopConnection``) connection is
    open, and in no transaction."""
    pgconn = getattr(driver, "pgconn", None)
    if pgconn is None:
        if _asyncpg(driver):
            return not driver.is_closed() and not driver.is_in_transaction()
        return not driver.in_transaction
    return not driver.closed and pgconn.transaction_status == _IDLE


def _asyncpg(driver: Any) -> bool:
    return hasattr(driver, "is_in_transaction")


def wrapped(
    error: Exception,
    sql: str | None,
    parameters: Any,
    engine: Engine,
    *,
    connecting: bool = False,
    invalidated: bool = False,
) -> Exception:
    """``error`` (from the driver, or from processing a parameter) as SQLAlchemy would
    have raised it: a ``DBAPIError`` subclass, or a ``StatementError``. ``connecting``:
    it came from the pool's connect, which ``engine.raw_connection()`` leaves bare;
    ``invalidated``: the dialect took it for a disconnect, and the connection is gone."""
    dialect: Dialect = engine.dialect
    result: Exception = sa_exc.DBAPIError.instance(
        sql,
        parameters,
        error,
        dialect.loaded_dbapi.Error,
        hide_parameters=engine.hide_parameters,
        connection_invalidated=invalidated
        or (connecting and dialect.is_disconnect(cast(Any, error), None, None)),
        dialect=dialect,
    )
    return result
