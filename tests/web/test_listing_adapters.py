"""The listing through each framework: the same parameters, answers and 400s everywhere,
and the parameters documented in FastAPI's and Litestar's OpenAPI.

Every app serves ``GET /events`` (``async def``) and ``GET /events-sync`` (``def``)
from one ``Listing``; the expected answers come from the framework-neutral core.
No ``from __future__ import annotations``: the routes' ``Annotated`` dependencies
are local names the frameworks must see as objects, not strings.
"""

import logging
from collections.abc import AsyncIterator
from typing import Annotated, Any
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest
from fastapi import Depends, FastAPI
from litestar import Litestar, get
from litestar.di import NamedDependency
from pydantic import BaseModel, ConfigDict
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from duo_orm import Database
from duo_orm.web.listing import Listing, ListParams, Page, openapi_parameters
from duo_orm_fastapi import DuoORM, list_params
from duo_orm_litestar import DuoORMPlugin, provide_list_params
from duo_orm_starlette import DuoORMMiddleware, duo_exception_handlers, duo_lifespan
from duo_orm_starlette import list_params as starlette_list_params

from .conftest import FRAMEWORKS
from .listing_events import define, listing, rows
from .scenario import lifespan_running

pytestmark = pytest.mark.anyio


class EventOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    name: str


def fastapi_app(db: Database, Event: Any, spec: Listing) -> FastAPI:
    app = FastAPI()
    Params = Annotated[ListParams, Depends(list_params(spec))]

    @app.get("/events")
    async def events(params: Params) -> Page[EventOut]:
        return (await params.apply(Event).page()).to_schema(EventOut)

    @app.get("/events-sync", response_model=Page[EventOut])
    def events_sync(params: Params) -> Any:
        return params.apply(Event).page()  # Page of rows, converted by response_model

    DuoORM(app, db)
    return app


def starlette_app(db: Database, Event: Any, spec: Listing) -> Starlette:
    async def events(request: Request) -> Response:
        page = await starlette_list_params(spec, request).apply(Event).page()
        return JSONResponse(page.to_schema(EventOut).model_dump(mode="json"))

    def events_sync(request: Request) -> Response:  # Starlette runs it in a thread
        page = starlette_list_params(spec, request).apply(Event).page()
        return JSONResponse(page.to_schema(EventOut).model_dump(mode="json"))

    async def threaded(request: Request) -> Response:
        import anyio.to_thread

        return await anyio.to_thread.run_sync(events_sync, request)

    return Starlette(
        routes=[Route("/events", events), Route("/events-sync", threaded)],
        middleware=[Middleware(DuoORMMiddleware, db=db)],
        lifespan=duo_lifespan(db),
        exception_handlers=duo_exception_handlers(),
    )


def litestar_app(db: Database, Event: Any, spec: Listing) -> Litestar:
    provided = {"params": provide_list_params(spec)}

    @get("/events", dependencies=provided)
    async def events(params: NamedDependency[ListParams]) -> Page[EventOut]:
        return (await params.apply(Event).page()).to_schema(EventOut)

    @get("/events-sync", dependencies=provided, sync_to_thread=True)
    def events_sync(params: NamedDependency[ListParams]) -> Page[EventOut]:
        return params.apply(Event).page().to_schema(EventOut)  # type: ignore[no-any-return]

    return Litestar([events, events_sync], plugins=[DuoORMPlugin(db)])


MAKERS = {"fastapi": fastapi_app, "starlette": starlette_app, "litestar": litestar_app}


@pytest.fixture(params=FRAMEWORKS)
async def served(request: pytest.FixtureRequest, url: str) -> AsyncIterator[Any]:
    db = Database(url)
    Event = define(db)
    await db.create_all()
    await Event.create_bulk(rows())
    spec = listing(Event, secret="test key")
    app = MAKERS[request.param](db, Event, spec)
    transport = httpx.ASGITransport(app=app)
    async with (
        lifespan_running(app),
        httpx.AsyncClient(transport=transport, base_url="http://test") as client,
    ):
        yield client, Event, spec
    await db.disconnect()


def expected(Event: Any, spec: Listing, query: str) -> Any:
    """What the framework-neutral core answers (run in a thread: sync calls)."""
    import anyio.to_thread

    items = parse_qsl(query, keep_blank_values=True)
    return anyio.to_thread.run_sync(lambda: spec.parse(items, "/events").apply(Event).page())


