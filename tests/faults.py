"""Helpers the fault tests share: a black-hole port, a warm pool, a Database per driver."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import AsyncExitStack, ExitStack, contextmanager

import pytest
from sqlalchemy import text
from sqlalchemy.engine import URL

from duo_orm import Database

# the async side's driver (the sync side is always psycopg), with the backend's test id
DRIVERS = pytest.mark.parametrize(
    "driver", ["psycopg", "asyncpg"], ids=["postgresql", "postgresql-asyncpg"]
)


def database(url: URL, driver: str = "psycopg", **engine_options: object) -> Database:
    """A Database on ``url`` whose async side uses ``driver``."""
    return Database(
        url.set(drivername=f"postgresql+{driver}").render_as_string(hide_password=False),
        engine_options=dict(engine_options) or None,
    )


@contextmanager
def black_hole() -> Iterator[int]:
    """A port on 127.0.0.1 whose connections the kernel completes and nobody reads."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(64)
        yield int(listener.getsockname()[1])


def black_hole_url(port: int) -> URL:
    return URL.create("postgresql", "duo", None, "127.0.0.1", port, "app")


def fill_pool_sync(db: Database, connections: int = 5) -> None:
    """Leave ``connections`` open connections in the sync pool (as a busy app would)."""
    with ExitStack() as stack:
        for _ in range(connections):
            session = stack.enter_context(db.sync_standalone_session())
            session.execute(text("SELECT 1"))


async def fill_pool_async(db: Database, connections: int = 5) -> None:
    """The same for the async pool of the running event loop."""
    async with AsyncExitStack() as stack:
        for _ in range(connections):
            session = await stack.enter_async_context(db.standalone_session())
            await session.execute(text("SELECT 1"))
