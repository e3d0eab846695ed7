"""One autocommitted statement on a pooled asyncpg connection, past ``Connection``.

What ``_lone_statement.run_async`` does for psycopg, for asyncpg. A pooled asyncpg
connection that SQLAlchemy has begun nothing on is in autocommit, so the statement
is one round trip. It runs as a statement prepared on that connection and kept there
(as SQLAlchemy's asyncpg adapter keeps its own): SQLAlchemy's result processors
depend on the type of each result column (``NUMERIC`` or ``FLOAT`` for ``Numeric``),
which asyncpg reports only on a prepared statement, and the types then always
belong to the statement that ran. One the server no longer accepts after a schema
change is prepared again, once.

Not behind a transaction pooler, where a statement prepared on one server connection
is not found on the next, and names prepared by two clients clash (``lone_reads``
leaves those to ``Connection``).
"""

from __future__ import annotations

from typing import Any, cast

import anyio
from sqlalchemy import Engine, PoolProxiedConnection
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.util import LRUCache

from . import _lone_statement
from ._lone_statement import Outcome

_STATEMENTS = "duo_orm_asyncpg_statements"  # in a pooled connection's ``info``
_CAPACITY = 100  # statements kept prepared per connection, as asyncpg's own cache


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
    try:
        try:
            return await _run(await _prepared(pooled, driver, sql), parameters, many)
        except asyncpg.InvalidCachedStatementError:  # the table changed since
            return await _run(await _prepared(pooled, driver, sql, again=True), parameters, many)
    except Exception as error:
        translated = _translated(pooled, error)
        gone = engine.dialect.is_disconnect(cast(Any, translated), pooled.dbapi_connection, None)
        if gone or not _answered(driver, error):
            await _lost(pooled, translated)
        if not isinstance(translated, engine.dialect.loaded_dbapi.Error):
            raise  # a timeout, a value asyncpg cannot decode: raised as ``Connection`` does
        raise _lone_statement.wrapped(
            translated, sql, parameters, engine, invalidated=gone
        ) from error


async def _prepared(
    pooled: PoolProxiedConnection, driver: Any, sql: str, *, again: bool = False
) -> Any:
    """``sql`` prepared on this connection: kept from an earlier call, or now."""
    kept = pooled.info.get(_STATEMENTS)
    if kept is None or kept[0] is not driver:  # a new connection behind the record
        kept = pooled.info[_STATEMENTS] = (driver, LRUCache(_CAPACITY))
    statements: LRUCache[str, Any] = kept[1]
    statement = None if again else statements.get(sql)
    if statement is None:
        statement = statements[sql] = await driver.prepare(sql)
    return statement


async def _run(statement: Any, parameters: Any, many: bool) -> Outcome:
    """The row (every row with ``many``) and the DBAPI cursor description of its columns,
    as SQLAlchemy's asyncpg cursor gives it."""
    attributes = statement.get_attributes()
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


def _translated(pooled: PoolProxiedConnection, error: Exception) -> Exception:
    """``error`` as SQLAlchemy's asyncpg adapter raises it (its DBAPI exception, with
    the SQLSTATE), so that it is wrapped and translated like the ``Connection`` path's;
    what the adapter does not translate comes back as it is."""
    adapter: Any = pooled.dbapi_connection
    try:
        adapter._handle_exception(error)  # raises the adapted error
    except Exception as adapted:
        return adapted
    return error


async def _lost(pooled: PoolProxiedConnection, error: BaseException | None) -> None:
    with anyio.CancelScope(shield=True):
        await _lone_statement.lose(pooled, error)
