"""A database per pytest-xdist worker, so parallel workers never share tables.

Each worker process runs the session set-up on its own, which drops and creates
the tables: on one shared database the workers would wipe each other's. A SQLite
file gets a sibling file per worker, a server database a sibling database
(created next to it, dropped at the end); in-memory SQLite is per process anyway.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from duo_orm.urls import derive_urls

__all__ = ["worker_database", "xdist_worker"]


def xdist_worker(config: pytest.Config) -> str | None:
    """``gw0``, ``gw1``... in a pytest-xdist worker; None otherwise."""
    workerinput: dict[str, object] | None = getattr(config, "workerinput", None)
    return None if workerinput is None else str(workerinput["workerid"])


@contextmanager
def worker_database(url: str, worker: str) -> Iterator[str]:
    """The URL of ``worker``'s own database beside ``url``."""
    urls = derive_urls(url)
    parsed = make_url(url)
    if urls.is_memory:
        yield url
        return
    if urls.dialect == "sqlite":
        path = Path(str(parsed.database))
        own = path.with_name(f"{path.stem}-{worker}{path.suffix}")
        yield parsed.set(database=str(own)).render_as_string(hide_password=False)
        return
    name = f"{parsed.database}_{worker}"
    admin = create_engine(urls.sync, isolation_level="AUTOCOMMIT")
    quoted = admin.dialect.identifier_preparer.quote(name)
    try:
        with admin.connect() as connection:
            connection.execute(text(f"DROP DATABASE IF EXISTS {quoted}"))
            connection.execute(text(f"CREATE DATABASE {quoted}"))
        yield parsed.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f"DROP DATABASE IF EXISTS {quoted}"))
        admin.dispose()