async def test_every_framework_answers_as_the_core_does_and_links_walk(served: Any) -> None:
    client, Event, spec = served
    for query in [
        "sort=-name&size=3&name__icontains=B",
        "page=2&size=5&score__in=0,2",
        "sort=day,-at&size=4&cursor=",
        "active=true&at__lt=2026-01-01T10:00:00Z&note__is_null=false&utm_source=x",
    ]:
        for route in ("/events", "/events-sync"):
            response = await client.get(f"{route}?{query}")
            assert response.status_code == 200, (query, response.text)
            body, core = response.json(), await expected(Event, spec, query)
            assert [item["id"] for item in body["items"]] == [row.id for row in core.items]
            assert (body["page"], body["total"], body["size"]) == (core.page, core.total, core.size)
            assert body["next"] is None or body["next"].startswith(route)  # the request's path
    # the links walk every row, and back, through the framework
    body = (await client.get("/events", params={"sort": "-score", "size": 10, "cursor": ""})).json()
    seen = [body["items"]]
    while body["next"]:
        body = (await client.get(body["next"])).json()
        seen.append(body["items"])
    assert [len(items) for items in seen] == [10, 10, 3]
    back = (await client.get(body["previous"])).json()
    assert back["items"] == seen[1]
    numbered = (await client.get("/events", params={"sort": "-score", "size": 10})).json()
    assert numbered["items"] == seen[0] and numbered["total"] == 23
    assert dict(parse_qsl(urlsplit(numbered["next"]).query))["page"] == "2"


async def test_bad_input_is_a_bounded_400_that_is_not_logged_as_an_error(
    served: Any, caplog: pytest.LogCaptureFixture
) -> None:
    client, _, _ = served
    caplog.set_level(logging.INFO)
    for query, message in [
        ("secret__icontains=h", "cannot filter by 'secret'"),
        ("score__icontains=1", "score cannot be filtered with 'icontains'"),
        ("score__gt=ten", "'score__gt' must be an integer"),
        ("day__ge=tomorrow", "must be an ISO 8601 date"),
        ("size=51", "size must be between 1 and 50"),
        ("sort=secret", "cannot sort by 'secret'"),
        ("cursor=Zm9v.YmFy", "cursor is invalid or expired"),
        ("name=" + "x" * 60_000 + "&size=x", "'size' must be an integer"),
    ]:
        for route in ("/events", "/events-sync"):
            response = await client.get(f"{route}?{query}")
            assert response.status_code == 400, (route, query, response.text)
            assert message in response.json()["detail"]
            assert len(response.content) <= 4096
    errors = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert errors == []


@pytest.mark.parametrize("framework", ["fastapi", "litestar"])
async def test_openapi_documents_each_parameter_and_the_page(framework: str) -> None:
    db = Database("sqlite:///:memory:")
    spec = listing(define(db))
    app = MAKERS[framework](db, spec.model, spec)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        path = "/openapi.json" if framework == "fastapi" else "/schema/openapi.json"
        schema = (await client.get(path)).json()
    operation = schema["paths"]["/events"]["get"]
    parameters = {p["name"]: p for p in operation["parameters"]}
    assert {p["in"] for p in parameters.values()} == {"query"}
    assert parameters["sort"]["schema"]["items"]["enum"][:4] == ["id", "-id", "name", "-name"]
    assert parameters["size"]["schema"]["maximum"] == 50
    assert parameters["page"]["schema"]["minimum"] == 1
    assert parameters["cursor"]["schema"]["maxLength"] == 1024
    assert parameters["day__ge"]["schema"]["format"] == "date"
    assert parameters["score__gt"]["schema"]["type"] == "integer"
    assert "ignoring case" in parameters["name__icontains"]["description"]
    # what Starlette users, who have no OpenAPI, get to paste into a schema of their own
    assert set(parameters) == {parameter["name"] for parameter in openapi_parameters(spec)}
    assert "400" in operation["responses"]
    page = schema["components"]["schemas"][
        operation["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].split("/")[
            -1
        ]
    ]
    assert {"items", "size", "page", "total", "next", "previous"} == set(page["properties"])
