"""OpenAPI: each operation documents the error statuses it can produce, and only those.

The rule (``duo_orm.web.openapi``): 400 with query parameters or a body, 404 only
with a path parameter, 409 for writes, 422 for writes that store data, 503 with
``Retry-After`` everywhere; ``@documents_errors(...)`` replaces it for one route,
and a status a route documents itself keeps its own text. FastAPI and Litestar
add statuses of their own (FastAPI's 422 for parameters, Litestar's 400), which
stay. Starlette has no OpenAPI generator. No database is reached: the schema is
built from the routes.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from litestar import Litestar, delete, get, patch, post
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import FromPath, FromQuery, JSONBody
from pydantic import BaseModel

from duo_orm import Database
from duo_orm.web.errors import ErrorStyle
from duo_orm.web.openapi import documents_errors, error_statuses
from duo_orm_fastapi import DuoORM
from duo_orm_litestar import DuoORMPlugin

pytestmark = pytest.mark.anyio

ORM = {"400", "404", "409", "422", "503"}


class ItemIn(BaseModel):
    name: str


def fastapi_app(style: ErrorStyle) -> FastAPI:
    app = FastAPI()

    @app.get("/items")
    async def listing(sort: str = "id") -> list[str]:
        return []

    @app.get("/items/{item_id}", responses={404: {"description": "No such item"}})
    async def read(item_id: int) -> dict[str, Any]:
        return {}

    @app.post("/items", status_code=201)
    async def create(payload: ItemIn) -> dict[str, Any]:
        return {}

    @app.patch("/items/{item_id}")
    async def update(item_id: int, payload: ItemIn) -> dict[str, Any]:
        return {}

    @app.delete("/items/{item_id}", status_code=204)
    async def remove(item_id: int) -> None:
        return None

    @app.get("/health")
    @documents_errors()
    async def health() -> dict[str, bool]:
        return {"ok": True}

    DuoORM(app, Database("sqlite:///:memory:"), error_style=style)
    return app


def litestar_app(style: ErrorStyle) -> Litestar:
    @get("/items")
    async def listing(sort: FromQuery[str] = "id") -> list[str]:
        return []

    @get(
        "/items/{item_id:int}",
        responses={404: ResponseSpec(data_container=None, description="No such item")},
    )
    async def read(item_id: FromPath[int]) -> dict[str, Any]:
        return {}

    @post("/items", status_code=201)
    async def create(data: JSONBody[ItemIn]) -> dict[str, Any]:
        return {}

    @patch("/items/{item_id:int}")
    async def update(item_id: FromPath[int], data: JSONBody[ItemIn]) -> dict[str, Any]:
        return {}

    @delete("/items/{item_id:int}")
    async def remove(item_id: FromPath[int]) -> None:
        return None

    @get("/health")
    @documents_errors()
    async def health() -> dict[str, bool]:
        return {"ok": True}

    handlers = [listing, read, create, update, remove, health]
    plugin = DuoORMPlugin(Database("sqlite:///:memory:"), error_style=style)
    return Litestar(route_handlers=handlers, plugins=[plugin])


# what each operation documents among the ORM statuses, per framework
EXPECTED = {
    "fastapi": {
        ("/items", "get"): {"400", "422", "503"},  # 422: FastAPI's own, for ?sort
        ("/items/{item_id}", "get"): {"404", "422", "503"},
        ("/items", "post"): {"400", "409", "422", "503"},
        ("/items/{item_id}", "patch"): {"400", "404", "409", "422", "503"},
        ("/items/{item_id}", "delete"): {"404", "409", "422", "503"},
        ("/health", "get"): set(),
    },
    "litestar": {  # Litestar documents its own 400 for any parameter or body
        ("/items", "get"): {"400", "503"},
        ("/items/{item_id}", "get"): {"400", "404", "503"},
        ("/items", "post"): {"400", "409", "422", "503"},
        ("/items/{item_id}", "patch"): {"400", "404", "409", "422", "503"},
        ("/items/{item_id}", "delete"): {"400", "404", "409", "503"},
        ("/health", "get"): set(),
    },
}


async def openapi(framework: str, style: ErrorStyle) -> dict[str, Any]:
    app: Any = fastapi_app(style) if framework == "fastapi" else litestar_app(style)
    url = "/openapi.json" if framework == "fastapi" else "/schema/openapi.json"
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        response = await client.get(url)
    assert response.status_code == 200
    schema: dict[str, Any] = response.json()
    return schema


@pytest.mark.parametrize("style", ["native", "problem"])
@pytest.mark.parametrize("framework", ["fastapi", "litestar"])
async def test_each_operation_documents_what_it_can_produce(
    framework: str, style: ErrorStyle
) -> None:
    paths = (await openapi(framework, style))["paths"]
    for (path, method), expected in EXPECTED[framework].items():
        documented = set(paths[path][method]["responses"]) & ORM
        assert documented == expected, (path, method)


@pytest.mark.parametrize("framework", ["fastapi", "litestar"])
async def test_503_documents_retry_after_and_400_the_error_shape(framework: str) -> None:
    for style, content_type in [
        ("native", "application/json"),
        ("problem", "application/problem+json"),
    ]:
        responses = (await openapi(framework, style))["paths"]["/items"]["get"]["responses"]
        unavailable = responses["503"]
        assert unavailable["headers"]["Retry-After"]["schema"] == {"type": "integer"}
        assert "unavailable" in unavailable["description"].lower()
        assert "sort" in responses["400"]["description"]
        assert set(responses["400"]["content"]) == {content_type}


@pytest.mark.parametrize("framework", ["fastapi", "litestar"])
async def test_a_route_s_own_wording_wins(framework: str) -> None:
    read = (await openapi(framework, "native"))["paths"]["/items/{item_id}"]["get"]
    assert read["responses"]["404"]["description"] == "No such item"


def test_documents_errors_takes_only_orm_statuses() -> None:
    with pytest.raises(ValueError, match="418"):
        documents_errors(404, 418)
    marked = documents_errors(503, 404)(lambda: None)
    rule = error_statuses("GET", path_parameters=False, query_parameters=True, handler=marked)
    assert rule == (404, 503)
