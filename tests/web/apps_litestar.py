"""The conformance routes as a Litestar app (async handlers, or sync ones in threads)."""

from __future__ import annotations

import time
from typing import Any

import anyio
from litestar import Litestar, MediaType, Response, get, post
from litestar.background_tasks import BackgroundTask
from litestar.di import NamedDependency
from litestar.exceptions import HTTPException
from litestar.params import FromPath, FromQuery, JSONBody
from litestar.response import Redirect, Stream
from pydantic import BaseModel
from sqlalchemy import inspect
from sqlalchemy.ext.asyncio import AsyncSession

from duo_orm_litestar import DuoORMPlugin

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


def make_app(shop: Shop, handlers: Handlers) -> Litestar:
    @get("/nodb")
    async def no_database() -> dict[str, bool]:
        return {"ok": True}

    routes = _async_routes(shop) if handlers == "async" else _sync_routes(shop)
    routes += _on_commit_routes(shop, handlers)
    return Litestar(route_handlers=[no_database, *routes], plugins=[DuoORMPlugin(shop.db)])


def _async_routes(shop: Shop) -> list[Any]:
    Item, db = shop.Item, shop.db

    @post("/items", status_code=201)
    async def create(data: JSONBody[ItemIn]) -> dict[str, Any]:
        item = await Item.create(data)
        return {"id": item.id, "name": item.name}

    @post("/items/then-http-error")
    async def then_http_error(data: JSONBody[ItemIn]) -> None:
        await Item.create(data)
        raise HTTPException(status_code=400, detail="refused after writing")

    @post("/items/then-crash")
    async def then_crash(data: JSONBody[ItemIn]) -> None:
        await Item.create(data)
        raise RuntimeError("boom")

    @post("/items/then-redirect", status_code=303)
    async def then_redirect(data: JSONBody[ItemIn]) -> Redirect:
        item = await Item.create(data)
        return Redirect(f"/items/{item.id}", status_code=303)

    @get("/items/{item_id:int}")
    async def read(item_id: FromPath[int]) -> dict[str, Any]:
        item = await Item.get_one(item_id)
        return {"id": item.id, "name": item.name}

    @get("/items")
    async def listing(sort: FromQuery[str] = "id") -> list[str]:
        return [i.name for i in await Item.order_by(sort, allowed=SORTABLE).all()]

    @post("/items/nested", status_code=201)
    async def nested(data: JSONBody[ItemIn]) -> dict[str, Any]:
        await Item.create(data)
        try:
            async with db.transaction():
                await Item.create(data)
        except Exception:  # the duplicate: only its savepoint rolls back
            pass
        await Item.create(name=data.name + "-2")
        return {"count": await Item.count()}

    @post("/items/stream", status_code=200)
    async def stream(data: JSONBody[ItemIn]) -> Stream:
        await Item.create(data)

        async def chunks() -> Any:
            yield b"start;"
            yield f"committed={await Item.where(Item.name == data.name).count()}".encode()

        return Stream(chunks(), media_type=MediaType.TEXT)

    @post("/items/background", status_code=201)
    async def with_background(data: JSONBody[ItemIn]) -> Response[dict[str, str]]:
        if data.name != LATER_ONLY:
            await Item.create(data)

        async def later() -> None:
            await Item.create(name=data.name + "-bg")
            shop.background.append((data.name, db.in_transaction))

        return Response({"ok": data.name}, status_code=201, background=BackgroundTask(later))

    @post("/items/slow", status_code=201)
    async def slow(data: JSONBody[ItemIn]) -> dict[str, str]:
        await Item.create(data)
        await anyio.sleep(1.0)
        return {"ok": data.name}

    @post("/items/tagged", status_code=201)
    async def tagged(
        data: JSONBody[ItemIn], db_session: NamedDependency[AsyncSession]
    ) -> dict[str, Any]:
        db_session.info["tag"] = data.name
        item = await Item.create(data)
        await anyio.sleep(0)
        again = await Item.get(item.id)
        own = again is item and inspect(item).session is db_session.sync_session
        return {"own_session": own and db_session.info["tag"] == data.name}

    return [
        create,
        then_http_error,
        then_crash,
        then_redirect,
        read,
        listing,
        nested,
        stream,
        with_background,
        slow,
        tagged,
    ]


