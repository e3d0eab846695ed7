"""Lazily built sync and async engines for one database, with SQLite made strict.

Engines are created on first use, so importing a module that builds a
``Database`` never touches the network or a missing driver. Every engine hides
SQL parameters from exception text and logs (they can hold personal data);
server databases also get pre-ping (a pooled connection the server dropped is
replaced before use) and a connect timeout. ``engine_options`` overrides each.
"""

from __future__ import annotations

import asyncio
import math
import sqlite3
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from .exceptions import ConfigurationError
from .urls import DerivedURLs, install_hint

DEFAULT_SQLITE_BUSY_TIMEOUT = 5.0  # seconds a SQLite connection waits for a lock

# Seconds to wait for a server database to accept a connection. Drivers default to
# 60-130 s, long enough for a black-holed host to stall startup and every request.
DEFAULT_CONNECT_TIMEOUT = 10.0

# The connect() argument each driver takes its connect timeout from (seconds), and
# whether it must be a whole number (libpq rounds nothing: "2.5" is refused).
CONNECT_TIMEOUT_ARGS: dict[str, tuple[str, bool]] = {
    "psycopg": ("connect_timeout", True),  # libpq's connect_timeout
    "psycopg_async": ("connect_timeout", True),
    "psycopg2": ("connect_timeout", True),
    "asyncpg": ("timeout", False),
    "pymysql": ("connect_timeout", True),
    "mysqldb": ("connect_timeout", True),
    "asyncmy": ("connect_timeout", True),
    "aiomysql": ("connect_timeout", True),
    "oracledb": ("tcp_connect_timeout", False),
    "pyodbc": ("timeout", True),  # the ODBC login timeout
    "aioodbc": ("timeout", True),
}

# ``engine_options`` key duo-orm reads itself: one connect timeout for both engines,
# passed to each driver under its own name (None: leave the driver's default).
CONNECT_TIMEOUT_OPTION = "connect_timeout"


