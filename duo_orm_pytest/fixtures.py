"""The plugin's fixtures: the test database, per-test rollback and the app's clients.

Every public fixture is thin and overridable: define one of the same name in a
``conftest.py`` to change where the database lives (``duo_orm_url``), how the
databases are found and prepared (``duo_orm_databases``) or which app the
clients talk to (``duo_orm_app``). Web frameworks are imported only by the
client fixtures, and only the one the app is built on.
"""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from duo_orm import Database

from ._lifespan import lifespan

__all__ = [
    "async_client",
    "client",
    "duo_orm_app",
    "duo_orm_databases",
    "duo_orm_isolation",
    "duo_orm_postgres_url",
    "duo_orm_url",
]

ENV_URL = "DUO_ORM_TEST_URL"
THROWAWAY_POSTGRES = "throwaway-postgresql"  # a duo_orm_url value: start a server
COMMITS_MARKER = "duo_orm_commits"
SCHEMA_MODES = ("create_all", "migrations", "none")


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
def duo_orm_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    """The URL the (first) Database is pointed at for the run; it gets wiped.

    ``--duo-orm-url``, then the ``duo_orm_url`` ini key, then ``$DUO_ORM_TEST_URL``,
    else a SQLite file in a temporary directory. The value ``throwaway-postgresql``
    starts a PostgreSQL server for the run (``duo_orm_postgres_url``). Override
    this fixture to provision anything else.
    """
    url = setting(request.config, "url") or os.environ.get(ENV_URL)
    if url == THROWAWAY_POSTGRES:
        return str(request.getfixturevalue("duo_orm_postgres_url"))
    if url:
        return str(url)
    return f"sqlite:///{tmp_path_factory.mktemp('duo_orm') / 'test.db'}"


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
            db.drop_all()
            db.create_all()
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
    session joins as a SAVEPOINT. A test marked ``duo_orm_commits`` commits for
    real instead, and its tables are emptied afterwards. Does nothing when
    ``duo_orm_databases`` is empty (the plugin is not configured).
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
    for db in databases:
        db._isolate()
    try:
        yield
    finally:
        for db in databases:
            db._end_isolation()


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
    with db.transaction() as session:
        for table in reversed(db.metadata.sorted_tables):
            session.execute(table.delete())


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
async def async_client(duo_orm_app: Any) -> AsyncIterator[Any]:
    """An ``httpx.AsyncClient`` calling the app in-process, its lifespan run around the test.

    Async fixtures need an async test runner: mark the test ``pytest.mark.anyio``.
    """
    import httpx

    transport = httpx.ASGITransport(app=duo_orm_app)
    async with (
        lifespan(duo_orm_app),
        httpx.AsyncClient(transport=transport, base_url="http://testserver") as http,
    ):
        yield http
