"""Lazily built sync and async engines for one database, with SQLite made strict.

Engines are created on first use, so importing a module that builds a
``Database`` never touches the network or a missing driver. Every engine hides
SQL parameters from exception text and logs (they can hold personal data) and
keeps a pool sized for a web worker; server databases also get a liveness check
at checkout (a pooled connection the server dropped is replaced before use; see
``liveness``) and a connect timeout; SQLite files get the settings production
SQLite needs (WAL journal, ``synchronous=NORMAL``, a busy timeout, writers that
take the lock at BEGIN).
``engine_options`` overrides each.

Each engine is used in three ways (``Access``): transactions that may write,
transactions that only read, and a lone read that needs no transaction at all.
"""

from __future__ import annotations

import asyncio
import math
import os
import sqlite3
from typing import Any, Literal

from sqlalchemy import Engine, PoolProxiedConnection, create_engine, event
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import QueuePool

from . import liveness
from ._aiosqlite_hops import OneHopConnection
from ._driver_sql import send_begin
from ._lone_statement import idle_safe
from ._writer_queue import WriterQueue, WriterTurns, writer_queue
from .exceptions import ConfigurationError
from .poolers import behind_transaction_pooler
from .urls import DerivedURLs, install_hint

DEFAULT_SQLITE_BUSY_TIMEOUT = 5.0  # seconds a SQLite connection waits for a lock

# PRAGMAs every SQLite file connection runs (``engine_options={"sqlite_pragmas": ...}``
# changes or, with None, drops one). WAL lets readers and one writer work at once;
# NORMAL syncs at checkpoints instead of every COMMIT, and in WAL mode that is still
# safe against corruption (a power cut may lose the last commits, never the file).
DEFAULT_SQLITE_PRAGMAS: dict[str, str | None] = {"journal_mode": "wal", "synchronous": "normal"}
SQLITE_PRAGMAS_OPTION = "sqlite_pragmas"
# How a SQLite transaction that may write begins: "immediate" takes the write lock at
# BEGIN, so a busy writer is waited for up front instead of failing at its first write
# after reading (a deferred reader cannot wait for the lock); "deferred" is SQLite's own.
SQLITE_BEGIN_OPTION = "sqlite_begin"
SQLITE_BEGIN_MODES = ("immediate", "deferred")
# Whether this process's BEGIN IMMEDIATEs queue for their turn (``_writer_queue``)
# before meeting SQLite's busy handler; False leaves the waiting to SQLite alone.
SQLITE_QUEUE_OPTION = "sqlite_queue_writers"

# A pool that keeps enough connections for one web worker's concurrent requests:
# SQLAlchemy's own (5 kept, 10 overflow closed on return) opens and closes a
# connection for most requests once more than 5 run at once.
DEFAULT_POOL_SIZE = 20
DEFAULT_MAX_OVERFLOW = 0

# "write": a transaction that may write (SQLite: BEGIN IMMEDIATE);
# "read": a transaction that is expected to only read (SQLite: a deferred BEGIN);
# "single_read": one read statement on its own, with no BEGIN/COMMIT at all.
Access = Literal["write", "read", "single_read"]
_BEGIN = "duo_orm_begin"  # execution option: the SQLite BEGIN a connection sends
_UNBEGUN = "unbegun"  # the async engine's view for lone_engine
_BEGIN_SQL = {"immediate": "BEGIN IMMEDIATE", "deferred": "BEGIN", "none": None}

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

