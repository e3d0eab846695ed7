"""Each test gets its own Database with fresh tables, on every backend.

Backends: an SQLite file, a shared in-memory SQLite database, and PostgreSQL
(psycopg 3 for both sides, the driverless default; and asyncpg for the async
side). PostgreSQL runs on a throwaway server (see ``postgres_server.py``); a test
gets its own database there. ``--db sqlite`` or ``--db postgresql`` narrows the
run. Sync tests use ``m``; async tests use ``am``, which builds and disposes the
async engine on the test's own event loop.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Protocol, TypeVar

import pytest

from duo_orm import Database

from .models import Models, define_models
from .postgres_server import DatabaseFactory, postgres_server
from .replication import Bouncer, Replicated, pgbouncer, replicated_servers

pytest_plugins = ["pytester"]  # tests/test_pytest_plugin.py runs user projects

T = TypeVar("T")

BACKENDS = {
    "sqlite-file": "sqlite",
    "sqlite-memory": "sqlite",
    "postgresql": "postgresql",
    "postgresql-asyncpg": "postgresql",
}


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--db",
        action="append",
        choices=sorted(set(BACKENDS.values())),
        help="run only on this database (repeatable); default: all",
    )


def selected_backends(config: pytest.Config) -> list[str]:
    wanted = config.getoption("--db") or sorted(set(BACKENDS.values()))
    return [name for name, family in BACKENDS.items() if family in wanted]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "backend" in metafunc.fixturenames:
        backends = selected_backends(metafunc.config)
        if metafunc.definition.get_closest_marker("postgres"):
            # --db sqlite deselects these (see below) instead of skipping them
            backends = [name for name in BACKENDS if BACKENDS[name] == "postgresql"]
        if metafunc.definition.get_closest_marker("persistent"):
            # separate processes share nothing in memory
            backends = [name for name in backends if name != "sqlite-memory"]
        only = metafunc.definition.get_closest_marker("backends")
        if only is not None:
            backends = [name for name in backends if name in only.args]
        metafunc.parametrize("backend", backends, scope="session")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if any(BACKENDS[name] == "postgresql" for name in selected_backends(config)):
        return
    unwanted = [item for item in items if item.get_closest_marker("postgres")]
    if unwanted:
        config.hook.pytest_deselected(items=unwanted)
        items[:] = [item for item in items if not item.get_closest_marker("postgres")]


_outcomes: Counter[tuple[str, str]] = Counter()


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.when == "call" or report.outcome != "passed":
        family = next(
            (
                BACKENDS[name]
                for name in BACKENDS
                if f"[{name}" in report.nodeid or f"-{name}]" in report.nodeid
            ),
            "no database",
        )
        _outcomes[(family, report.outcome)] += 1


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    terminalreporter.section("results per database")
    for family in sorted({family for family, _ in _outcomes}):
        counts = ", ".join(
            f"{n} {outcome}" for (f, outcome), n in sorted(_outcomes.items()) if f == family
        )
        terminalreporter.write_line(f"{family}: {counts}")


@pytest.fixture(scope="session")
def postgres_databases() -> Iterator[DatabaseFactory]:
    with postgres_server() as admin_url:
        factory = DatabaseFactory(admin_url)
        yield factory
        factory.close()


@pytest.fixture
def url(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[str]:
    if backend == "sqlite-file":
        yield f"sqlite:///{tmp_path / 'test.db'}"
    elif backend == "sqlite-memory":
        yield "sqlite:///:memory:"
    else:
        factory: DatabaseFactory = request.getfixturevalue("postgres_databases")
        created = factory.create()
        plain = created.set(drivername="postgresql")
        if backend == "postgresql-asyncpg":
            plain = created.set(drivername="postgresql+asyncpg")
        yield plain.render_as_string(hide_password=False)
        factory.drop(created)


@pytest.fixture
def asyncpg_url(postgres_databases: DatabaseFactory) -> Iterator[str]:
    """A database of its own, for a test only asyncpg's async path concerns."""
    created = postgres_databases.create()
    yield created.set(drivername="postgresql+asyncpg").render_as_string(hide_password=False)
    postgres_databases.drop(created)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@contextmanager
def tables(db: Database, define: Callable[[Database], T]) -> Iterator[T]:
    """Models defined on ``db`` with their tables created; the engines disposed after."""
    models = define(db)
    db.create_all()
    try:
        yield models
    finally:
        db.disconnect()


@asynccontextmanager
async def async_tables(db: Database, define: Callable[[Database], T]) -> AsyncIterator[T]:
    """``tables`` for async tests: the async engine lives on the test's own loop."""
    models = define(db)
    await db.create_all()
    try:
        yield models
    finally:
        await db.disconnect()


@pytest.fixture
def m(url: str) -> Iterator[Models]:
    with tables(Database(url), define_models) as models:
        yield models


@pytest.fixture
async def am(url: str) -> AsyncIterator[Models]:
    async with async_tables(Database(url), define_models) as models:
        yield models


class HasDatabase(Protocol):
    db: Database


def wait_until(condition: Callable[[], bool]) -> None:
    """Spin (yielding the GIL) until ``condition`` holds; bounded, not timed."""
    event = threading.Event()
    for _ in range(100_000):
        if condition():
            return
        event.wait(0.001)
    raise AssertionError("the condition never held")


def count_rows(models: HasDatabase, table: str) -> int:
    """Rows in ``table``, read on a fresh sync connection (outside any session under test)."""
    from sqlalchemy import text

    with models.db.sync_standalone_session() as session:
        return int(session.execute(text(f"SELECT count(*) FROM {table}")).scalar_one())


def user_emails(models: Models) -> list[str]:
    """Emails of all users, sorted (not ids: databases reuse rolled-back ids differently)."""
    from sqlalchemy import select

    with models.db.sync_standalone_session() as session:
        return sorted(session.scalars(select(models.User.email)))


@contextmanager
def sqlite_write_lock(path: Path, linger: float = 0.0) -> Iterator[threading.Event]:
    """Another connection holds the write lock of the SQLite file at ``path``.

    Setting the yielded event lets the lock go ``linger`` seconds later; leaving the
    block lets it go too, and waits for the holder to finish.
    """
    locked, release = threading.Event(), threading.Event()

    def hold() -> None:
        raw = sqlite3.connect(path, isolation_level=None)
        try:
            raw.execute("BEGIN IMMEDIATE")
            locked.set()
            release.wait(5)
            time.sleep(linger)
            raw.execute("ROLLBACK")
        finally:
            raw.close()

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert locked.wait(5), "the lock holder never started"
        yield release
    finally:
        release.set()
        holder.join()


@pytest.fixture(scope="session")
def replicated() -> Iterator[Replicated]:
    """A primary with a streaming standby, shared by the replica and PgBouncer tests."""
    with replicated_servers() as servers:
        yield servers


@pytest.fixture(scope="session")
def bouncer(replicated: Replicated) -> Iterator[Bouncer]:
    """PgBouncer in transaction pooling mode in front of ``replicated``'s primary."""
    with pgbouncer(replicated.primary.url) as running:
        yield running
