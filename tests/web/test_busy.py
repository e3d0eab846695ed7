"""A database that stays busy past its timeout answers 503 + ``Retry-After``, not 500.

Real SQLite files: another connection holds the write lock longer than the app's
busy timeout; a real pool with one connection, held, and a short checkout timeout.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from duo_orm import Database

from ..conftest import sqlite_write_lock
from .conftest import FRAMEWORKS, factory
from .scenario import Handlers, define_shop, lifespan_running

pytestmark = pytest.mark.anyio


@asynccontextmanager
async def serving(db: Database, framework: str, handlers: Handlers) -> AsyncIterator[Any]:
    shop = define_shop(db)
    await db.create_all()
    app = factory(framework)(shop, handlers)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with (
        lifespan_running(app),
        httpx.AsyncClient(transport=transport, base_url="http://test", timeout=30) as client,
    ):
        yield client
    await db.disconnect()


def assert_busy(response: httpx.Response) -> None:
    assert response.status_code == 503, response.text
    assert int(response.headers["retry-after"]) >= 1
    assert "busy" in response.text and "locked" not in response.text


@pytest.mark.parametrize("framework", FRAMEWORKS)
@pytest.mark.parametrize("handlers", ["async", "sync"])
async def test_a_write_that_outwaits_the_sqlite_busy_timeout_is_503(
    tmp_path: Path, framework: str, handlers: Handlers
) -> None:
    path = tmp_path / "busy.db"
    db = Database(f"sqlite:///{path}", engine_options={"connect_args": {"timeout": 0.1}})
    async with serving(db, framework, handlers) as client:
        assert (await client.post("/items", json={"name": "before"})).status_code == 201
        with sqlite_write_lock(path):
            assert_busy(await client.post("/items", json={"name": "blocked"}))
            # WAL: readers are not held up by the writer
            listing = await client.get("/items")
            assert listing.status_code == 200 and "before" in listing.text
        assert (await client.post("/items", json={"name": "after"})).status_code == 201
        names = (await client.get("/items")).text
        assert "after" in names and "blocked" not in names


@pytest.mark.parametrize("framework", FRAMEWORKS)
async def test_an_exhausted_pool_is_503_once_the_checkout_timeout_passes(
    tmp_path: Path, framework: str
) -> None:
    db = Database(
        f"sqlite:///{tmp_path / 'pool.db'}",
        engine_options={"pool_size": 1, "max_overflow": 0, "pool_timeout": 0.1},
    )
    async with serving(db, framework, "async") as client:
        # Hold each pool's one connection: on SQLite a request's reads before its first
        # write run on the sync engine in a worker thread, its transaction on the async one.
        async with db.async_engine.connect():
            with db.sync_engine.connect():
                assert_busy(await client.get("/items"))
                assert_busy(await client.post("/items", json={"name": "blocked"}))
        assert (await client.get("/items")).status_code == 200
        assert (await client.post("/items", json={"name": "after"})).status_code == 201