# ``engine_options`` key duo-orm reads itself: True when a transaction-pooling proxy
# (PgBouncer's pool_mode=transaction) stands between the app and PostgreSQL; see
# duo_orm.poolers for what it changes per driver.
TRANSACTION_POOLING_OPTION = "transaction_pooling"


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
        self._sqlite_pragmas, self._sqlite_begin = _sqlite_settings(self._options, urls)
        self._sync: Engine | None = None
        self._async: AsyncEngine | None = None
        self._async_loop: asyncio.AbstractEventLoop | None = None
        self._memory_keeper: sqlite3.Connection | None = None
        self._isolated: Engine | None = None
        self._sync_variants: dict[Access, Engine] = {}
        # how the sync SQLite engine's writers take turns (None: they don't)
        self.sync_turns: WriterTurns | None = None
        self._async_turns: WriterTurns | None = None
        self._async_variants: dict[str, AsyncEngine] = {}  # by access, and _UNBEGUN

    def sibling(self, urls: DerivedURLs) -> Engines:
        """Engines for another server of the same database (a replica), set up like these."""
        return Engines(
            urls, derive_async=self.derive_async, echo=self._echo, engine_options=self._options
        )

    @property
    def is_sqlite(self) -> bool:
        return self.urls.dialect == "sqlite"

    @property
    def transaction_pooled(self) -> bool:
        """Whether a transaction pooler (PgBouncer) may stand between the app and the
        server: declared, or implied by what such a pooler needs of asyncpg (its or
        SQLAlchemy's statement cache turned off, statement names of the app's own)."""
        if self._options.get(TRANSACTION_POOLING_OPTION):
            return True
        given = {**self.urls.async_.query, **self._options.get("connect_args", {})}
        caches = ("statement_cache_size", "prepared_statement_cache_size")
        return "prepared_statement_name_func" in given or any(
            name in given and str(given[name]) == "0" for name in caches
        )

    @property
    def sync_created(self) -> Engine | None:
        return self._sync

    @property
    def async_created(self) -> AsyncEngine | None:
        return self._async

    def sync_engine(self, access: Access = "write") -> Engine:
        """The sync engine, or a view of it (same pool) that begins as ``access`` needs."""
        engine = self._sync
        if engine is None:
            self._keep_memory_alive()
            engine = self._sync = self._build(create_engine, self.urls.sync)
            if self.is_sqlite:
                self.sync_turns = self._turns(engine, on_loop=False)
                self._make_strict(engine, self._sqlite_begin, self.sync_turns)
        if access == "write":
            return engine
        variant = self._sync_variants.get(access)
        if variant is None:
            variant = self._sync_variants[access] = engine.execution_options(
                **self._access_options(access)
            )
        return variant

    def isolated_engine(self) -> Engine:
        """A sync engine whose connections any thread may use (per-test isolation).

        A test's one connection is used by the test's thread, the test client's
        event-loop thread and worker threads, one after another; pysqlite refuses
        that unless ``check_same_thread`` is off. Its outer transaction begins
        deferred, as a test that only reads should not lock other connections out.
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
                self._make_strict(self._isolated, "deferred")
        return self._isolated

    def isolated_async_engine(self) -> AsyncEngine:
        """A new async engine for one test's connection; the caller disposes of it.

        Its own, so the connection is really closed on the test's event loop when
        the test ends, not left in a pool that outlives the loop. Its outer
        transaction begins deferred, as ``isolated_engine``'s does.
        """
        self._keep_memory_alive()
        engine: AsyncEngine = self._build(create_async_engine, self.urls.async_)
        if self.is_sqlite:
            self._make_strict(engine.sync_engine, "deferred")
        return engine

    def async_engine(self, access: Access = "write") -> AsyncEngine:
        """The async engine of the running event loop (or a view of it, as ``sync_engine``).

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
        engine = self._async
        if engine is not None and self._async_loop is not loop:
            engine.sync_engine.dispose(close=False)
            engine = self._async = None
            self._async_variants = {}
        if engine is None:
            self._keep_memory_alive()
            engine = self._build(create_async_engine, self.urls.async_)
            if self.is_sqlite:
                sync = engine.sync_engine
                self._async_turns = self._turns(sync, on_loop=True)
                self._make_strict(sync, self._sqlite_begin, self._async_turns)
            self._async, self._async_loop = engine, loop
        if access == "write":
            return engine
        return self._async_view(engine, access, self._access_options(access))

    def _async_view(self, engine: AsyncEngine, key: str, options: dict[str, Any]) -> AsyncEngine:
        """``engine`` with ``options``, made once per loop's engine and kept by ``key``."""
        view = self._async_variants.get(key)
        if view is None:
            view = self._async_variants[key] = engine.execution_options(**options)
        return view

    def lone_engine(self) -> AsyncEngine:
        """The async engine a request's lone writes take their connection from: on
        SQLite a view whose connections leave their BEGIN to ``begin_lone``, so that a
        session made on one later begins its own on top and sends none."""
        engine = self.async_engine()
        if not self.is_sqlite:
            return engine
        return self._async_view(engine, _UNBEGUN, {_BEGIN: "none"})

    async def begin_lone(self, pooled: PoolProxiedConnection) -> None:
        """Open the database transaction of a pooled ``lone_engine`` connection, with no
        greenlet: psycopg sends its BEGIN with the first statement by itself; SQLite's
        (the configured one, after this process's writer turn) is held for the first
        statement to take along (``_aiosqlite_hops``)."""
        sql = _BEGIN_SQL[self._sqlite_begin] if self.is_sqlite else None
        if sql is None:
            return
        turns = self._async_turns
        if turns is not None and sql == "BEGIN IMMEDIATE":
            await turns.begin_async(pooled, sql)
        else:
            pooled.driver_connection.begin_with_next(sql)  # type: ignore[union-attr]

    async def end_lone(self, pooled: PoolProxiedConnection, commit: bool) -> None:
        """COMMIT or ROLLBACK what ``begin_lone`` opened, on the driver's own async
        connection (no greenlet); SQLite's writer turn is handed on after, as the
        dialect's ``do_commit`` and ``do_rollback`` do (``WriterTurns``)."""
        driver: Any = pooled.driver_connection
        try:
            await (driver.commit() if commit else driver.rollback())
        finally:
            if self._async_turns is not None:
                self._async_turns.hand_on(pooled.info)

    def _access_options(self, access: Access) -> dict[str, Any]:
        """Execution options that make a connection begin the way ``access`` needs."""
        if self.is_sqlite:
            return {_BEGIN: "deferred" if access == "read" else "none"}
        # A server transaction that only reads needs nothing special; a lone read runs
        # in autocommit: one round trip instead of BEGIN, the statement and COMMIT.
        return {"isolation_level": "AUTOCOMMIT"} if access == "single_read" else {}

    def _make_strict(self, engine: Engine, begin: str, turns: WriterTurns | None = None) -> None:
        _make_sqlite_strict(engine, begin, self._sqlite_pragmas, turns)

    def writer_queue(self) -> WriterQueue:
        """The in-process queue of this SQLite database's writers (see ``_writer_queue``),
        shared by every engine of this process on the same file."""
        database = self.urls.sync.database or ""
        return writer_queue(database if self.urls.is_memory else os.path.realpath(database))

    def _turns(self, engine: Engine, on_loop: bool) -> WriterTurns | None:
        if not self._options.get(SQLITE_QUEUE_OPTION, True):
            return None
        timeout = self._options.get("connect_args", {}).get("timeout")
        timeout = DEFAULT_SQLITE_BUSY_TIMEOUT if timeout is None else float(timeout)
        return WriterTurns(engine, self.writer_queue(), timeout, on_loop)

    def _build(self, factory: Any, url: Any, options: dict[str, Any] | None = None) -> Any:
        options = dict(self._options if options is None else options)
        options.pop(SQLITE_PRAGMAS_OPTION, None)
        options.pop(SQLITE_BEGIN_OPTION, None)
        options.pop(SQLITE_QUEUE_OPTION, None)
        options.setdefault("echo", self._echo)
        options.setdefault("hide_parameters", True)  # no personal data in logs or errors
        connect_timeout = options.pop(CONNECT_TIMEOUT_OPTION, DEFAULT_CONNECT_TIMEOUT)
        if options.pop(TRANSACTION_POOLING_OPTION, False):
            options["connect_args"] = behind_transaction_pooler(url, options.get("connect_args"))
        _set_pool_size(options, url)
        socket_checked = False  # at checkout, by duo_orm.liveness instead of pre-ping
        if not self.is_sqlite:
            socket_checked = "pool_pre_ping" not in options and liveness.can_watch(
                url.get_driver_name().removesuffix("_async")
            )
            options.setdefault("pool_pre_ping", not socket_checked)
            _set_connect_timeout(options, url, connect_timeout)
        if self.is_sqlite:
            # The checkin listener of _make_sqlite_strict ends a transaction left open;
            # the pool's own reset would add a ROLLBACK (an aiosqlite thread hop) to
            # every checkin, after a COMMIT too.
            options.setdefault("pool_reset_on_return", None)
            connect_args = dict(options.get("connect_args", {}))
            connect_args.setdefault("timeout", DEFAULT_SQLITE_BUSY_TIMEOUT)
            if self.urls.is_memory:
                connect_args.setdefault("check_same_thread", False)
            options["connect_args"] = connect_args
        try:
            engine = factory(url, **options)
        except ImportError as exc:
            raise ConfigurationError(
                f"The database driver for {url.drivername!r} is not installed "
                f"({exc.name or exc}). Fix: {install_hint(self.urls.dialect)}"
            ) from exc
        except TypeError as exc:
            raise ConfigurationError(f"Invalid engine option: {exc}") from exc
        if socket_checked:
            liveness.watch(engine.sync_engine if isinstance(engine, AsyncEngine) else engine)
        return engine

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
            self._async_variants = {}
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
            self._async_variants = {}
        if self._sync is not None:
            self._sync.dispose()
            self._sync = None
            self._sync_variants = {}
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


