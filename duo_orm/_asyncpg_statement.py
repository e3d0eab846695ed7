"""One autocommitted statement on a pooled asyncpg connection, past ``Connection``.

What ``_lone_statement.run_async`` does for psycopg, for asyncpg. A pooled asyncpg
connection that SQLAlchemy has begun nothing on is in autocommit, so the statement
is one round trip. It runs as SQLAlchemy's asyncpg adapter runs its own: prepared on
the connection through the adapter's statement cache (its names, its size, the
dialect's schema-change timestamp), with the result column types that
SQLAlchemy's result processors need (``NUMERIC`` or ``FLOAT`` for ``Numeric``)
taken from the statement that ran. A statement the server no longer accepts after a
schema change is prepared again and sent once more; the server refused it before
running it.

Not behind a transaction pooler, where a statement prepared on one server connection
is not found on the next (``lone_reads`` leaves those to ``Connection``).
"""

from __future__ import annotations

from typing import Any

import anyio
from sqlalchemy import Engine, PoolProxiedConnection
from sqlalchemy.ext.asyncio import AsyncEngine

from . import _lone_statement
from ._lone_statement import Outcome


async def run_async(
    engine: AsyncEngine, sql: str, parameters: Any, *, many: bool = False
) -> Outcome:
    sync_engine = engine.sync_engine
    pooled = await _lone_statement.checkout(sync_engine)
    try:
        return await _execute(pooled, sql, parameters, sync_engine, many)
    finally:
        await _lone_statement.give_back(pooled)


async def _execute(
    pooled: PoolProxiedConnection, sql: str, parameters: Any, engine: Engine, many: bool
) -> Outcome:
    """The statement; a connection it leaves unusable is dropped. Cancelled midway, it is
    not: asyncpg cancels the query on the server, and the connection's next statement
    waits for that to finish."""
    import asyncpg  # type: ignore[import-untyped]  # only ever called with asyncpg's

    driver: Any = pooled.driver_connection
    adapter: Any = pooled.dbapi_connection
    dialect: Any = engine.dialect
    try:
        try:
            return await _run(adapter, dialect, sql, parameters, many)
        except asyncpg.InvalidCachedStatementError:  # the table changed since
            dialect._invalidate_schema_cache()
            return await _run(adapter, dialect, sql, parameters, many)
    except Exception as error:
        if isinstance(error, asyncpg.InternalServerError):  # a type gone from under it
            dialect._invalidate_schema_cache()  # as SQLAlchemy's execution context does
        translated = _translated(adapter, error)
        gone = dialect.is_disconnect(translated, adapter, None)
        if gone or not _answered(driver, error):
            await _lost(pooled, translated)
        if not isinstance(translated, dialect.loaded_dbapi.Error):
            raise  # a timeout, a value asyncpg cannot decode: raised as ``Connection`` does
        raise _lone_statement.wrapped(
            translated, sql, parameters, engine, invalidated=gone
        ) from error


async def _run(adapter: Any, dialect: Any, sql: str, parameters: Any, many: bool) -> Outcome:
    """The row (every row with ``many``) and the DBAPI cursor description of its columns,
    as SQLAlchemy's asyncpg cursor gives it."""
    statement, attributes = await adapter._prepare(sql, dialect._invalidate_schema_cache_asof)
    if not attributes:
        await statement.fetchrow(*parameters)
        return None, None
    description = tuple((a.name, a.type.oid, None, None, None, None, None) for a in attributes)
    if many:
        return await statement.fetch(*parameters), description
    return await statement.fetchrow(*parameters), description


def _answered(driver: Any, error: Exception) -> bool:
    """Whether the connection is as usable as before ``error``: the server refused the
    statement, asyncpg refused a value before sending anything (its value errors are
    ValueErrors too), or asyncpg's own timeout fired (it cancels the query, as for a
    cancelled task). Anything else (a lost socket, asyncpg's state errors) drops it."""
    import asyncpg

    refused = isinstance(error, asyncpg.PostgresError | ValueError | TimeoutError)
    return refused and not driver.is_closed()


def _translated(adapter: Any, error: Exception) -> Exception:
    """``error`` as SQLAlchemy's asyncpg adapter raises it (its DBAPI exception, with
    the SQLSTATE), so that it is wrapped and translated like the ``Connection`` path's;
    what the adapter does not translate comes back as it is."""
    try:
        adapter._handle_exception(error)  # raises the adapted error
    except Exception as adapted:
        return adapted
    return error


async def _lost(pooled: PoolProxiedConnection, error: BaseException | None) -> None:
    with anyio.CancelScope(shield=True):
        await _lone_statement.lose(pooled, error)
