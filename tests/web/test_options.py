"""Adapter options beyond the conformance suite: problem+json bodies, excluded and
read-only paths, app-wide FastAPI dependency, websockets left alone, bare 500s."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import Depends, FastAPI
from litestar import Litestar, get
from sqlalchemy import text
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.testclient import TestClient
from starlette.websockets import WebSocket

from duo_orm import ConfigurationError, Database, DatabaseError
from duo_orm_fastapi import DuoORM, unit_of_work
from duo_orm_litestar import DuoORMPlugin
from duo_orm_starlette import DuoORMMiddleware, duo_exception_handlers

from .scenario import Shop, define_shop, lifespan_running

pytestmark = pytest.mark.anyio


@pytest.fixture
async def shop(tmp_path: Any) -> AsyncIterator[Shop]:
    db = Database(f"sqlite:///{tmp_path / 'options.db'}")
    made = define_shop(db)
    await db.create_all()
    yield made
    await db.disconnect()


async def call(app: Any, method: str, path: str, **kwargs: Any) -> httpx.Response:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with (
        lifespan_running(app),
        httpx.AsyncClient(transport=transport, base_url="http://t") as c,
    ):
        return await c.request(method, path, **kwargs)


def names(shop: Shop) -> list[str]:
    with shop.db.sync_standalone_session() as session:
        return sorted(session.execute(text("SELECT name FROM items")).scalars())


def starlette_app(shop: Shop, **options: Any) -> Starlette:
    async def create(request: Request) -> Response:
        item = await shop.Item.create(name=request.path_params["name"])
        return JSONResponse({"id": item.id, "in_transaction": shop.db.in_transaction})

    async def missing(request: Request) -> Response:
        await shop.Item.get_one(404)
        return JSONResponse({})

    async def socket(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.send_json({"in_transaction": shop.db.in_transaction})
        await websocket.close()

    return Starlette(
        routes=[
            Route("/missing", missing),
            Route("/{area}/{name}", create, methods=["POST"]),
            WebSocketRoute("/ws", socket),
        ],
        middleware=[Middleware(DuoORMMiddleware, db=shop.db, **options)],
        exception_handlers=duo_exception_handlers(error_style=options.get("error_style", "native")),
    )


async def test_excluded_paths_run_in_statement_mode(shop: Shop) -> None:
    app = starlette_app(shop, exclude_paths=["/health"])
    excluded = await call(app, "POST", "/health/a")
    assert excluded.json()["in_transaction"] is False
    included = await call(app, "POST", "/api/b")
    assert included.json()["in_transaction"] is True
    assert names(shop) == ["a", "b"]


async def test_read_only_paths_never_commit(shop: Shop) -> None:
    app = starlette_app(shop, read_only_paths=["/reports"])
    assert (await call(app, "POST", "/reports/x")).status_code == 200
    assert (await call(app, "POST", "/api/y")).status_code == 200
    assert names(shop) == ["y"]


def test_websocket_scopes_pass_through(tmp_path: Any) -> None:
    db = Database(f"sqlite:///{tmp_path / 'ws.db'}")
    with (
        TestClient(starlette_app(define_shop(db))) as client,
        client.websocket_connect("/ws") as ws,
    ):
        assert ws.receive_json() == {"in_transaction": False}
    db.disconnect()


@pytest.mark.parametrize("framework", ["fastapi", "starlette", "litestar"])
async def test_problem_json_error_style(shop: Shop, framework: str) -> None:
    if framework == "fastapi":
        app: Any = FastAPI()

        @app.get("/missing", dependencies=[Depends(unit_of_work)])
        async def missing_fastapi() -> None:
            await shop.Item.get_one(404)

        DuoORM(app, shop.db, error_style="problem")
    elif framework == "starlette":
        app = starlette_app(shop, error_style="problem")
    else:

        @get("/missing")
        async def missing_litestar() -> None:
            await shop.Item.get_one(404)

        app = Litestar([missing_litestar], plugins=[DuoORMPlugin(shop.db, error_style="problem")])
    response = await call(app, "GET", "/missing")
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["type"] == "about:blank" and body["title"] == "Not Found"
    assert body["status"] == 404 and "not found" in body["detail"]


async def test_fastapi_app_wide_dependency(shop: Shop) -> None:
    app = FastAPI(dependencies=[Depends(unit_of_work)])

    @app.post("/items/{name}")
    async def create(name: str) -> dict[str, bool]:
        await shop.Item.create(name=name)
        return {"in_transaction": shop.db.in_transaction}

    DuoORM(app, shop.db)
    assert (await call(app, "POST", "/items/a")).json() == {"in_transaction": True}
    assert names(shop) == ["a"]


async def test_fastapi_session_dependency_on_an_excluded_path_opens_a_transaction(
    shop: Shop,
) -> None:
    app = FastAPI()

    @app.post("/health/{name}", dependencies=[Depends(unit_of_work)])
    async def create(name: str) -> dict[str, bool]:
        await shop.Item.create(name=name)
        return {"in_transaction": shop.db.in_transaction}

    DuoORM(app, shop.db, exclude_paths=["/health"])
    assert (await call(app, "POST", "/health/a")).json() == {"in_transaction": True}
    assert names(shop) == ["a"]


async def test_fastapi_dependency_without_the_middleware_fails_loudly(shop: Shop) -> None:
    app = FastAPI()

    @app.get("/x", dependencies=[Depends(unit_of_work)])
    async def route() -> None:
        return None

    with pytest.raises(ConfigurationError, match=r"DuoORM\(app, db\)"):
        await call_raising(app, "/x")


async def call_raising(app: Any, path: str) -> None:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        await client.get(path)


async def test_database_errors_are_500_without_internals(shop: Shop) -> None:
    app = FastAPI()

    @app.get("/broken")
    async def broken() -> None:
        raise DatabaseError('syntax error at or near "SELEC" in SELECT * FROM secrets')

    DuoORM(app, shop.db)
    response = await call(app, "GET", "/broken")
    assert response.status_code == 500
    assert response.json() == {"detail": "Internal Server Error"}
