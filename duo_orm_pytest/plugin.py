"""Options, markers and the per-test isolation hook of the duo-orm pytest plugin.

Registered through the ``pytest11`` entry point, so it loads in every pytest run
of an environment with duo-orm installed. It does nothing until
``duo_orm_database`` names a Database (ini key or ``--duo-orm-database``).
"""

from __future__ import annotations

import pytest

from .fixtures import (
    ASYNCIO_FIXTURES,
    _duo_orm_client_anyio,
    _duo_orm_isolation_anyio,
    async_client,
    client,
    duo_orm_app,
    duo_orm_databases,
    duo_orm_isolation,
    duo_orm_postgres_url,
    duo_orm_url,
)

globals().update(ASYNCIO_FIXTURES)  # registered like the fixtures imported above

__all__ = [
    "_duo_orm_client_anyio",
    "_duo_orm_isolation_anyio",
    "async_client",
    "client",
    "duo_orm_app",
    "duo_orm_databases",
    "duo_orm_isolation",
    "duo_orm_postgres_url",
    "duo_orm_url",
    "pytest_addoption",
    "pytest_configure",
]


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("duo-orm", "duo-orm: test your app with per-test rollback")
    options = [
        (
            "database",
            "linelist",
            "import path of the app's Database, `module:attribute` (several: one per line)",
        ),
        (
            "url",
            "string",
            "database URL the tests run on (default: $DUO_ORM_TEST_URL, "
            "else a temporary SQLite file; `throwaway-postgresql` starts a server); "
            "it is wiped at the start",
        ),
        ("app", "string", "import path of the ASGI app for the client fixtures, `module:app`"),
        (
            "schema",
            "string",
            "how the schema is made once per run: create_all (default), migrations "
            "(`duo-orm migration upgrade`) or none",
        ),
    ]
    for name, kind, help_text in options:
        group.addoption(
            f"--duo-orm-{name}",
            action="append" if kind == "linelist" else "store",
            dest=f"duo_orm_{name}",
            help=help_text,
        )
        parser.addini(f"duo_orm_{name}", help_text, type=kind)  # type: ignore[arg-type]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "duo_orm_commits: run without the per-test rollback (real COMMITs, e.g. for "
        "several connections); the tables are emptied after the test",
    )