def _set_pool_size(options: dict[str, Any], url: Any) -> None:
    """Keep a web worker's worth of connections in a queue pool, unless told otherwise."""
    if "poolclass" in options or "pool" in options:
        return
    if issubclass(url.get_dialect().get_pool_class(url), QueuePool):
        options.setdefault("pool_size", DEFAULT_POOL_SIZE)
        options.setdefault("max_overflow", DEFAULT_MAX_OVERFLOW)


def _sqlite_settings(options: dict[str, Any], urls: DerivedURLs) -> tuple[dict[str, str], str]:
    """The PRAGMAs and the BEGIN of a writing transaction, from the defaults and ``options``."""
    pragmas: dict[str, str | None] = dict(DEFAULT_SQLITE_PRAGMAS)
    if urls.is_memory:
        pragmas.pop("journal_mode")  # an in-memory database has no WAL
    given = options.get(SQLITE_PRAGMAS_OPTION) or {}
    if not isinstance(given, dict):
        raise ConfigurationError(
            f"engine_options[{SQLITE_PRAGMAS_OPTION!r}] must be a dict of PRAGMA names "
            f"to values (None drops a default), not {type(given).__name__}"
        )
    pragmas.update(given)
    for name, value in pragmas.items():
        if not name.isidentifier() or not (value is None or str(value).replace("-", "").isalnum()):
            raise ConfigurationError(f"Invalid SQLite PRAGMA {name!r} = {value!r}")
    begin = options.get(SQLITE_BEGIN_OPTION, "immediate")
    if begin not in SQLITE_BEGIN_MODES:
        raise ConfigurationError(
            f"engine_options[{SQLITE_BEGIN_OPTION!r}] must be one of "
            f"{', '.join(SQLITE_BEGIN_MODES)}, not {begin!r}"
        )
    return {k: str(v) for k, v in pragmas.items() if v is not None}, begin


