"""The plugin's fixtures: the test database, per-test rollback and the app's clients.

Every public fixture is thin and overridable: define one of the same name in a
``conftest.py`` to change where the database lives (``duo_orm_url``), how the
databases are found and prepared (``duo_orm_databases``) or which app the
clients talk to (``duo_orm_app``). Web frameworks are imported only by the
client fixtures, and only the one the app is built on.
"""

from __future__ import annotations

import asyncio
import importlib
import inspect
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

import pytest
from sqlalchemy import text

from duo_orm import ConfigurationError, Database
from duo_orm.dispatch import event_loop_running

from ._lifespan import lifespan
from ._workers import worker_database, xdist_worker

try:
    import pytest_asyncio
except ImportError:  # pytest-asyncio is optional; anyio's plugin comes with anyio
    pytest_asyncio = None  # type: ignore[assignment]

__all__ = [
    "ASYNCIO_FIXTURES",
    "async_client",
    "client",
    "duo_orm_app",
    "duo_orm_databases",
    "duo_orm_isolation",
    "duo_orm_postgres_url",
    "duo_orm_url",
]

T = TypeVar("T")

ENV_URL = "DUO_ORM_TEST_URL"
THROWAWAY_POSTGRES = "throwaway-postgresql"  # a duo_orm_url value: start a server
COMMITS_MARKER = "duo_orm_commits"
SCHEMA_MODES = ("create_all", "migrations", "none")
ASYNCIO_LOOP_SCOPE = "asyncio_default_test_loop_scope"  # pytest-asyncio's ini key


def setting(config: pytest.Config, name: str) -> Any:
    """A plugin setting: the command-line option if given, else the ini key."""
    given = config.getoption(f"duo_orm_{name}", default=None)
    return given if given else config.getini(f"duo_orm_{name}")


def load(path: str, what: str) -> Any:
    """Import ``module:attribute`` (the attribute may be dotted)."""
    module_name, _, attribute = path.partition(":")
    if not module_name or not attribute:
        raise pytest.UsageError(f"{what} must look like `package.module:name`, got {path!r}")
    target: Any = importlib.import_module(module_name)
    for part in attribute.split("."):
        target = getattr(target, part)
    return target


@pytest.fixture(scope="session")
def duo_orm_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """The URL the (first) Database is pointed at for the run; it gets wiped.

    ``--duo-orm-url``, then the ``duo_orm_url`` ini key, then ``$DUO_ORM_TEST_URL``,
    else a SQLite file in a temporary directory. The value ``throwaway-postgresql``
    starts a PostgreSQL server for the run (``duo_orm_postgres_url``). Under
    pytest-xdist each worker gets a database of its own beside the one named.
    Override this fixture to provision anything else.
    """
    url = setting(request.config, "url") or os.environ.get(ENV_URL)
    worker = xdist_worker(request.config)
    if url == THROWAWAY_POSTGRES:  # a server per run, so per worker
        yield str(request.getfixturevalue("duo_orm_postgres_url"))
    elif not url:  # a worker's temporary directory is its own
        yield f"sqlite:///{tmp_path_factory.mktemp('duo_orm') / 'test.db'}"
    elif worker is None:
        yield str(url)
    else:
        with worker_database(str(url), worker) as own:
            yield own


@pytest.fixture(scope="session")
def duo_orm_postgres_url() -> Iterator[str]:
    """A new database on a PostgreSQL server of the run's own, dropped at the end.

    The server is started from the local binaries in a temporary directory and
    listens on 127.0.0.1 only (``$DUO_TEST_POSTGRES_URL``, a role allowed to
    CREATE DATABASE, replaces it). psycopg drives both the sync and async sides.
    """
    from .postgres import throwaway_database

    with throwaway_database() as url:
        yield url


