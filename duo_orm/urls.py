"""Turn the URL a user wrote into the sync and async URLs the engines use.

A driverless URL (``postgresql://...``) gets our default driver for each side;
an explicit ``dialect+driver://`` URL is kept as given for the side that driver
serves, and the other side gets the default.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError

from .exceptions import ConfigurationError


@dataclass(frozen=True)
class DialectDrivers:
    sync: str
    async_: str
    extra: str | None  # the duo-orm extra that installs the default drivers
    # drivers that can only serve one side; anything else is assumed to serve both
    sync_only: frozenset[str] = frozenset()
    async_only: frozenset[str] = frozenset()


# Why psycopg on both sides for PostgreSQL: one driver means identical type
# adaptation, error codes and server-side cursors in sync and async code.
# asyncpg is supported when named explicitly (``postgresql+asyncpg://``).
DIALECTS: dict[str, DialectDrivers] = {
    "sqlite": DialectDrivers(
        "pysqlite",
        "aiosqlite",
        None,
        sync_only=frozenset({"pysqlite", "pysqlcipher"}),
        async_only=frozenset({"aiosqlite"}),
    ),
    "postgresql": DialectDrivers(
        "psycopg",
        "psycopg",
        "postgresql",
        sync_only=frozenset({"psycopg2", "psycopg2cffi", "pg8000"}),
        async_only=frozenset({"asyncpg", "psycopg_async"}),
    ),
    "mysql": DialectDrivers(
        "pymysql",
        "asyncmy",
        "mysql",
        sync_only=frozenset({"pymysql", "mysqldb", "mysqlconnector"}),
        async_only=frozenset({"asyncmy", "aiomysql"}),
    ),
    "mariadb": DialectDrivers(
        "pymysql",
        "asyncmy",
        "mysql",
        sync_only=frozenset({"pymysql", "mysqldb", "mariadbconnector"}),
        async_only=frozenset({"asyncmy", "aiomysql"}),
    ),
    "mssql": DialectDrivers(
        "pyodbc",
        "aioodbc",
        "mssql",
        sync_only=frozenset({"pyodbc", "pymssql"}),
        async_only=frozenset({"aioodbc"}),
    ),
    "oracle": DialectDrivers("oracledb", "oracledb", "oracle"),
}
ALIASES = {"postgres": "postgresql", "sqlite3": "sqlite"}

# The Python module each driver imports, so a missing one is named precisely.
DRIVER_MODULES = {
    "pysqlite": "sqlite3",
    "aiosqlite": "aiosqlite",
    "psycopg": "psycopg",
    "psycopg_async": "psycopg",
    "asyncpg": "asyncpg",
    "psycopg2": "psycopg2",
    "pymysql": "pymysql",
    "asyncmy": "asyncmy",
    "aiomysql": "aiomysql",
    "pyodbc": "pyodbc",
    "aioodbc": "aioodbc",
    "oracledb": "oracledb",
}


@dataclass(frozen=True)
class DerivedURLs:
    dialect: str
    sync: URL
    async_: URL
    is_memory: bool


def supported_schemes() -> str:
    return ", ".join(sorted(DIALECTS))


def install_hint(dialect: str) -> str:
    extra = DIALECTS[dialect].extra
    return f'pip install "duo-orm[{extra}]"' if extra else 'pip install --force-reinstall "duo-orm"'


def derive_urls(raw: str | URL) -> DerivedURLs:
    try:
        url = make_url(raw)
    except (ArgumentError, ValueError) as exc:
        raise ConfigurationError(
            f"Could not parse database URL {str(raw)!r}: {exc}. "
            f"Expected e.g. 'sqlite:///app.db' or 'postgresql://user:pass@host/db'."
        ) from None

    backend, _, driver = url.drivername.partition("+")
    dialect = ALIASES.get(backend, backend)
    if dialect not in DIALECTS:
        raise ConfigurationError(
            f"Unsupported database URL scheme {backend!r}. "
            f"Supported schemes: {supported_schemes()}."
        )
    drivers = DIALECTS[dialect]

    if dialect == "sqlite" and url.database in (None, "", ":memory:"):
        url = _shared_memory_url(url)
        is_memory = True
    else:
        is_memory = False

    if not driver:
        sync_driver, async_driver = drivers.sync, drivers.async_
    elif driver in drivers.sync_only:
        sync_driver, async_driver = driver, drivers.async_
    elif driver in drivers.async_only:
        sync_driver, async_driver = drivers.sync, driver
    else:
        sync_driver = async_driver = driver

    sync_url = url.set(drivername=f"{dialect}+{sync_driver}")
    async_url = url.set(drivername=f"{dialect}+{async_driver}")
    for candidate in (sync_url, async_url):
        try:
            candidate.get_dialect()
        except (NoSuchModuleError, ValueError):  # ValueError: e.g. "postgresql+a+b"
            raise ConfigurationError(
                f"Unknown driver {candidate.drivername!r} in database URL. "
                f"Known drivers for {dialect}: {', '.join(sorted(_known_drivers(drivers)))}."
            ) from None
    return DerivedURLs(dialect, sync_url, async_url, is_memory)


def check_dialect(expected: str, actual: str) -> None:
    """``Database(url, dialect=...)``: refuse a URL of another database than the one declared."""
    name = ALIASES.get(expected.lower(), expected.lower())
    if name not in DIALECTS:
        raise ConfigurationError(
            f"Unknown dialect {expected!r}. Supported dialects: {supported_schemes()}."
        )
    same = {name, actual} <= {"mysql", "mariadb"} or name == actual  # MariaDB speaks MySQL
    if not same:
        raise ConfigurationError(
            f"The database URL is for {actual}, but dialect={expected!r} was declared."
        )


def _known_drivers(drivers: DialectDrivers) -> set[str]:
    return {drivers.sync, drivers.async_, *drivers.sync_only, *drivers.async_only}


def _shared_memory_url(url: URL) -> URL:
    """An in-memory SQLite database every connection of this process can share.

    Plain ``:memory:`` gives each connection its own empty database, so the sync
    and async engines (and every pooled connection) would each see a different
    one. SQLite's ``memdb`` VFS with a name starting in ``/`` is shared by all
    connections in the process and locks like a file, so busy timeouts work.
    """
    name = f"/duo-orm-{uuid.uuid4().hex}"
    query = dict(url.query)
    query.update({"vfs": "memdb", "uri": "true"})
    return url.set(database=f"file:{name}", query=query)


def driver_module(url: URL) -> str:
    driver = url.drivername.partition("+")[2]
    return DRIVER_MODULES.get(driver, driver)
