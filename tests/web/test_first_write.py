"""A request's reads before its first write run on their own (no BEGIN); the first write
begins the request transaction, and from there everything is in it, committed or rolled
back at the response as always. Each framework, real test clients, every backend.

What the database saw is recorded per statement: was a transaction open on the
connection once it ran? A lone autocommit read leaves none open; inside BEGIN one is.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi import HTTPException as FastAPIHTTPException
from litestar import Litestar, get, post
from litestar.exceptions import HTTPException as LitestarHTTPException
from litestar.params import FromPath
from sqlalchemy import Engine, event
from starlette.applications import Starlette
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from duo_orm import Database
from duo_orm_fastapi import DuoORM
from duo_orm_litestar import DuoORMPlugin
from duo_orm_starlette import DuoORMMiddleware, duo_exception_handlers, duo_lifespan

from .conftest import FRAMEWORKS
from .scenario import Shop, define_shop, lifespan_running

pytestmark = pytest.mark.anyio

FLAVOURS = [(framework, "async") for framework in FRAMEWORKS] + [("fastapi", "sync")]


def in_transaction(driver_connection: Any) -> bool:
    """Whether the driver's connection is inside a transaction right now."""
    info = getattr(driver_connection, "info", None)
    if hasattr(info, "transaction_status"):  # psycopg 3
        return int(info.transaction_status) != 0  # 0: IDLE
    if hasattr(driver_connection, "is_in_transaction"):  # asyncpg
        return bool(driver_connection.is_in_transaction())
    return bool(driver_connection.in_transaction)  # sqlite3, aiosqlite


