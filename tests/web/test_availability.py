"""The adapters when PostgreSQL restarts, stops or never answers: no 5xx once it is back,
503 + ``Retry-After`` while it is down (native and problem+json), recovery without
restarting the app, and a startup that fails within the connect timeout.

The server is this module's own, so stopping it disturbs no other test.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import anyio.to_thread
import httpx
import pytest
from fastapi import Depends, FastAPI
from litestar import Litestar, get, post
from sqlalchemy.engine import URL
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from duo_orm.web.errors import ErrorStyle
from duo_orm_fastapi import DuoORM, unit_of_work
from duo_orm_litestar import DuoORMPlugin
from duo_orm_starlette import DuoORMMiddleware, duo_exception_handlers, duo_lifespan

from ..faults import DRIVERS, black_hole, black_hole_url, database, fill_pool_async
from ..postgres_server import PostgresServer, controlled_postgres_server, empty_database
from .conftest import FRAMEWORKS, factory
from .scenario import Handlers, Shop, define_shop, lifespan_running, startup_failure

pytestmark = [pytest.mark.postgres, pytest.mark.anyio]

STYLES: list[ErrorStyle] = ["native", "problem"]


@pytest.fixture(scope="module")
def server() -> Iterator[PostgresServer]:
    with controlled_postgres_server() as running:
        yield running


@pytest.fixture
def fault_url(server: PostgresServer) -> Iterator[URL]:
    with empty_database(server) as url:
        yield url


@asynccontextmanager
async def serving(app: Any) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with (
        lifespan_running(app),
        httpx.AsyncClient(transport=transport, base_url="http://test", timeout=30) as client,
    ):
        yield client


# -- (a) a restart: the pooled connections are dead, the next requests must not notice --


@pytest.mark.parametrize("framework", FRAMEWORKS)
@pytest.mark.parametrize("handlers", ["async", "sync"])
@DRIVERS
async def test_no_5xx_after_a_restart(
    server: PostgresServer, fault_url: URL, framework: str, handlers: Handlers, driver: str
) -> None:
    db = database(fault_url, driver)
    shop = define_shop(db)
    await db.create_all()
    async with serving(factory(framework)(shop, handlers)) as client:
        await fill_pool_async(db)
        await anyio.to_thread.run_sync(server.restart)
        with anyio.fail_after(60):
            burst = await asyncio.gather(
                *(client.post("/items", json={"name": f"n{i}"}) for i in range(5)),
                *(client.get("/items") for _ in range(5)),
            )
        assert [r.status_code for r in burst] == [201] * 5 + [200] * 5
        assert sorted((await client.get("/items")).json()) == [f"n{i}" for i in range(5)]
    await db.disconnect()


# -- (c) a stopped server: 503 + Retry-After, then 2xx once it is back -------------------


def fastapi_app(shop: Shop, style: ErrorStyle, server: PostgresServer) -> FastAPI:
    app = FastAPI()

    @app.get("/items", dependencies=[Depends(unit_of_work)])
    async def listing() -> list[str]:
        return [i.name for i in await shop.Item.all()]

    @app.post("/items/then-stop", dependencies=[Depends(unit_of_work)], status_code=201)
    async def write_then_stop() -> dict[str, str]:
        await shop.Item.create(name="lost")
        await anyio.to_thread.run_sync(server.stop)  # the COMMIT finds the server gone
        return {"name": "lost"}

    DuoORM(app, shop.db, error_style=style)
    return app


def starlette_app(shop: Shop, style: ErrorStyle, server: PostgresServer) -> Starlette:
    async def listing(request: Request) -> Response:
        return JSONResponse([i.name for i in await shop.Item.all()])

    async def write_then_stop(request: Request) -> Response:
        await shop.Item.create(name="lost")
        await anyio.to_thread.run_sync(server.stop)
        return JSONResponse({"name": "lost"}, status_code=201)

    return Starlette(
        routes=[
            Route("/items", listing),
            Route("/items/then-stop", write_then_stop, methods=["POST"]),
        ],
        middleware=[Middleware(DuoORMMiddleware, db=shop.db, error_style=style)],
        lifespan=duo_lifespan(shop.db),
        exception_handlers=duo_exception_handlers(error_style=style),
    )


def litestar_app(shop: Shop, style: ErrorStyle, server: PostgresServer) -> Litestar:
    @get("/items")
    async def listing() -> list[str]:
        return [i.name for i in await shop.Item.all()]

    @post("/items/then-stop", status_code=201)
    async def write_then_stop() -> dict[str, str]:
        await shop.Item.create(name="lost")
        await anyio.to_thread.run_sync(server.stop)
        return {"name": "lost"}

    return Litestar([listing, write_then_stop], plugins=[DuoORMPlugin(shop.db, error_style=style)])


STYLED_APPS = {"fastapi": fastapi_app, "starlette": starlette_app, "litestar": litestar_app}


def assert_unavailable(response: httpx.Response, framework: str, style: ErrorStyle) -> None:
    """A 503 a client can act on: Retry-After, and a body that says to retry, nothing more."""
    assert response.status_code == 503, response.text
    assert 1 <= int(response.headers["retry-after"]) <= 10
    body = response.json()
    if style == "problem":
        assert response.headers["content-type"].startswith("application/problem+json")
        assert body["status"] == 503 and body["title"] == "Service Unavailable"
        assert body["retryable"] is True
    elif framework == "litestar":
        assert body["status_code"] == 503 and body["extra"] == {"retryable": True}
    else:
        assert set(body) == {"detail"}
    assert "retry" in str(body["detail"])
    for internal in ("127.0.0.1", "SELECT", "INSERT", "psycopg", "asyncpg", "Traceback"):
        assert internal not in response.text


class Records(logging.Handler):
    """What reaches the ``duo_orm`` logger itself (Litestar reconfigures the root logger,
    so pytest's caplog cannot be relied on there)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def errors(self) -> list[logging.LogRecord]:
        return [r for r in self.records if r.levelno >= logging.ERROR]


@pytest.fixture
def duo_log() -> Iterator[Records]:
    logger = logging.getLogger("duo_orm")
    handler, level = Records(), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    yield handler
    logger.removeHandler(handler)
    logger.setLevel(level)


@pytest.mark.parametrize("framework", FRAMEWORKS)
@pytest.mark.parametrize("style", STYLES)
@DRIVERS
async def test_stopped_server_is_503_then_2xx_without_restarting_the_app(
    server: PostgresServer,
    fault_url: URL,
    framework: str,
    style: ErrorStyle,
    driver: str,
    duo_log: Records,
) -> None:
    db = database(fault_url, driver)
    shop = define_shop(db)
    await db.create_all()
    async with serving(STYLED_APPS[framework](shop, style, server)) as client:
        assert (await client.get("/items")).status_code == 200
        await anyio.to_thread.run_sync(server.stop)
        with anyio.fail_after(30):
            down = await client.get("/items")
        assert_unavailable(down, framework, style)
        assert len(duo_log.errors()) == 1  # logged once, at ERROR
        await anyio.to_thread.run_sync(server.start)
        with anyio.fail_after(30):
            back = await client.get("/items")
        assert back.status_code == 200 and back.json() == []
    await db.disconnect()


@pytest.mark.parametrize("framework", FRAMEWORKS)
@pytest.mark.parametrize("style", STYLES)
@DRIVERS
async def test_commit_on_a_stopped_server_is_503_and_writes_nothing(
    server: PostgresServer,
    fault_url: URL,
    framework: str,
    style: ErrorStyle,
    driver: str,
    duo_log: Records,
) -> None:
    """The server goes away between the handler's write and the COMMIT the middleware
    runs at response start: the 201 becomes a 503, and the row is not there later."""
    db = database(fault_url, driver)
    shop = define_shop(db)
    await db.create_all()
    async with serving(STYLED_APPS[framework](shop, style, server)) as client:
        with anyio.fail_after(30):
            lost = await client.post("/items/then-stop")
        assert_unavailable(lost, framework, style)
        assert len(duo_log.errors()) == 1
        await anyio.to_thread.run_sync(server.start)
        with anyio.fail_after(30):
            back = await client.get("/items")
        assert back.status_code == 200 and back.json() == []  # no phantom write
    await db.disconnect()


# -- (b) a host that accepts TCP and never answers: startup fails, and soon ------------


@pytest.mark.parametrize("framework", FRAMEWORKS)
@DRIVERS
async def test_startup_against_a_black_hole_fails_within_the_connect_timeout(
    framework: str, driver: str
) -> None:
    with black_hole() as port:
        db = database(black_hole_url(port), driver, connect_timeout=2)
        app = factory(framework)(define_shop(db), "async")
        started = time.monotonic()
        with anyio.fail_after(30):
            message = await startup_failure(app)
        assert "Could not connect to" in message and f"127.0.0.1:{port}" in message
        assert time.monotonic() - started < 2 + 3