@pytest.fixture(scope="session")
def duo_orm_databases(request: pytest.FixtureRequest) -> Iterator[list[Database]]:
    """The Databases each test is isolated on, pointed at the test URL, schema made once.

    The configured ones (``duo_orm_database``): the first gets ``duo_orm_url``,
    any further one its own temporary SQLite file. The schema is dropped and
    created, or made by ``duo-orm migration upgrade`` (``duo_orm_schema =
    "migrations"``; the project's ``db/`` next to the pytest configuration), or
    left alone (``"none"``). Empty when nothing is configured, which keeps the
    plugin idle. Override it (in a conftest or a test module) to isolate
    Databases you prepare yourself: return them, and each test there rolls back.
    """
    config = request.config
    paths: list[str] = list(setting(config, "database"))
    if not paths:
        yield []
        return
    duo_orm_url: str = request.getfixturevalue("duo_orm_url")
    schema = setting(config, "schema") or "create_all"
    if schema not in SCHEMA_MODES:
        raise pytest.UsageError(f"duo_orm_schema must be one of {SCHEMA_MODES}, got {schema!r}")
    databases: list[Database] = []
    for index, path in enumerate(paths):
        db = load(path, "duo_orm_database")
        if not isinstance(db, Database):
            raise pytest.UsageError(f"duo_orm_database {path!r} is a {type(db).__name__}")
        if index == 0:
            url = duo_orm_url
        else:
            folder = request.getfixturevalue("tmp_path_factory").mktemp("duo_orm")
            url = f"sqlite:///{folder / 'test.db'}"
        db._retarget(url)
        if schema == "create_all":
            run_on_any_driver(db.drop_all)
            run_on_any_driver(db.create_all)
        elif schema == "migrations":
            if len(paths) != 1:
                raise pytest.UsageError("duo_orm_schema = migrations takes one duo_orm_database")
            if db._engines.urls.is_memory:
                raise pytest.UsageError(
                    "duo_orm_schema = migrations runs `duo-orm migration upgrade` in a child "
                    "process, which cannot see an in-memory SQLite database: use a file URL "
                    "or create_all."
                )
            _migrate(db, url, config.rootpath)
        databases.append(db)
    yield databases
    for db in databases:
        db.disconnect()


@pytest.fixture(autouse=True)
def duo_orm_isolation(request: pytest.FixtureRequest) -> Iterator[None]:
    """Roll back everything a test (and the app it calls) committed.

    Per configured Database, one connection and an outer transaction that every
    session joins as a SAVEPOINT: on the sync driver for a sync test, on the async
    driver and the test's own event loop for an async test (anyio or
    pytest-asyncio). A test marked ``duo_orm_commits`` commits for real instead,
    and its tables are emptied afterwards. Does nothing when ``duo_orm_databases``
    is empty (the plugin is not configured).
    """
    databases: list[Database] = request.getfixturevalue("duo_orm_databases")
    if not databases:
        yield
        return
    if request.node.get_closest_marker(COMMITS_MARKER):
        try:
            yield
        finally:
            for db in databases:
                _empty_tables(db)
        return
    async_fixture = _async_fixture(request.node, "isolation")
    if async_fixture is not None:  # held on the test's loop by an async fixture
        request.getfixturevalue(async_fixture)
        yield
        return
    try:
        for db in databases:
            db._isolate()
        yield
    finally:
        for db in databases:
            db._end_isolation()


async def _isolate_async(databases: list[Database]) -> AsyncIterator[None]:
    """The async half of ``duo_orm_isolation``: it runs on the test's event loop."""
    try:
        for db in databases:
            await db._isolate_async()
        yield
    finally:
        for db in databases:
            await db._end_isolation_async()


@pytest.fixture
async def _duo_orm_isolation_anyio(duo_orm_databases: list[Database]) -> AsyncIterator[None]:
    async for _ in _isolate_async(duo_orm_databases):
        yield


def _async_fixture(item: pytest.Item, what: str) -> str | None:
    """The async fixture that runs ``what`` on this test's event loop; None for a sync test.

    anyio runs a test marked ``anyio`` and its async fixtures on one loop.
    pytest-asyncio runs a test on the loop of its ``loop_scope`` and a fixture on the
    loop of the fixture's own, so there is one fixture per loop scope.
    """
    if not inspect.iscoroutinefunction(getattr(item, "obj", None)):
        return None
    if item.get_closest_marker("anyio"):
        return f"_duo_orm_{what}_anyio"
    marker = item.get_closest_marker("asyncio")
    if marker is None or pytest_asyncio is None:
        return None
    scope = marker.kwargs.get("loop_scope") or marker.kwargs.get("scope")
    return f"_duo_orm_{what}_asyncio_{scope or item.config.getini(ASYNCIO_LOOP_SCOPE)}"


def _migrate(db: Database, url: str, project: Path) -> None:
    """Wipe the models' tables and Alembic's version, then ``duo-orm migration upgrade``.

    Run as the user would, in a child process, so the migrations see nothing of
    this test run (the project's ``db/`` sits next to the pytest configuration).
    """
    db.drop_all()
    with db.transaction() as session:
        session.execute(text("DROP TABLE IF EXISTS alembic_version"))
    command = [sys.executable, "-m", "duo_orm", "--project", str(project)]
    command += ["migration", "upgrade", "--url", url]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise pytest.UsageError(
            f"`duo-orm migration upgrade` failed ({result.returncode}):\n"
            f"{result.stdout}{result.stderr}"
        )


def _empty_tables(db: Database) -> None:
    """DELETE every row of ``db.Model``'s tables (children first), committed."""

    def empty() -> Any:
        if event_loop_running():
            return _empty_tables_async(db)
        with db.transaction() as session:
            for table in reversed(db.metadata.sorted_tables):
                session.execute(table.delete())
        return None

    run_on_any_driver(empty)


