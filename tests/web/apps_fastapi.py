"""The conformance routes as a FastAPI app (``async def`` or ``def`` handlers)."""

from __future__ import annotations

import time
from typing import Any

import anyio
from fastapi import APIRouter, BackgroundTasks, FastAPI, HTTPException
from fastapi.responses import RedirectResponse, StreamingResponse
from pydantic import BaseModel
from sqlalchemy import inspect

from duo_orm_fastapi import DuoORM, RequestSession

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


def make_app(shop: Shop, handlers: Handlers) -> FastAPI:
    app = FastAPI()
    router = APIRouter()  # no dependency: DuoORM puts every request in a unit of work
    (_async_routes if handlers == "async" else _sync_routes)(router, shop)
    _on_commit_routes(router, shop, handlers)

    @app.get("/nodb")
    async def no_database() -> dict[str, bool]:
        return {"ok": True}

    app.include_router(router)
    DuoORM(app, shop.db)
    return app


def _async_routes(router: APIRouter, shop: Shop) -> None:
    Item = shop.Item

    @router.post("/items", status_code=201)
    async def create(payload: ItemIn) -> dict[str, Any]:
        item = await Item.create(payload)
        return {"id": item.id, "name": item.name}

    @router.post("/items/then-http-error")
    async def then_http_error(payload: ItemIn) -> None:
        await Item.create(payload)
        raise HTTPException(status_code=400, detail="refused after writing")

    @router.post("/items/then-crash")
    async def then_crash(payload: ItemIn) -> None:
        await Item.create(payload)
        raise RuntimeError("boom")

    @router.post("/items/then-redirect")
    async def then_redirect(payload: ItemIn) -> RedirectResponse:
        item = await Item.create(payload)
        return RedirectResponse(f"/items/{item.id}", status_code=303)

    @router.get("/items/{item_id}")
    async def read(item_id: int) -> dict[str, Any]:
        item = await Item.get_one(item_id)
        return {"id": item.id, "name": item.name}

    @router.get("/items")
    async def listing(sort: str = "id") -> list[str]:
        return [i.name for i in await Item.order_by(sort, allowed=SORTABLE).all()]

    @router.post("/items/nested", status_code=201)
    async def nested(payload: ItemIn) -> dict[str, Any]:
        await Item.create(payload)
        try:
            async with shop.db.transaction():
                await Item.create(payload)  # duplicate: only this savepoint rolls back
        except Exception:
            pass
        await Item.create(name=payload.name + "-2")
        return {"count": await Item.count()}

    @router.post("/items/stream")
    async def stream(payload: ItemIn) -> StreamingResponse:
        await Item.create(payload)

        async def body() -> Any:
            yield b"start;"
            # statement mode here: sees only what was committed
            yield f"committed={await Item.where(Item.name == payload.name).count()}".encode()

        return StreamingResponse(body(), media_type="text/plain")

    @router.post("/items/background", status_code=201)
    async def with_background(payload: ItemIn, tasks: BackgroundTasks) -> dict[str, str]:
        if payload.name != LATER_ONLY:
            await Item.create(payload)

        async def later() -> None:
            await Item.create(name=payload.name + "-bg")
            shop.background.append((payload.name, shop.db.in_transaction))

        tasks.add_task(later)
        return {"ok": payload.name}

    @router.post("/items/slow", status_code=201)
    async def slow(payload: ItemIn) -> dict[str, str]:
        await Item.create(payload)
        await anyio.sleep(1.0)
        return {"ok": payload.name}

    @router.post("/items/tagged", status_code=201)
    async def tagged(payload: ItemIn, session: RequestSession) -> dict[str, Any]:
        session.info["tag"] = payload.name
        item = await Item.create(payload)
        await anyio.sleep(0)
        again = await Item.get(item.id)
        own = again is item and inspect(item).session is session.sync_session
        return {"own_session": own and session.info["tag"] == payload.name}