@dataclass
class Recorder:
    """(first word, was a transaction open after it) per statement on the items table."""

    seen: list[tuple[str, bool]] = field(default_factory=list)

    def watch(self, engine: Engine) -> None:
        @event.listens_for(engine, "after_cursor_execute")
        def after(conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
            verb = statement.split(None, 1)[0].upper()
            if verb in {"SELECT", "INSERT", "UPDATE", "DELETE"} and "items" in statement:
                self.seen.append((verb, in_transaction(conn.connection.driver_connection)))


async def flow(shop: Shop, fail: str, refuse: Callable[[], Exception]) -> dict[str, int]:
    """Read, read, write, read, write; then answer, or refuse (4xx) or crash (5xx)."""
    Item = shop.Item
    before = await Item.count()
    await Item.get(10_000)
    await Item.create(name=f"first-{before}")
    after = await Item.count()
    await Item.create(name=f"second-{before}")
    if fail == "refuse":
        raise refuse()
    if fail == "crash":
        raise RuntimeError("the handler broke after writing")
    return {"before": before, "after": after}


def flow_sync(shop: Shop, fail: str) -> dict[str, int]:
    Item = shop.Item
    before = Item.count()
    Item.get(10_000)
    Item.create(name=f"first-{before}")
    after = Item.count()
    Item.create(name=f"second-{before}")
    if fail == "refuse":
        raise FastAPIHTTPException(400, "refused after writing")
    if fail == "crash":
        raise RuntimeError("the handler broke after writing")
    return {"before": before, "after": after}


async def reads_only(shop: Shop) -> dict[str, int]:
    return {"count": await shop.Item.count(), "listed": len(await shop.Item.all())}


async def snapshot(shop: Shop) -> dict[str, int]:
    async with shop.db.transaction():  # begins the request transaction at once
        count = await shop.Item.count()
    return {"count": count}


def make_app(framework: str, handlers: str, shop: Shop) -> Any:
    if framework == "fastapi":
        app = FastAPI()
        DuoORM(app, shop.db)
        if handlers == "sync":

            @app.post("/flow/{fail}")
            def sync_route(fail: str) -> dict[str, int]:
                return flow_sync(shop, fail)

        else:

            @app.post("/flow/{fail}")
            async def route(fail: str) -> dict[str, int]:
                return await flow(shop, fail, lambda: FastAPIHTTPException(400, "refused"))

        @app.get("/reads")
        async def reads() -> dict[str, int]:
            return await reads_only(shop)

        @app.get("/snapshot")
        async def snap() -> dict[str, int]:
            return await snapshot(shop)

        return app
    if framework == "starlette":

        async def route(request: Request) -> Response:
            fail = request.path_params["fail"]
            done = await flow(shop, fail, lambda: StarletteHTTPException(400, "refused"))
            return JSONResponse(done)

        async def reads(_request: Request) -> Response:
            return JSONResponse(await reads_only(shop))

        async def snap(_request: Request) -> Response:
            return JSONResponse(await snapshot(shop))

        return Starlette(
            routes=[
                Route("/flow/{fail}", route, methods=["POST"]),
                Route("/reads", reads),
                Route("/snapshot", snap),
            ],
            middleware=[Middleware(DuoORMMiddleware, db=shop.db)],
            lifespan=duo_lifespan(shop.db),
            exception_handlers=duo_exception_handlers(),
        )

    @post("/flow/{fail:str}", status_code=200)
    async def litestar_route(fail: FromPath[str]) -> dict[str, int]:
        return await flow(
            shop, fail, lambda: LitestarHTTPException(status_code=400, detail="refused")
        )

    @get("/reads")
    async def litestar_reads() -> dict[str, int]:
        return await reads_only(shop)

    @get("/snapshot")
    async def litestar_snapshot() -> dict[str, int]:
        return await snapshot(shop)

    return Litestar(
        route_handlers=[litestar_route, litestar_reads, litestar_snapshot],
        plugins=[DuoORMPlugin(shop.db)],
    )


@dataclass
class Served:
    shop: Shop
    http: httpx.AsyncClient
    recorder: Recorder

    def names(self) -> list[str]:
        from sqlalchemy import select

        with self.shop.db.sync_standalone_session() as session:
            return sorted(session.scalars(select(self.shop.Item.name)))


@pytest.fixture(params=FLAVOURS, ids=["-".join(f) for f in FLAVOURS])
async def served(url: str, request: pytest.FixtureRequest) -> AsyncIterator[Served]:
    framework, handlers = request.param
    db = Database(url)
    shop = define_shop(db)
    await db.create_all()
    recorder = Recorder()
    recorder.watch(db.sync_engine)
    recorder.watch(db.async_engine.sync_engine)
    app = make_app(framework, handlers, shop)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with (
        lifespan_running(app),
        httpx.AsyncClient(transport=transport, base_url="http://test") as http,
    ):
        yield Served(shop, http, recorder)
    await db.disconnect()


async def test_reads_before_the_first_write_send_no_begin_and_the_rest_is_one_transaction(
    served: Served,
) -> None:
    response = await served.http.post("/flow/none")
    assert response.status_code == 200, response.text
    assert response.json() == {"before": 0, "after": 1}
    assert served.names() == ["first-0", "second-0"]
    # count and get alone; then INSERT, count, INSERT inside the one transaction
    assert served.recorder.seen[:5] == [
        ("SELECT", False),
        ("SELECT", False),
        ("INSERT", True),
        ("SELECT", True),
        ("INSERT", True),
    ]


@pytest.mark.parametrize("fail", ["refuse", "crash"])
async def test_an_error_answer_after_writes_that_followed_reads_keeps_none_of_them(
    served: Served, fail: str
) -> None:
    response = await served.http.post(f"/flow/{fail}")
    assert response.status_code == (400 if fail == "refuse" else 500)
    assert served.names() == []
    assert (await served.http.post("/flow/none")).status_code == 200
    assert served.names() == ["first-0", "second-0"]


async def test_a_request_that_only_reads_opens_no_transaction(served: Served) -> None:
    await served.shop.Item.create(name="there")
    served.recorder.seen.clear()
    response = await served.http.get("/reads")
    assert response.json() == {"count": 1, "listed": 1}
    assert served.recorder.seen == [("SELECT", False), ("SELECT", False)]


async def test_an_explicit_transaction_in_a_request_begins_it_at_once(served: Served) -> None:
    response = await served.http.get("/snapshot")
    assert response.json() == {"count": 0}
    assert served.recorder.seen == [("SELECT", True)]
