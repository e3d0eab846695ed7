"""Translate SQLAlchemy and driver exceptions into ``duo_orm.exceptions``.

Classification uses SQLSTATE codes (PostgreSQL), extended result codes
(SQLite) and error numbers (MySQL); message text is never parsed.
"""

from __future__ import annotations

import socket
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import exc as sa_exc
from sqlalchemy.orm.exc import StaleDataError

from .exceptions import (
    DatabaseBusyError,
    DatabaseError,
    DatabaseUnavailableError,
    DuoOrmError,
    IntegrityError,
    IntegrityKind,
    ObjectNotFoundError,
    TransactionConflictError,
    ValidationError,
)

SQLSTATE_KINDS: dict[str, IntegrityKind] = {
    "23505": "unique",
    "23503": "foreign_key",
    "23502": "not_null",
    "23514": "check",
}
SQLSTATE_CONFLICTS = {"40001", "40P01"}  # serialization failure, deadlock
SQLSTATE_BUSY = {"55P03"}  # lock not available (lock_timeout, NOWAIT)

SQLITE_KINDS: dict[int, IntegrityKind] = {
    2067: "unique",  # SQLITE_CONSTRAINT_UNIQUE
    1555: "unique",  # SQLITE_CONSTRAINT_PRIMARYKEY
    787: "foreign_key",  # SQLITE_CONSTRAINT_FOREIGNKEY
    1299: "not_null",  # SQLITE_CONSTRAINT_NOTNULL
    275: "check",  # SQLITE_CONSTRAINT_CHECK
}
SQLITE_BUSY = {5, 6}  # SQLITE_BUSY, SQLITE_LOCKED (primary codes): the busy timeout ran out

MYSQL_KINDS: dict[int, IntegrityKind] = {
    1062: "unique",
    1586: "unique",
    1451: "foreign_key",
    1452: "foreign_key",
    1048: "not_null",
    1364: "not_null",
    3819: "check",
}
MYSQL_CONFLICTS = {1213}  # deadlock
MYSQL_BUSY = {1205}  # lock wait timeout

# The server went away or cannot be reached: SQLSTATE class 08 (connection
# exception) and the shutdown codes of class 57 (admin/crash shutdown, cannot
# connect now); MySQL client errors for "can't connect", "gone away", "lost".
SQLSTATE_UNAVAILABLE = {"57P01", "57P02", "57P03"}
MYSQL_UNAVAILABLE = {2002, 2003, 2006, 2013}

# Python errors a driver raises for a value it cannot send: sqlite3 and aiosqlite an
# OverflowError for an int beyond 64 bits, every driver a UnicodeEncodeError for an
# unpaired surrogate. SQLAlchemy leaves them raw when the cursor raises them, and wraps
# them in a plain StatementError when a bind processor does.
_VALUE_ERRORS = (OverflowError, UnicodeEncodeError)
# where a driver's socket errors are raised from, below the driver's own frames
_IO_MODULES = ("asyncio", "socket", "ssl", "uvloop", "anyio", "concurrent", "selectors")
_DRIVER_MODULES = (
    "sqlalchemy",
    "sqlite3",
    "aiosqlite",
    "psycopg",
    "asyncpg",
    "pymysql",
    "asyncmy",
    "aiomysql",
    "MySQLdb",
    "oracledb",
    "pyodbc",
    "aioodbc",
)


def translate(error: BaseException) -> BaseException:
    """The duo-orm error to raise for ``error`` (``error`` itself if it is not ours to wrap)."""
    if isinstance(error, DuoOrmError):
        return error
    if isinstance(error, sa_exc.TimeoutError):  # the pool's checkout timeout
        return DatabaseBusyError(
            "No pooled database connection came free in time (the pool is exhausted)"
        )
    if _is_unavailable(error):
        return DatabaseUnavailableError(_unavailable_message(error))
    refused = refused_value(error)
    if refused is not None:
        return refused
    if isinstance(error, StaleDataError):
        return ObjectNotFoundError(
            "The row was not found: it was deleted, or its primary key changed, "
            "after this instance was loaded."
        )
    if isinstance(error, sa_exc.DBAPIError):
        driver_error = error.orig
        if isinstance(error, sa_exc.IntegrityError) or _integrity_kind(driver_error):
            kind = _integrity_kind(driver_error) or "other"
            return IntegrityError(
                _driver_message(driver_error), kind=kind, constraint=_constraint_name(driver_error)
            )
        if _is_busy(driver_error):
            return DatabaseBusyError(_driver_message(driver_error))
        if _is_conflict(driver_error):
            return TransactionConflictError(_driver_message(driver_error))
        return DatabaseError(_driver_message(driver_error))
    return error


@contextmanager
def translated_errors() -> Iterator[None]:
    try:
        yield
    except Exception as exc:
        mapped = translate(exc)
        if mapped is exc:
            raise
        raise mapped from exc


