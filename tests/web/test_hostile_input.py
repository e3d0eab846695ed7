"""Issue 14's HTTP edges, tried as a hostile client would, through every adapter.

A 60 KB sort value, malformed and 1,000-deep JSON bodies, and a client that hangs
up mid-body: each gets a bounded answer in the adapter's error shape (never a
plain-text 500), writes nothing, and logs nothing above INFO on the ``duo_orm``
logger tree, so a client cannot flood the log.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import anyio
import httpx
import pytest
from fastapi import FastAPI
from litestar import Litestar, get
from sqlalchemy import func
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from duo_orm import Database, DatabaseError, InvalidQueryError
from duo_orm.web.errors import (
    MAX_CLIENT_ERROR_BYTES,
    ErrorInfo,
    describe_handled,
    detail_body,
    error_body,
)
from duo_orm_fastapi import DuoORM
from duo_orm_litestar import DuoORMPlugin
from duo_orm_litestar.plugin import litestar_body
from duo_orm_starlette import DuoORMMiddleware, duo_exception_handlers, json_body

from .conftest import FRAMEWORKS, Served
from .scenario import define_shop, lifespan_running

pytestmark = pytest.mark.anyio

DEEP = "[" * 1000 + "]" * 1000


def loud_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    """Records above INFO, from any logger: what a client must not be able to cause."""
    return [r for r in caplog.records if r.levelno > logging.INFO]


def detail_of(body: dict[str, Any]) -> str:
    """The message of a 4xx in FastAPI/Starlette's shape or in Litestar's."""
    detail = body["detail"]
    return detail if isinstance(detail, str) else json.dumps(detail)


async def test_a_60_kb_sort_is_a_short_400_naming_only_the_sortable_fields(
    served: Served, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="duo_orm")
    await served.client.post("/items", json={"name": "kept"})
    response = await served.client.get("/items", params={"sort": "x" * 60_000})
    assert response.status_code == 400
    assert response.headers["content-type"].startswith("application/json")
    assert len(response.content) <= MAX_CLIENT_ERROR_BYTES
    detail = detail_of(response.json())
    assert "(60000 characters)" in detail
    assert detail.endswith("sortable fields are: id, name")
    assert "ref_id" not in detail  # a column the client may not sort by stays unnamed
    hidden = await served.client.get("/items", params={"sort": "-ref_id"})
    assert hidden.status_code == 400 and "ref_id" in detail_of(hidden.json())  # only echoed
    assert (await served.client.get("/items", params={"sort": "-name"})).json() == ["kept"]
    assert loud_records(caplog) == []
    debug = [r for r in caplog.records if r.name.startswith("duo_orm")]
    assert debug and all(r.levelno == logging.DEBUG for r in debug)
    assert all(len(r.getMessage()) < 1_000 for r in debug)


@pytest.mark.parametrize(
    "body", [b'{"name": ', DEEP.encode(), b'{"name": ' + DEEP.encode() + b"}", b"\xff\xfe\x00"]
)
async def test_a_body_that_is_not_usable_json_is_a_4xx_in_the_adapter_s_shape(
    served: Served, body: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    headers = {"content-type": "application/json"}
    response = await served.client.post("/items", content=body, headers=headers)
    assert served.names() == []
    assert response.headers["content-type"].startswith("application/json")
    assert "Traceback" not in response.text and len(response.content) <= MAX_CLIENT_ERROR_BYTES
    if served.framework == "litestar" and body.count(b"[") >= 1000:
        # Litestar's own msgspec decoder raises RecursionError at this depth, before any
        # duo-orm code runs: the framework answers 500 in its own shape (issue 14).
        assert response.status_code == 500
        assert response.json() == {"status_code": 500, "detail": "Internal Server Error"}
        return
    # FastAPI answers its own 422 (json_invalid) or 400; Starlette (json_body) and
    # Litestar answer 400
    expected = {"fastapi": {400, 422}, "starlette": {400}, "litestar": {400}}
    assert response.status_code in expected[served.framework]
    assert detail_of(response.json())
    assert loud_records(caplog) == []
    if served.framework == "starlette":  # the adapter's own words, from json_body()
        assert response.json()["detail"] in {
            "The body is not valid JSON: Expecting value at line 1 column 10.",
            "The JSON body is nested too deeply.",
            "The body is not valid JSON: it is not UTF-8 text.",
        }


async def test_a_60_kb_value_of_the_wrong_type_is_a_bounded_4xx(served: Served) -> None:
    response = await served.client.post("/items", json={"name": ["x" * 60_000]})
    assert response.status_code in {400, 422}  # Litestar's own status for a bad body: 400
    assert len(response.content) <= MAX_CLIENT_ERROR_BYTES
    assert "name" in response.text and served.names() == []
    if served.framework == "fastapi":  # FastAPI's shape, its 60 KB "input" left out
        assert response.json()["detail"][0]["loc"] == ["body", "name"]
        small = await served.client.post("/items", json={"name": [1]})
        assert small.json() == {  # a body that fits is FastAPI's own, input included
            "detail": [
                {
                    "type": "string_type",
                    "loc": ["body", "name"],
                    "msg": "Input should be a valid string",
                    "input": [1],
                }
            ]
        }


async def send_half_a_body_then_hang_up(app: Any) -> list[dict[str, Any]]:
    """Drive the app as a server does when the client leaves mid-body."""
    incoming = [
        {"type": "http.request", "body": b'{"name": "half', "more_body": True},
        {"type": "http.disconnect"},
    ]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return incoming.pop(0) if incoming else {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/items",
        "raw_path": b"/items",
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", b"test"), (b"content-type", b"application/json")],
        "client": ("127.0.0.1", 50000),
        "server": ("test", 80),
        "state": {},
    }
    with anyio.fail_after(10):
        await app(scope, receive, send)
    return sent


async def test_a_client_that_hangs_up_is_no_error(
    served: Served, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    sent = await send_half_a_body_then_hang_up(served.app)
    assert served.names() == []
    assert served.pool().checkedout() == 0
    assert not [r for r in caplog.records if r.exc_info], "a traceback was logged"
    if served.framework == "litestar":
        # Litestar turns the disconnect into its own 500 response (sent to nobody) and
        # logs nothing; duo-orm rolls back.
        assert loud_records(caplog) == []
        assert sent[0]["status"] == 500
    elif served.framework == "fastapi":
        # FastAPI's body parsing turns it into its own 400, sent to nobody
        assert loud_records(caplog) == []
        assert sent[0]["status"] == 400
    else:  # Starlette: the ClientDisconnect ends the request, with one INFO line
        assert sent == []
        gone = [r for r in caplog.records if r.name == "duo_orm.web"]
        assert [(r.levelno, r.getMessage()) for r in gone] == [
            (logging.INFO, "Client disconnected during POST '/items'")
        ]
        assert loud_records(caplog) == []


@pytest.mark.parametrize("style", ["native", "problem"])
@pytest.mark.parametrize("shape", [detail_body, litestar_body])
def test_every_client_error_body_is_capped(style: Any, shape: Any) -> None:
    huge = "\U0001f600" * 30_000  # 12 bytes each once JSON-escaped
    errors = [{"type": huge, "loc": ["body", huge, 3, huge, huge, huge], "msg": huge}] * 1_000
    for status in (400, 404, 409, 422):
        info = ErrorInfo(status, huge, field=huge, constraint=huge, errors=errors)
        body, _ = error_body(info, style, shape)
        encoded = json.dumps(body).encode()
        assert len(encoded) <= MAX_CLIENT_ERROR_BYTES, (status, len(encoded))
        assert "..." in encoded.decode()
    small = ErrorInfo(400, "short")
    assert error_body(small, style, shape)[0] == error_body(small, style, shape)[0]
    assert "short" in json.dumps(error_body(small, style, shape)[0])


async def test_a_500_is_logged_once_at_error_without_sql_parameters(
    url: str, caplog: pytest.LogCaptureFixture
) -> None:
    db = Database(url)
    Item = define_shop(db).Item
    await db.create_all()
    secret = "ann" + "@example.com"  # built here, so no traceback line can show it
    try:
        with pytest.raises(DatabaseError) as raised:  # an unknown SQL function
            await Item.where(func.no_such_function(Item.name, secret) == 1).all()
    finally:
        await db.disconnect()
    caplog.set_level(logging.DEBUG, logger="duo_orm")
    info = describe_handled(raised.value)
    assert info.status == 500 and info.detail == "Internal Server Error"
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and errors[0].name == "duo_orm.web" and errors[0].exc_info
    assert "no_such_function" in caplog.text  # the SQL is there to debug with
    assert secret not in caplog.text  # its parameters are not


def test_every_logger_is_in_the_duo_orm_tree() -> None:
    """One tree to configure: records reach ``duo_orm``, and no adapter logs outside it."""
    import duo_orm_fastapi
    import duo_orm_litestar
    import duo_orm_starlette

    packages = (duo_orm_fastapi, duo_orm_litestar, duo_orm_starlette)
    names = list(logging.Logger.manager.loggerDict)
    assert all(package.__name__ not in name for name in names for package in packages)
    tree = logging.getLogger("duo_orm")
    records: list[logging.LogRecord] = []
    handler = logging.Handler(logging.DEBUG)
    handler.emit = records.append  # type: ignore[method-assign]
    tree.addHandler(handler)
    level = tree.level
    tree.setLevel(logging.DEBUG)
    try:
        describe_handled(InvalidQueryError("User has no field 'x'"))
    finally:
        tree.removeHandler(handler)
        tree.setLevel(level)
    assert [(r.name, r.levelno) for r in records] == [("duo_orm.web", logging.DEBUG)]


async def test_a_client_that_hangs_up_on_an_excluded_path_is_no_error(
    url: str, caplog: pytest.LogCaptureFixture
) -> None:
    async def create(request: Request) -> Response:
        return JSONResponse(await json_body(request), status_code=201)

    db = Database(url)
    app = Starlette(
        routes=[Route("/items", create, methods=["POST"])],
        middleware=[Middleware(DuoORMMiddleware, db=db, exclude_paths=["/items"])],
        exception_handlers=duo_exception_handlers(),
    )
    caplog.set_level(logging.DEBUG)
    assert await send_half_a_body_then_hang_up(app) == []
    assert [(r.name, r.levelno) for r in caplog.records if r.name.startswith("duo_orm")] == [
        ("duo_orm.web", logging.INFO)
    ]
    assert loud_records(caplog) == []
    await db.disconnect()


def failing_app(framework: str, db: Database, query: Any) -> Any:
    """One route whose query the database refuses: an ORM error the adapter answers 500."""

    async def crash() -> None:
        await query().all()

    async def crash_starlette(request: Request) -> Response:
        await crash()
        return Response()

    if framework == "fastapi":
        fastapi_app = FastAPI()
        fastapi_app.get("/crash")(crash)
        DuoORM(fastapi_app, db)
        return fastapi_app
    if framework == "starlette":
        return Starlette(
            routes=[Route("/crash", crash_starlette)],
            middleware=[Middleware(DuoORMMiddleware, db=db)],
            exception_handlers=duo_exception_handlers(),
        )
    # logging_config=None: Litestar's default would replace the root logger's handlers
    # (pytest's capture among them) at startup; it decides nothing about what is logged
    return Litestar(
        route_handlers=[get("/crash")(crash)], plugins=[DuoORMPlugin(db)], logging_config=None
    )


@pytest.mark.parametrize("framework", FRAMEWORKS)
async def test_an_orm_500_through_each_adapter_is_logged_once_without_parameters(
    framework: str, url: str, caplog: pytest.LogCaptureFixture
) -> None:
    db = Database(url)
    Item = define_shop(db).Item
    await db.create_all()
    secret = "bob" + "@example.com"
    app = failing_app(
        framework, db, lambda: Item.where(func.no_such_function(Item.name, secret) == 1)
    )
    caplog.set_level(logging.DEBUG)
    transport = httpx.ASGITransport(app=app)
    async with (
        lifespan_running(app),
        httpx.AsyncClient(transport=transport, base_url="http://t") as client,
    ):
        response = await client.get("/crash")
    await db.disconnect()
    assert response.status_code == 500
    assert "no_such_function" not in response.text and "SELECT" not in response.text
    errors = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert [(r.name, r.levelno) for r in errors] == [("duo_orm.web", logging.ERROR)]
    logged = logging.Formatter().format(errors[0])  # with the traceback
    assert "no_such_function" in logged and secret not in logged
    # (a driver's own DEBUG logging, aiosqlite's for one, may show parameters: not ours)