def _sync_routes(shop: Shop) -> list[Any]:
    Item, db = shop.Item, shop.db

    @post("/items", status_code=201, sync_to_thread=True)
    def create(data: JSONBody[ItemIn]) -> dict[str, Any]:
        item = Item.create(data)
        return {"id": item.id, "name": item.name}

    @post("/items/then-http-error", sync_to_thread=True)
    def then_http_error(data: JSONBody[ItemIn]) -> None:
        Item.create(data)
        raise HTTPException(status_code=400, detail="refused after writing")

    @post("/items/then-crash", sync_to_thread=True)
    def then_crash(data: JSONBody[ItemIn]) -> None:
        Item.create(data)
        raise RuntimeError("boom")

    @post("/items/then-redirect", status_code=303, sync_to_thread=True)
    def then_redirect(data: JSONBody[ItemIn]) -> Redirect:
        item = Item.create(data)
        return Redirect(f"/items/{item.id}", status_code=303)

    @get("/items/{item_id:int}", sync_to_thread=True)
    def read(item_id: FromPath[int]) -> dict[str, Any]:
        item = Item.get_one(item_id)
        return {"id": item.id, "name": item.name}

    @get("/items", sync_to_thread=True)
    def listing(sort: FromQuery[str] = "id") -> list[str]:
        return [i.name for i in Item.order_by(sort, allowed=SORTABLE).all()]

    @post("/items/nested", status_code=201, sync_to_thread=True)
    def nested(data: JSONBody[ItemIn]) -> dict[str, Any]:
        Item.create(data)
        try:
            with db.transaction():
                Item.create(data)
        except Exception:
            pass
        Item.create(name=data.name + "-2")
        return {"count": Item.count()}

    @post("/items/stream", status_code=200, sync_to_thread=True)
    def stream(data: JSONBody[ItemIn]) -> Stream:
        Item.create(data)

        def chunks() -> Any:
            yield b"start;"
            yield f"committed={Item.where(Item.name == data.name).count()}".encode()

        return Stream(chunks(), media_type=MediaType.TEXT)

    @post("/items/background", status_code=201, sync_to_thread=True)
    def with_background(data: JSONBody[ItemIn]) -> Response[dict[str, str]]:
        if data.name != LATER_ONLY:
            Item.create(data)

        def later() -> None:
            Item.create(name=data.name + "-bg")
            shop.background.append((data.name, db.in_transaction))

        return Response({"ok": data.name}, status_code=201, background=BackgroundTask(later))

    @post("/items/slow", status_code=201, sync_to_thread=True)
    def slow(data: JSONBody[ItemIn]) -> dict[str, str]:
        Item.create(data)
        time.sleep(1.0)
        return {"ok": data.name}

    @post("/items/tagged", status_code=201, sync_to_thread=True)
    def tagged(data: JSONBody[ItemIn], db_session: NamedDependency[AsyncSession]) -> dict[str, Any]:
        db_session.info["tag"] = data.name
        item = Item.create(data)
        time.sleep(0)
        again = Item.get(item.id)
        own = again is item and inspect(item).session is db_session.sync_session
        return {"own_session": own and db_session.info["tag"] == data.name}

    return [
        create,
        then_http_error,
        then_crash,
        then_redirect,
        read,
        listing,
        nested,
        stream,
        with_background,
        slow,
        tagged,
    ]


def _on_commit_routes(shop: Shop, handlers: Handlers) -> list[Any]:
    """POST /items/on-commit?then=...: write, register db.on_commit callbacks, then end as told."""
    Item, db = shop.Item, shop.db

    def then_(then: str) -> None:
        if then == "http-error":
            raise HTTPException(status_code=400, detail="refused after writing")
        if then == "crash":
            raise RuntimeError("boom")

    @post("/items/on-commit", status_code=201)
    async def on_commit(data: JSONBody[ItemIn], then: FromQuery[str] = "") -> dict[str, Any]:
        item = await Item.create(data)
        if then == "failing-callback":
            db.on_commit(failing_callback)
        db.on_commit(record_commit(shop, data.name))
        then_(then)
        return {"id": item.id}

    @post("/items/on-commit", status_code=201, sync_to_thread=True)
    def on_commit_sync(data: JSONBody[ItemIn], then: FromQuery[str] = "") -> dict[str, Any]:
        item = Item.create(data)
        if then == "failing-callback":
            db.on_commit(failing_callback)
        db.on_commit(record_commit_sync(shop, data.name))
        then_(then)
        return {"id": item.id}

    return [on_commit if handlers == "async" else on_commit_sync]