async def _empty_tables_async(db: Database) -> None:
    async with db.transaction() as session:
        for table in reversed(db.metadata.sorted_tables):
            await session.execute(table.delete())


def run_on_any_driver(call: Callable[[], Any]) -> None:
    """Run a Database call from sync code; on the async driver if the sync one is missing.

    Lets a project that installs only an async driver (asyncpg, aiosqlite) set up
    and clean its test database.
    """
    try:
        call()
    except ConfigurationError as exc:
        if not isinstance(exc.__cause__, ImportError):
            raise

        async def run() -> None:
            await call()

        asyncio.run(run())


@pytest.fixture
def duo_orm_app(request: pytest.FixtureRequest) -> Any:
    """The ASGI app named by ``duo_orm_app`` (override this fixture to build one)."""
    path = setting(request.config, "app")
    if not path:
        raise pytest.UsageError(
            'The client fixtures need the app: set `duo_orm_app = "package.module:app"` '
            "in the pytest configuration, or define a `duo_orm_app` fixture."
        )
    return load(path, "duo_orm_app")


def _is_litestar(app: Any) -> bool:
    return type(app).__module__.split(".")[0] == "litestar"


@pytest.fixture
def client(duo_orm_app: Any) -> Iterator[Any]:
    """The framework's own sync test client, with the app's lifespan run around the test."""
    if _is_litestar(duo_orm_app):
        from litestar.testing import TestClient as LitestarClient

        with LitestarClient(duo_orm_app) as litestar_client:
            yield litestar_client
        return
    from starlette.testclient import TestClient

    with TestClient(duo_orm_app) as starlette_client:
        yield starlette_client


@pytest.fixture
def async_client(request: pytest.FixtureRequest, duo_orm_app: Any) -> Any:
    """An ``httpx.AsyncClient`` calling the app in-process, its lifespan run around the test.

    For async tests (``pytest.mark.anyio`` or pytest-asyncio, strict or auto mode):
    the client is opened on the test's own event loop. (``duo_orm_app`` is named
    here so that a parametrized one reaches the client.)
    """
    name = _async_fixture(request.node, "client")
    if name is None:
        raise pytest.UsageError(
            "async_client is for async tests: write `async def test_...` and mark it "
            "`pytest.mark.anyio` (or run it with pytest-asyncio)."
        )
    return request.getfixturevalue(name)


@asynccontextmanager
async def app_client(app: Any) -> AsyncIterator[Any]:
    """``async with app_client(app) as http``: httpx over the app, lifespan run around it."""
    import httpx

    transport = httpx.ASGITransport(app=app)
    async with (
        lifespan(app),
        httpx.AsyncClient(transport=transport, base_url="http://testserver") as http,
    ):
        yield http


@asynccontextmanager
async def held_in_a_task(context: AbstractAsyncContextManager[T]) -> AsyncIterator[T]:
    """Enter and leave ``context`` in a task of its own, whichever tasks use this."""
    entered: asyncio.Future[T] = asyncio.get_running_loop().create_future()
    leave = asyncio.Event()

    async def hold() -> None:
        try:
            async with context as value:
                entered.set_result(value)
                await leave.wait()
        except BaseException as exc:
            if entered.done():
                raise
            entered.set_exception(exc)

    task = asyncio.create_task(hold())
    try:
        yield await entered
    finally:
        leave.set()
        await task


@pytest.fixture
async def _duo_orm_client_anyio(duo_orm_app: Any) -> AsyncIterator[Any]:
    async with app_client(duo_orm_app) as http:
        yield http


def _asyncio_fixtures() -> dict[str, Any]:
    """The pytest-asyncio versions of the async fixtures, one per loop scope."""
    if pytest_asyncio is None:
        return {}
    made: dict[str, Any] = {}
    for scope in ("function", "class", "module", "package", "session"):

        async def isolation(duo_orm_databases: list[Database]) -> AsyncIterator[None]:
            async for _ in _isolate_async(duo_orm_databases):
                yield

        async def client(duo_orm_app: Any) -> AsyncIterator[Any]:
            # pytest-asyncio tears a fixture down in another task than it set it up in,
            # and the lifespan's task group must be left in the task that entered it
            async with held_in_a_task(app_client(duo_orm_app)) as http:
                yield http

        for what, function in (("isolation", isolation), ("client", client)):
            name = f"_duo_orm_{what}_asyncio_{scope}"
            made[name] = pytest_asyncio.fixture(function, loop_scope=scope, name=name)
    return made


ASYNCIO_FIXTURES = _asyncio_fixtures()