def _sync_routes(router: APIRouter, shop: Shop) -> None:
    Item = shop.Item

    @router.post("/items", status_code=201)
    def create(payload: ItemIn) -> dict[str, Any]:
        item = Item.create(payload)
        return {"id": item.id, "name": item.name}

    @router.post("/items/then-http-error")
    def then_http_error(payload: ItemIn) -> None:
        Item.create(payload)
        raise HTTPException(status_code=400, detail="refused after writing")

    @router.post("/items/then-crash")
    def then_crash(payload: ItemIn) -> None:
        Item.create(payload)
        raise RuntimeError("boom")

    @router.post("/items/then-redirect")
    def then_redirect(payload: ItemIn) -> RedirectResponse:
        item = Item.create(payload)
        return RedirectResponse(f"/items/{item.id}", status_code=303)

    @router.get("/items/{item_id}")
    def read(item_id: int) -> dict[str, Any]:
        item = Item.get_one(item_id)
        return {"id": item.id, "name": item.name}

    @router.get("/items")
    def listing(sort: str = "id") -> list[str]:
        return [i.name for i in Item.order_by(sort, allowed=SORTABLE).all()]

    @router.post("/items/nested", status_code=201)
    def nested(payload: ItemIn) -> dict[str, Any]:
        Item.create(payload)
        try:
            with shop.db.transaction():
                Item.create(payload)
        except Exception:
            pass
        Item.create(name=payload.name + "-2")
        return {"count": Item.count()}

    @router.post("/items/stream")
    def stream(payload: ItemIn) -> StreamingResponse:
        Item.create(payload)

        def body() -> Any:
            yield b"start;"
            yield f"committed={Item.where(Item.name == payload.name).count()}".encode()

        return StreamingResponse(body(), media_type="text/plain")

    @router.post("/items/background", status_code=201)
    def with_background(payload: ItemIn, tasks: BackgroundTasks) -> dict[str, str]:
        if payload.name != LATER_ONLY:
            Item.create(payload)

        def later() -> None:
            Item.create(name=payload.name + "-bg")
            shop.background.append((payload.name, shop.db.in_transaction))

        tasks.add_task(later)
        return {"ok": payload.name}

    @router.post("/items/slow", status_code=201)
    def slow(payload: ItemIn) -> dict[str, str]:
        Item.create(payload)
        time.sleep(1.0)
        return {"ok": payload.name}

    @router.post("/items/tagged", status_code=201)
    def tagged(payload: ItemIn, session: RequestSession) -> dict[str, Any]:
        session.info["tag"] = payload.name
        item = Item.create(payload)
        time.sleep(0)
        again = Item.get(item.id)
        own = again is item and inspect(item).session is session.sync_session
        return {"own_session": own and session.info["tag"] == payload.name}


def _on_commit_routes(router: APIRouter, shop: Shop, handlers: Handlers) -> None:
    """POST /items/on-commit?then=...: write, register db.on_commit callbacks, then end as told."""
    Item, db = shop.Item, shop.db

    def then_(then: str) -> None:
        if then == "http-error":
            raise HTTPException(status_code=400, detail="refused after writing")
        if then == "crash":
            raise RuntimeError("boom")

    if handlers == "async":

        @router.post("/items/on-commit", status_code=201)
        async def on_commit(payload: ItemIn, then: str = "") -> dict[str, Any]:
            item = await Item.create(payload)
            if then == "failing-callback":
                db.on_commit(failing_callback)
            db.on_commit(record_commit(shop, payload.name))
            then_(then)
            return {"id": item.id}

    else:

        @router.post("/items/on-commit", status_code=201)
        def on_commit_sync(payload: ItemIn, then: str = "") -> dict[str, Any]:
            item = Item.create(payload)
            if then == "failing-callback":
                db.on_commit(failing_callback)
            db.on_commit(record_commit_sync(shop, payload.name))
            then_(then)
            return {"id": item.id}
