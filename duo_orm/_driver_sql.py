"""Statements sent straight to the driver, when nobody watches the engine's statements.

A ``Connection`` executing a statement builds an execution context, a cursor and a
result, fires the engine's events and logs the SQL. For the SQLite BEGIN duo-orm
sends itself, and for ``lone_reads``, that machinery is most of the cost; on
aiosqlite the BEGIN can even wait for the transaction's first statement and share
its thread hop (``_aiosqlite_hops``). It is skipped only while nothing could tell: no
statement or error listeners on the engine or its dialect, and SQL logging off.
"""

from __future__ import annotations

import logging
import sqlite3

from sqlalchemy import Connection, Engine
from sqlalchemy import exc as sa_exc

from ._aiosqlite_hops import OneHopConnection

_ENGINE_EVENTS = (
    "before_execute",
    "after_execute",
    "before_cursor_execute",
    "after_cursor_execute",
)
_DIALECT_EVENTS = ("handle_error", "do_execute", "do_setinputsizes")


def watched(engine: Engine) -> bool:
    """Whether a statement sent past ``Connection`` would be missed by someone: an engine
    or dialect listener, or SQL logging (``echo`` or the ``sqlalchemy.engine`` logger)."""
    if engine.logger.isEnabledFor(logging.INFO):
        return True
    if not (engine._has_events or engine.dialect._has_events):
        # no listener was ever added to either: the test SQLAlchemy itself makes
        # before firing their events (the loop below costs 4-5 µs a statement)
        return False
    dialect_events = engine.dialect.dispatch
    return any(getattr(engine.dispatch, name) for name in _ENGINE_EVENTS) or any(
        getattr(dialect_events, name) for name in _DIALECT_EVENTS
    )


def send_begin(connection: Connection, sql: str) -> None:
    """Send a SQLite ``BEGIN`` past ``Connection`` unless that would hide it; its errors
    come out as SQLAlchemy's, as they would. On aiosqlite (whose connections are all
    ``OneHopConnection``) it waits for the transaction's first statement instead."""
    if watched(connection.engine):
        connection.exec_driver_sql(sql)
        return
    driver = connection.connection.driver_connection
    if isinstance(driver, OneHopConnection):
        driver.begin_with_next(sql)
        return
    assert driver is not None
    try:
        driver.execute(sql)
    except sqlite3.Error as error:
        raise sa_exc.DBAPIError.instance(
            sql, None, error, sqlite3.Error, dialect=connection.dialect
        ) from error