def refused_value(error: BaseException) -> ValidationError | None:
    """The error for a value the driver or database refused, or ``None`` if ``error`` is not one.

    A backstop: duo-orm checks values against their columns before sending them
    (``duo_orm._values``), but a value inside a SQL expression, a custom type or
    raw SQL still reaches the driver. SQLSTATE class 22 (data exception), a
    DBAPI ``DataError`` (psycopg raises one client-side for NUL) and the raw Python
    errors above all mean the same thing: the request carried a value the column
    cannot hold, a 422 rather than a 500. The message never repeats the driver's
    text, which can echo the value (asyncpg's does).
    """
    if isinstance(error, sa_exc.DBAPIError):
        sqlstate, _ = _codes(error.orig)
        if isinstance(error, sa_exc.DataError) or (sqlstate or "").startswith("22"):
            shown = f" (SQLSTATE {sqlstate})" if sqlstate else ""
            return ValidationError(
                f"The database refused a value{shown}: it does not fit its column"
            )
        return None
    cause = error.orig if isinstance(error, sa_exc.StatementError) else error
    if isinstance(cause, _VALUE_ERRORS) and _raised_by_driver(error):
        what = (
            "a number too large"
            if isinstance(cause, OverflowError)
            else "text that is not valid Unicode"
        )
        return ValidationError(f"The database driver could not send a value: {what}")
    return None


def _raised_by_driver(error: BaseException) -> bool:
    """Whether ``error`` came out of SQLAlchemy or a driver (not out of application code)."""
    if isinstance(error, sa_exc.StatementError):
        return True
    frames = []
    tb = error.__traceback__
    while tb is not None:
        frames.append(str(tb.tb_frame.f_globals.get("__name__", "")))
        tb = tb.tb_next
    for module in reversed(frames):  # innermost first, past the event loop and sockets
        if not module.startswith(_IO_MODULES):
            return module.startswith(_DRIVER_MODULES)
    return False


def _codes(driver_error: Any) -> tuple[str | None, int | None]:
    """(SQLSTATE, numeric driver code) from the error or the exception it wraps."""
    for candidate in (driver_error, getattr(driver_error, "__cause__", None)):
        if candidate is None:
            continue
        sqlstate = getattr(candidate, "sqlstate", None) or getattr(candidate, "pgcode", None)
        if isinstance(candidate, sqlite3.Error):
            return None, getattr(candidate, "sqlite_errorcode", None)
        if sqlstate:
            return str(sqlstate), None
        args = getattr(candidate, "args", ())
        if args and isinstance(args[0], int):  # MySQL drivers: (errno, message)
            return None, args[0]
    return None, None


def _integrity_kind(driver_error: Any) -> IntegrityKind | None:
    sqlstate, code = _codes(driver_error)
    if sqlstate is not None:
        if sqlstate in SQLSTATE_KINDS:
            return SQLSTATE_KINDS[sqlstate]
        return "other" if sqlstate.startswith("23") else None
    if code is None:
        return None
    if _is_sqlite(driver_error):
        if code in SQLITE_KINDS:
            return SQLITE_KINDS[code]
        return "other" if code & 0xFF == 19 else None  # SQLITE_CONSTRAINT family
    return MYSQL_KINDS.get(code)


def _is_unavailable(error: BaseException) -> bool:
    """Whether ``error`` says the database cannot be reached or dropped the connection.

    Decided from codes and SQLAlchemy's own disconnect detection, never from text.
    asyncpg lets the socket's errors (refused, timed out, host not found) escape
    unwrapped when a connection cannot be opened, so those count too.
    """
    if isinstance(error, sa_exc.DisconnectionError):
        return True
    if isinstance(error, (ConnectionError, TimeoutError, socket.gaierror)):
        # the driver's, not one from the app's own network calls inside a hook
        return _raised_by_driver(error)
    if not isinstance(error, sa_exc.DBAPIError):
        return False
    if error.connection_invalidated:  # the dialect recognised a disconnect
        return True
    sqlstate, code = _codes(error.orig)
    if sqlstate is not None:
        return sqlstate.startswith("08") or sqlstate in SQLSTATE_UNAVAILABLE
    if code is not None:
        return not _is_sqlite(error.orig) and code in MYSQL_UNAVAILABLE
    # No code at all and no statement: the driver failed to open a connection
    # (refused, unreachable, timed out); a refusal by the server carries a code.
    return isinstance(error, sa_exc.OperationalError) and error.statement is None


def _unavailable_message(error: BaseException) -> str:
    if isinstance(error, sa_exc.DBAPIError):
        return _driver_message(error.orig)
    return _driver_message(error)


def _is_conflict(driver_error: Any) -> bool:
    sqlstate, code = _codes(driver_error)
    if sqlstate is not None:
        return sqlstate in SQLSTATE_CONFLICTS
    return code in MYSQL_CONFLICTS and not _is_sqlite(driver_error)


def _is_busy(driver_error: Any) -> bool:
    """Whether a wait for a lock timed out (the database is overloaded, not broken)."""
    sqlstate, code = _codes(driver_error)
    if sqlstate is not None:
        return sqlstate in SQLSTATE_BUSY
    if code is None:
        return False
    if _is_sqlite(driver_error):
        return code & 0xFF in SQLITE_BUSY
    return code in MYSQL_BUSY


def _is_sqlite(driver_error: Any) -> bool:
    return isinstance(driver_error, sqlite3.Error)


def _constraint_name(driver_error: Any) -> str | None:
    for candidate in (driver_error, getattr(driver_error, "__cause__", None)):
        diag = getattr(candidate, "diag", None)  # psycopg
        name = getattr(diag, "constraint_name", None) or getattr(candidate, "constraint_name", None)
        if name:
            return str(name)
    return None


def _driver_message(driver_error: Any) -> str:
    text = str(driver_error).strip().splitlines()
    return text[0] if text else type(driver_error).__name__
