"""One autocommitted statement on a pooled asyncpg connection, past ``Connection``.

What ``_lone_statement.run_async`` does for psycopg, for asyncpg. A pooled asyncpg
connection that SQLAlchemy has begun nothing on is in autocommit, so the statement
is one round trip, sent with asyncpg's own statement cache. SQLAlchemy's result
processors depend on the type of each result column (``NUMERIC`` or ``FLOAT`` for
``Numeric``), which asyncpg reports only on a prepared statement: that is asked
once per statement and engine, and kept as the cursor description SQLAlchemy's
asyncpg cursor would have given.

Not behind a transaction pooler: a statement asyncpg prepared there is not known
on the next server connection (``lone_reads`` leaves those to ``Connection``).
"""

from __future__ import annotations

import weakref
from typing import Any, cast

import anyio
from sqlalchemy import Engine, PoolProxiedConnection
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.util import LRUCache

from . import _lone_statement
from ._lone_statement import Outcome

_DESCRIPTIONS: weakref.WeakKeyDictionary[Engine, LRUCache[str, Any]] = weakref.WeakKeyDictionary()
_CAPACITY = 500  # statements per engine, as many shapes as ``_compiled_reads`` keeps


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
    driver: Any = pooled.driver_connection
    try:
        description = await _description(driver, sql, engine)
        if description is None:
            await driver.execute(sql, *parameters)
            return None, None
        if many:
            return await driver.fetch(sql, *parameters), description
        return await driver.fetchrow(sql, *parameters), description
    except Exception as error:
        translated = _translated(pooled, error)
        gone = engine.dialect.is_disconnect(cast(Any, translated), pooled.dbapi_connection, None)
        if gone or not _answered(driver, error):
            await _lost(pooled, translated)
        wrapped = _lone_statement.wrapped(translated, sql, parameters, engine, invalidated=gone)
        raise wrapped from error
    # Cancelled midway: asyncpg cancels the query on the server, and the connection's
    # next statement waits for that to finish, so it goes back to the pool as it is.


async def _description(driver: Any, sql: str, engine: Engine) -> Any:
    """The DBAPI cursor description of ``sql``'s result (``None``: it returns no rows)."""
    known = _DESCRIPTIONS.get(engine)
    if known is None:
        known = _DESCRIPTIONS[engine] = LRUCache(_CAPACITY)
    if sql in known:
        return known[sql]
    attributes = (await driver.prepare(sql)).get_attributes()
    description = (
        tuple((a.name, a.type.oid, None, None, None, None, None) for a in attributes)
        if attributes
        else None
    )
    known[sql] = description
    return description


def _answered(driver: Any, error: Exception) -> bool:
    """Whether the connection is as usable as before ``error``: the server refused the
    statement, or asyncpg refused a value before sending anything. Anything else (a
    timeout, a lost socket, asyncpg's own state errors) drops it."""
    import asyncpg  # type: ignore[import-untyped]  # only called with asyncpg connections

    # asyncpg's value errors before sending are ValueErrors too
    refused = isinstance(error, asyncpg.PostgresError | ValueError)
    return refused and not driver.is_closed()


def _translated(pooled: PoolProxiedConnection, error: Exception) -> Exception:
    """``error`` as SQLAlchemy's asyncpg adapter raises it (its DBAPI exception, with
    the SQLSTATE), so that it is wrapped and translated like the ``Connection`` path's."""
    adapter: Any = pooled.dbapi_connection
    try:
        adapter._handle_exception(error)  # raises the adapted error
    except Exception as adapted:
        return adapted
    return error


async def _lost(pooled: PoolProxiedConnection, error: BaseException | None) -> None:
    with anyio.CancelScope(shield=True):
        await _lone_statement.lose(pooled, error)
