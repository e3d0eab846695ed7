"""The conformance routes as a Starlette app (``async def`` or ``def`` endpoints)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import anyio
import anyio.from_thread
from pydantic import BaseModel
from sqlalchemy import inspect
from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.endpoints import HTTPEndpoint
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import Route

from duo_orm_starlette import DuoORMMiddleware, duo_exception_handlers, duo_lifespan, json_body

from .scenario import (
    LATER_ONLY,
    SORTABLE,
    Handlers,
    Shop,
    failing_callback,
    record_commit,
    record_commit_sync,
)


class ItemIn(BaseModel):
    name: str
    ref_id: int | None = None


def make_app(shop: Shop, handlers: Handlers) -> Starlette:
    routes = _async_routes(shop) if handlers == "async" else _sync_routes(shop)

    async def no_database(request: Request) -> Response:
        return JSONResponse({"ok": True})

    return Starlette(
        routes=[Route("/nodb", no_database), *routes, *_on_commit_routes(shop, handlers)],
        middleware=[Middleware(DuoORMMiddleware, db=shop.db)],
        lifespan=duo_lifespan(shop.db),
        exception_handlers=duo_exception_handlers(),
    )


def _async_routes(shop: Shop) -> list[Route]:
    Item, db = shop.Item, shop.db

    async def body(request: Request) -> ItemIn:
        return ItemIn.model_validate(await json_body(request))

    async def create(request: Request) -> Response:
        item = await Item.create(await body(request))
        return JSONResponse({"id": item.id, "name": item.name}, status_code=201)

    async def then_http_error(request: Request) -> Response:
        await Item.create(await body(request))
        raise HTTPException(400, "refused after writing")

    async def then_crash(request: Request) -> Response:
        await Item.create(await body(request))
        raise RuntimeError("boom")

    async def then_redirect(request: Request) -> Response:
        item = await Item.create(await body(request))
        return RedirectResponse(f"/items/{item.id}", status_code=303)

    class OneItem(HTTPEndpoint):  # class-based endpoints get the same transaction
        async def get(self, request: Request) -> Response:
            item = await Item.get_one(int(request.path_params["item_id"]))
            return JSONResponse({"id": item.id, "name": item.name})

    async def listing(request: Request) -> Response:
        sort = request.query_params.get("sort", "id")
        return JSONResponse([i.name for i in await Item.order_by(sort, allowed=SORTABLE).all()])

    async def nested(request: Request) -> Response:
        payload = await body(request)
        await Item.create(payload)
        try:
            async with db.transaction():
                await Item.create(payload)
        except Exception:  # the duplicate: only its savepoint rolls back
            pass
        await Item.create(name=payload.name + "-2")
        return JSONResponse({"count": await Item.count()}, status_code=201)

    async def stream(request: Request) -> Response:
        payload = await body(request)
        await Item.create(payload)

        async def chunks() -> Any:
            yield b"start;"
            yield f"committed={await Item.where(Item.name == payload.name).count()}".encode()

        return StreamingResponse(chunks(), media_type="text/plain")

    async def with_background(request: Request) -> Response:
        payload = await body(request)
        if payload.name != LATER_ONLY:
            await Item.create(payload)

        async def later() -> None:
            await Item.create(name=payload.name + "-bg")
            shop.background.append((payload.name, db.in_transaction))

        return JSONResponse({"ok": payload.name}, status_code=201, background=BackgroundTask(later))

    async def slow(request: Request) -> Response:
        payload = await body(request)
        await Item.create(payload)
        await anyio.sleep(1.0)
        return JSONResponse({"ok": payload.name}, status_code=201)

    async def tagged(request: Request) -> Response:
        payload = await body(request)
        item = await Item.create(payload)
        # A lone create leaves the instance detached until the request's session
        # exists; the read makes it, and the session adopts the instance.
        first = await Item.get(item.id)
        session = inspect(item).session
        assert session is not None
        session.info["tag"] = payload.name
        await anyio.sleep(0)
        again = await Item.get(item.id)
        own = first is again is item and session.info["tag"] == payload.name
        return JSONResponse({"own_session": own and db.in_transaction}, status_code=201)

    return _routes(
        create,
        then_http_error,
        then_crash,
        then_redirect,
        OneItem,
        listing,
        nested,
        stream,
        with_background,
        slow,
        tagged,
    )


def _sync_routes(shop: Shop) -> list[Route]:
    Item, db = shop.Item, shop.db

    def body(request: Request) -> ItemIn:
        # a sync endpoint runs in a worker thread: read the body on the event loop
        return ItemIn.model_validate(anyio.from_thread.run(json_body, request))

    def create(request: Request) -> Response:
        item = Item.create(body(request))
        return JSONResponse({"id": item.id, "name": item.name}, status_code=201)

    def then_http_error(request: Request) -> Response:
        Item.create(body(request))
        raise HTTPException(400, "refused after writing")

    def then_crash(request: Request) -> Response:
        Item.create(body(request))
        raise RuntimeError("boom")

    def then_redirect(request: Request) -> Response:
        item = Item.create(body(request))
        return RedirectResponse(f"/items/{item.id}", status_code=303)

    class OneItem(HTTPEndpoint):
        def get(self, request: Request) -> Response:
            item = Item.get_one(int(request.path_params["item_id"]))
            return JSONResponse({"id": item.id, "name": item.name})

    def listing(request: Request) -> Response:
        sort = request.query_params.get("sort", "id")
        return JSONResponse([i.name for i in Item.order_by(sort, allowed=SORTABLE).all()])

    def nested(request: Request) -> Response:
        payload = body(request)
        Item.create(payload)
        try:
            with db.transaction():
                Item.create(payload)
        except Exception:
            pass
        Item.create(name=payload.name + "-2")
        return JSONResponse({"count": Item.count()}, status_code=201)

    def stream(request: Request) -> Response:
        payload = body(request)
        Item.create(payload)

        def chunks() -> Any:
            yield b"start;"
            yield f"committed={Item.where(Item.name == payload.name).count()}".encode()

        return StreamingResponse(chunks(), media_type="text/plain")

    def with_background(request: Request) -> Response:
        payload = body(request)
        if payload.name != LATER_ONLY:
            Item.create(payload)

        def later() -> None:
            Item.create(name=payload.name + "-bg")
            shop.background.append((payload.name, db.in_transaction))

        return JSONResponse({"ok": payload.name}, status_code=201, background=BackgroundTask(later))

    def slow(request: Request) -> Response:
        payload = body(request)
        Item.create(payload)
        time.sleep(1.0)
        return JSONResponse({"ok": payload.name}, status_code=201)

    def tagged(request: Request) -> Response:
        payload = body(request)
        item = Item.create(payload)
        session = inspect(item).session
        assert session is not None
        session.info["tag"] = payload.name
        time.sleep(0)
        again = Item.get(item.id)
        own = again is item and session.info["tag"] == payload.name and db.in_transaction
        return JSONResponse({"own_session": own}, status_code=201)

    return _routes(
        create,
        then_http_error,
        then_crash,
        then_redirect,
        OneItem,
        listing,
        nested,
        stream,
        with_background,
        slow,
        tagged,
    )


def _routes(
    create: Callable[..., Any],
    then_http_error: Callable[..., Any],
    then_crash: Callable[..., Any],
    then_redirect: Callable[..., Any],
    one_item: Any,
    listing: Callable[..., Any],
    nested: Callable[..., Any],
    stream: Callable[..., Any],
    with_background: Callable[..., Any],
    slow: Callable[..., Any],
    tagged: Callable[..., Any],
) -> list[Route]:
    return [
        Route("/items", create, methods=["POST"]),
        Route("/items", listing, methods=["GET"]),
        Route("/items/then-http-error", then_http_error, methods=["POST"]),
        Route("/items/then-crash", then_crash, methods=["POST"]),
        Route("/items/then-redirect", then_redirect, methods=["POST"]),
        Route("/items/nested", nested, methods=["POST"]),
        Route("/items/stream", stream, methods=["POST"]),
        Route("/items/background", with_background, methods=["POST"]),
        Route("/items/slow", slow, methods=["POST"]),
        Route("/items/tagged", tagged, methods=["POST"]),
        Route("/items/{item_id:int}", one_item),
    ]


def _on_commit_routes(shop: Shop, handlers: Handlers) -> list[Route]:
    """POST /items/on-commit?then=...: write, register db.on_commit callbacks, then end as told."""
    Item, db = shop.Item, shop.db

    def then_(then: str) -> None:
        if then == "http-error":
            raise HTTPException(400, "refused after writing")
        if then == "crash":
            raise RuntimeError("boom")

    async def on_commit(request: Request) -> Response:
        payload = ItemIn.model_validate(await request.json())
        item = await Item.create(payload)
        then = request.query_params.get("then", "")
        if then == "failing-callback":
            db.on_commit(failing_callback)
        db.on_commit(record_commit(shop, payload.name))
        then_(then)
        return JSONResponse({"id": item.id}, status_code=201)

    def on_commit_sync(request: Request) -> Response:
        payload = ItemIn.model_validate(anyio.from_thread.run(request.json))
        item = Item.create(payload)
        then = request.query_params.get("then", "")
        if then == "failing-callback":
            db.on_commit(failing_callback)
        db.on_commit(record_commit_sync(shop, payload.name))
        then_(then)
        return JSONResponse({"id": item.id}, status_code=201)

    endpoint = on_commit if handlers == "async" else on_commit_sync
    return [Route("/items/on-commit", endpoint, methods=["POST"])]