def _make_sqlite_strict(
    engine: Engine, begin: str, pragmas: dict[str, str], turns: WriterTurns | None = None
) -> None:
    """Foreign keys on, the production PRAGMAs, and real BEGIN/SAVEPOINT control
    (pysqlite's own is broken): ``begin`` for transactions that may write, each
    waiting for its turn among this process's writers first when ``turns`` is given."""
    statements = ["PRAGMA foreign_keys=ON", *(f"PRAGMA {k}={v}" for k, v in pragmas.items())]

    one_hop = engine.dialect.is_async  # aiosqlite

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        if one_hop:
            dbapi_connection._connection = OneHopConnection(dbapi_connection._connection)
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        for statement in statements:
            cursor.execute(statement)
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        sql = _BEGIN_SQL[connection.get_execution_options().get(_BEGIN, begin)]
        if sql is None:  # "none": a lone read, committed by SQLite on its own
            return
        if turns is not None and sql == "BEGIN IMMEDIATE":
            turns.begin(connection, sql)
        else:
            send_begin(connection, sql)

    @event.listens_for(engine.pool, "checkin")
    @idle_safe
    def _on_checkin(dbapi_connection: Any, _record: Any) -> None:
        # A COMMIT refused by a deferred constraint leaves SQLite's transaction
        # open, and SQLAlchemy considers it ended: close it before reuse, or the
        # pooled connection keeps holding the write lock.
        if dbapi_connection is None:
            return
        inner = getattr(dbapi_connection, "_connection", dbapi_connection)  # aiosqlite adapter
        if isinstance(inner, OneHopConnection):
            inner.take_begin()  # a BEGIN held back for a first statement that never came
        if getattr(inner, "in_transaction", False):
            dbapi_connection.rollback()