class Engines:
    def __init__(
        self,
        urls: DerivedURLs,
        *,
        derive_async: bool,
        echo: bool,
        engine_options: dict[str, Any] | None,
    ) -> None:
        self.urls = urls
        self.derive_async = derive_async
        self._echo = echo
        self._options = dict(engine_options or {})
        self._sync: Engine | None = None
        self._async: AsyncEngine | None = None
        self._async_loop: asyncio.AbstractEventLoop | None = None
        self._memory_keeper: sqlite3.Connection | None = None
        self._isolated: Engine | None = None

    @property
    def is_sqlite(self) -> bool:
        return self.urls.dialect == "sqlite"

    @property
    def sync_created(self) -> Engine | None:
        return self._sync

    @property
    def async_created(self) -> AsyncEngine | None:
        return self._async

    def sync_engine(self) -> Engine:
        if self._sync is None:
            self._keep_memory_alive()
            self._sync = self._build(create_engine, self.urls.sync)
            if self.is_sqlite:
                _make_sqlite_strict(self._sync)
        return self._sync

    def isolated_engine(self) -> Engine:
        """A sync engine whose connections any thread may use (per-test isolation).

        A test's one connection is used by the test's thread, the test client's
        event-loop thread and worker threads, one after another; pysqlite refuses
        that unless ``check_same_thread`` is off.
        """
        if self._isolated is None:
            self._keep_memory_alive()
            options = dict(self._options)
            if self.is_sqlite:
                connect_args = dict(options.get("connect_args", {}))
                connect_args["check_same_thread"] = False
                options["connect_args"] = connect_args
            self._isolated = self._build(create_engine, self.urls.sync, options)
            if self.is_sqlite:
                _make_sqlite_strict(self._isolated)
        return self._isolated

    def async_engine(self) -> AsyncEngine:
        """The async engine of the running event loop.

        Async connections belong to the loop that opened them. A script that
        calls ``asyncio.run`` twice gets a fresh engine for the second loop
        instead of a pool full of connections tied to a closed one.
        """
        if not self.derive_async:
            raise ConfigurationError(
                "This Database was created with derive_async=False and has no async engine. "
                "Make this call from sync code, or create the Database with derive_async=True."
            )
        loop = asyncio.get_running_loop()
        if self._async is not None and self._async_loop is not loop:
            self._async.sync_engine.dispose(close=False)
            self._async = None
        if self._async is None:
            self._keep_memory_alive()
            engine = self._build(create_async_engine, self.urls.async_)
            if self.is_sqlite:
                _make_sqlite_strict(engine.sync_engine)
            self._async, self._async_loop = engine, loop
        return self._async

    def _build(self, factory: Any, url: Any, options: dict[str, Any] | None = None) -> Any:
        options = dict(self._options if options is None else options)
        options.setdefault("echo", self._echo)
        options.setdefault("hide_parameters", True)  # no personal data in logs or errors
        connect_timeout = options.pop(CONNECT_TIMEOUT_OPTION, DEFAULT_CONNECT_TIMEOUT)
        if not self.is_sqlite:
            options.setdefault("pool_pre_ping", True)
            _set_connect_timeout(options, url, connect_timeout)
        if self.is_sqlite:
            connect_args = dict(options.get("connect_args", {}))
            connect_args.setdefault("timeout", DEFAULT_SQLITE_BUSY_TIMEOUT)
            if self.urls.is_memory:
                connect_args.setdefault("check_same_thread", False)
            options["connect_args"] = connect_args
        try:
            return factory(url, **options)
        except ImportError as exc:
            raise ConfigurationError(
                f"The database driver for {url.drivername!r} is not installed "
                f"({exc.name or exc}). Fix: {install_hint(self.urls.dialect)}"
            ) from exc
        except TypeError as exc:
            raise ConfigurationError(f"Invalid engine option: {exc}") from exc

    def _keep_memory_alive(self) -> None:
        """Hold one raw connection so a shared in-memory database outlives the pools.

        It stays open through ``dispose_*`` (an adapter's lifespan restarting, a
        ``db.disconnect()``), so the data lives as long as this object; only
        ``close()`` drops it.
        """
        if self.urls.is_memory and self._memory_keeper is None:
            url = self.urls.sync
            uri = f"{url.database}?vfs=memdb"
            self._memory_keeper = sqlite3.connect(uri, uri=True, check_same_thread=False)

    async def dispose_async(self) -> None:
        if self._async is not None:
            engine, self._async = self._async, None
            if self._async_loop is asyncio.get_running_loop():
                await engine.dispose()
            else:
                engine.sync_engine.dispose(close=False)
        self.dispose_sync()

    def dispose_sync(self) -> None:
        if self._async is not None:
            # Async connections can only be closed on their own loop; with no
            # loop here, drop the pool (connections close when collected).
            self._async.sync_engine.dispose(close=False)
            self._async = None
        if self._sync is not None:
            self._sync.dispose()
            self._sync = None
        if self._isolated is not None:
            self._isolated.dispose()
            self._isolated = None

    def close(self) -> None:
        """Dispose every pool and drop a shared in-memory database for good."""
        self.dispose_sync()
        if self._memory_keeper is not None:
            self._memory_keeper.close()
            self._memory_keeper = None


def _set_connect_timeout(options: dict[str, Any], url: Any, seconds: float | None) -> None:
    """Give the driver a connect timeout unless the user already set its own argument."""
    known = CONNECT_TIMEOUT_ARGS.get(url.get_driver_name())
    if seconds is None or known is None:
        return
    name, whole = known
    connect_args = dict(options.get("connect_args", {}))
    if name in connect_args or name in url.query:
        return
    connect_args[name] = max(1, math.ceil(seconds)) if whole else seconds
    options["connect_args"] = connect_args


def _make_sqlite_strict(engine: Engine) -> None:
    """Foreign keys on, and real BEGIN/SAVEPOINT control (pysqlite's own is broken)."""

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN")

    @event.listens_for(engine.pool, "checkin")
    def _on_checkin(dbapi_connection: Any, _record: Any) -> None:
        # A COMMIT refused by a deferred constraint leaves SQLite's transaction
        # open, and SQLAlchemy considers it ended: close it before reuse, or the
        # pooled connection keeps holding the write lock.
        if dbapi_connection is None:
            return
        inner = getattr(dbapi_connection, "_connection", dbapi_connection)  # aiosqlite adapter
        if getattr(inner, "in_transaction", False):
            dbapi_connection.rollback()
