"""Small apps for the request contract (DESIGN.md section 3, items 2, 11 and 13 and the
opt-outs), written the way a user writes them: no per-route dependency anywhere.

Routes, the same in every framework and handler flavour:

- ``POST /plain/then-http-error``: writes, then answers 400
- ``POST /plain/unawaited``: an ORM call without ``await`` (correct in a ``def`` handler)
- ``POST /plain/stream-orphan``: a write refused at COMMIT, then a streaming body that queries
  and a background task
- ``POST /optout/then-http-error``: ``@statement_mode``, writes, then answers 400
- ``POST /health/then-http-error``: under ``exclude_paths``, writes, then answers 400
- ``POST /reports/create``: under ``read_only_paths``, writes, answers 200
- ``POST /plain/background-only``: no ORM call, a background task that writes
- ``POST /optout/unawaited``: ``@statement_mode``, then an ORM call without ``await``
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import anyio.from_thread
from fastapi import BackgroundTasks, FastAPI
from fastapi import HTTPException as FastAPIHTTPException
from fastapi.responses import StreamingResponse
from litestar import Litestar, post
from litestar import Response as LitestarResponse
from litestar.background_tasks import BackgroundTask as LitestarTask
from litestar.exceptions import HTTPException as LitestarHTTPException
from litestar.params import JSONBody
from litestar.response import Stream
from pydantic import BaseModel
from starlette.applications import Starlette
from starlette.background import BackgroundTask as StarletteTask
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from duo_orm_fastapi import DuoORM, statement_mode
from duo_orm_litestar import DuoORMPlugin
from duo_orm_starlette import DuoORMMiddleware, duo_exception_handlers, duo_lifespan
from duo_orm_starlette import (
    statement_mode as starlette_statement_mode,  # the same object in every adapter
)

from .scenario import Handlers, Shop

EXCLUDE = ["/health"]
READ_ONLY = ["/reports"]
ORPHAN = 999  # no such item: the deferred foreign key refuses the COMMIT


class Name(BaseModel):
    name: str


def make_app(framework: str, shop: Shop, handlers: Handlers) -> Any:
    maker = {"fastapi": _fastapi, "starlette": _starlette, "litestar": _litestar}[framework]
    return maker(shop, handlers)


def _background(shop: Shop) -> StarletteTask:
    return StarletteTask(shop.background.append, ("background task ran", False))


def _litestar_background(shop: Shop) -> LitestarTask:
    return LitestarTask(shop.background.append, ("background task ran", False))


def _writer(shop: Shop, handlers: Handlers) -> Any:
    """A background task that writes, in the handlers' flavour."""
    if handlers == "async":

        async def write(name: str) -> None:
            await shop.Item.create(name=name)
            shop.background.append((name, shop.db.in_transaction))

        return write

    def write_sync(name: str) -> None:
        shop.Item.create(name=name)
        shop.background.append((name, shop.db.in_transaction))

    return write_sync


def _body_ran(shop: Shop, count: int) -> bytes:
    shop.background.append(("stream body ran", shop.db.in_transaction))
    return f"count={count}".encode()


def _fastapi(shop: Shop, handlers: Handlers) -> Any:

    Item = shop.Item
    app = FastAPI()

    if handlers == "async":

        @app.post("/plain/then-http-error")
        async def then_http_error(payload: Name) -> None:
            await Item.create(payload)
            raise FastAPIHTTPException(400, "refused after writing")

        @app.post("/plain/unawaited")
        async def unawaited(payload: Name) -> dict[str, bool]:
            await Item.create(name=payload.name + "-first")
            Item.create(name=payload.name)  # the forgotten await
            return {"ok": True}

        @app.post("/plain/stream-orphan")
        async def stream_orphan(payload: Name) -> StreamingResponse:
            await Item.create(name=payload.name, ref_id=ORPHAN)

            async def body() -> AsyncIterator[bytes]:
                yield _body_ran(shop, await Item.count())

            return StreamingResponse(body(), background=_background(shop))

        @app.post("/optout/then-http-error")
        @statement_mode
        async def opted_out(payload: Name) -> None:
            await Item.create(payload)
            raise FastAPIHTTPException(400, "refused after writing")

        @app.post("/health/then-http-error")
        async def excluded(payload: Name) -> None:
            await Item.create(payload)
            raise FastAPIHTTPException(400, "refused after writing")

        @app.post("/reports/create")
        async def read_only(payload: Name) -> dict[str, bool]:
            await Item.create(payload)
            return {"ok": True}

    else:

        @app.post("/plain/then-http-error")
        def then_http_error_sync(payload: Name) -> None:
            Item.create(payload)
            raise FastAPIHTTPException(400, "refused after writing")

        @app.post("/plain/unawaited")
        def unawaited_sync(payload: Name) -> dict[str, bool]:
            Item.create(name=payload.name + "-first")
            Item.create(name=payload.name)  # sync code: no await needed
            return {"ok": True}

        @app.post("/plain/stream-orphan")
        def stream_orphan_sync(payload: Name) -> StreamingResponse:
            Item.create(name=payload.name, ref_id=ORPHAN)

            def body() -> Iterator[bytes]:
                yield _body_ran(shop, Item.count())

            return StreamingResponse(body(), background=_background(shop))

        @app.post("/optout/then-http-error")
        @statement_mode
        def opted_out_sync(payload: Name) -> None:
            Item.create(payload)
            raise FastAPIHTTPException(400, "refused after writing")

        @app.post("/health/then-http-error")
        def excluded_sync(payload: Name) -> None:
            Item.create(payload)
            raise FastAPIHTTPException(400, "refused after writing")

        @app.post("/reports/create")
        def read_only_sync(payload: Name) -> dict[str, bool]:
            Item.create(payload)
            return {"ok": True}

    write = _writer(shop, handlers)
    if handlers == "async":

        @app.post("/plain/background-only")
        async def background_only(payload: Name, tasks: BackgroundTasks) -> dict[str, bool]:
            tasks.add_task(write, payload.name)
            return {"ok": True}

        @app.post("/optout/unawaited")
        @statement_mode
        async def opted_out_unawaited(payload: Name) -> dict[str, bool]:
            await Item.create(name=payload.name + "-first")
            Item.create(name=payload.name)  # the forgotten await
            return {"ok": True}

    else:

        @app.post("/plain/background-only")
        def background_only_sync(payload: Name, tasks: BackgroundTasks) -> dict[str, bool]:
            tasks.add_task(write, payload.name)
            return {"ok": True}

        @app.post("/optout/unawaited")
        @statement_mode
        def opted_out_unawaited_sync(payload: Name) -> dict[str, bool]:
            Item.create(name=payload.name + "-first")
            Item.create(name=payload.name)
            return {"ok": True}

    DuoORM(app, shop.db, exclude_paths=EXCLUDE, read_only_paths=READ_ONLY)
    return app


def _starlette(shop: Shop, handlers: Handlers) -> Any:

    Item = shop.Item

    async def name_of(request: Request) -> str:
        return str((await request.json())["name"])

    if handlers == "async":

        async def then_http_error(request: Request) -> Response:
            await Item.create(name=await name_of(request))
            raise StarletteHTTPException(400, "refused after writing")

        async def unawaited(request: Request) -> Response:
            name = await name_of(request)
            await Item.create(name=name + "-first")
            Item.create(name=name)  # the forgotten await
            return JSONResponse({"ok": True})

        async def stream_orphan(request: Request) -> Response:
            await Item.create(name=await name_of(request), ref_id=ORPHAN)

            async def body() -> AsyncIterator[bytes]:
                yield _body_ran(shop, await Item.count())

            return StreamingResponse(body(), background=_background(shop))

        @starlette_statement_mode
        async def opted_out(request: Request) -> Response:
            await Item.create(name=await name_of(request))
            raise StarletteHTTPException(400, "refused after writing")

        async def read_only(request: Request) -> Response:
            await Item.create(name=await name_of(request))
            return JSONResponse({"ok": True})

        routes = [
            Route("/plain/then-http-error", then_http_error, methods=["POST"]),
            Route("/plain/unawaited", unawaited, methods=["POST"]),
            Route("/plain/stream-orphan", stream_orphan, methods=["POST"]),
            Route("/optout/then-http-error", opted_out, methods=["POST"]),
            Route("/health/then-http-error", then_http_error, methods=["POST"]),
            Route("/reports/create", read_only, methods=["POST"]),
        ]
    else:
        # Starlette runs a plain ``def`` endpoint in a worker thread.
        def name_sync(request: Request) -> str:
            return anyio.from_thread.run(name_of, request)

        def then_http_error_sync(request: Request) -> Response:
            Item.create(name=name_sync(request))
            raise StarletteHTTPException(400, "refused after writing")

        def unawaited_sync(request: Request) -> Response:
            name = name_sync(request)
            Item.create(name=name + "-first")
            Item.create(name=name)  # sync code: no await needed
            return JSONResponse({"ok": True})

        def stream_orphan_sync(request: Request) -> Response:
            Item.create(name=name_sync(request), ref_id=ORPHAN)

            def body() -> Iterator[bytes]:
                yield _body_ran(shop, Item.count())

            return StreamingResponse(body(), background=_background(shop))

        @starlette_statement_mode
        def opted_out_sync(request: Request) -> Response:
            Item.create(name=name_sync(request))
            raise StarletteHTTPException(400, "refused after writing")

        def read_only_sync(request: Request) -> Response:
            Item.create(name=name_sync(request))
            return JSONResponse({"ok": True})

        routes = [
            Route("/plain/then-http-error", then_http_error_sync, methods=["POST"]),
            Route("/plain/unawaited", unawaited_sync, methods=["POST"]),
            Route("/plain/stream-orphan", stream_orphan_sync, methods=["POST"]),
            Route("/optout/then-http-error", opted_out_sync, methods=["POST"]),
            Route("/health/then-http-error", then_http_error_sync, methods=["POST"]),
            Route("/reports/create", read_only_sync, methods=["POST"]),
        ]
    write = _writer(shop, handlers)
    if handlers == "async":

        async def background_only(request: Request) -> Response:
            name = await name_of(request)
            return JSONResponse({"ok": True}, background=StarletteTask(write, name))

        @starlette_statement_mode
        async def opted_out_unawaited(request: Request) -> Response:
            name = await name_of(request)
            await Item.create(name=name + "-first")
            Item.create(name=name)  # the forgotten await
            return JSONResponse({"ok": True})

        routes += [
            Route("/plain/background-only", background_only, methods=["POST"]),
            Route("/optout/unawaited", opted_out_unawaited, methods=["POST"]),
        ]
    else:

        def background_only_sync(request: Request) -> Response:
            name = name_sync(request)
            return JSONResponse({"ok": True}, background=StarletteTask(write, name))

        @starlette_statement_mode
        def opted_out_unawaited_sync(request: Request) -> Response:
            name = name_sync(request)
            Item.create(name=name + "-first")
            Item.create(name=name)
            return JSONResponse({"ok": True})

        routes += [
            Route("/plain/background-only", background_only_sync, methods=["POST"]),
            Route("/optout/unawaited", opted_out_unawaited_sync, methods=["POST"]),
        ]
    return Starlette(
        routes=routes,
        middleware=[
            Middleware(
                DuoORMMiddleware, db=shop.db, exclude_paths=EXCLUDE, read_only_paths=READ_ONLY
            )
        ],
        lifespan=duo_lifespan(shop.db),
        exception_handlers=duo_exception_handlers(),
    )


def _litestar(shop: Shop, handlers: Handlers) -> Any:

    Item = shop.Item

    if handlers == "async":

        @post("/plain/then-http-error")
        async def then_http_error(data: JSONBody[Name]) -> None:
            await Item.create(data)
            raise LitestarHTTPException(status_code=400, detail="refused after writing")

        @post("/plain/unawaited", status_code=200)
        async def unawaited(data: JSONBody[Name]) -> dict[str, bool]:
            await Item.create(name=data.name + "-first")
            Item.create(name=data.name)  # the forgotten await
            return {"ok": True}

        @post("/plain/stream-orphan", status_code=200)
        async def stream_orphan(data: JSONBody[Name]) -> Stream:
            await Item.create(name=data.name, ref_id=ORPHAN)

            async def body() -> AsyncIterator[bytes]:
                yield _body_ran(shop, await Item.count())

            return Stream(body(), background=_litestar_background(shop))

        @post("/optout/then-http-error", opt={"statement_mode": True})
        async def opted_out(data: JSONBody[Name]) -> None:
            await Item.create(data)
            raise LitestarHTTPException(status_code=400, detail="refused after writing")

        @post("/health/then-http-error")
        async def excluded(data: JSONBody[Name]) -> None:
            await Item.create(data)
            raise LitestarHTTPException(status_code=400, detail="refused after writing")

        @post("/reports/create", status_code=200)
        async def read_only(data: JSONBody[Name]) -> dict[str, bool]:
            await Item.create(data)
            return {"ok": True}

        handlers_list = [then_http_error, unawaited, stream_orphan, opted_out, excluded, read_only]
    else:

        @post("/plain/then-http-error", sync_to_thread=True)
        def then_http_error_sync(data: JSONBody[Name]) -> None:
            Item.create(data)
            raise LitestarHTTPException(status_code=400, detail="refused after writing")

        @post("/plain/unawaited", status_code=200, sync_to_thread=True)
        def unawaited_sync(data: JSONBody[Name]) -> dict[str, bool]:
            Item.create(name=data.name + "-first")
            Item.create(name=data.name)  # sync code: no await needed
            return {"ok": True}

        @post("/plain/stream-orphan", status_code=200, sync_to_thread=True)
        def stream_orphan_sync(data: JSONBody[Name]) -> Stream:
            Item.create(name=data.name, ref_id=ORPHAN)

            def body() -> Iterator[bytes]:
                yield _body_ran(shop, Item.count())

            return Stream(body(), background=_litestar_background(shop))

        @post("/optout/then-http-error", opt={"statement_mode": True}, sync_to_thread=True)
        def opted_out_sync(data: JSONBody[Name]) -> None:
            Item.create(data)
            raise LitestarHTTPException(status_code=400, detail="refused after writing")

        @post("/health/then-http-error", sync_to_thread=True)
        def excluded_sync(data: JSONBody[Name]) -> None:
            Item.create(data)
            raise LitestarHTTPException(status_code=400, detail="refused after writing")

        @post("/reports/create", status_code=200, sync_to_thread=True)
        def read_only_sync(data: JSONBody[Name]) -> dict[str, bool]:
            Item.create(data)
            return {"ok": True}

        handlers_list = [
            then_http_error_sync,
            unawaited_sync,
            stream_orphan_sync,
            opted_out_sync,
            excluded_sync,
            read_only_sync,
        ]
    write = _writer(shop, handlers)
    if handlers == "async":

        @post("/plain/background-only", status_code=200)
        async def background_only(data: JSONBody[Name]) -> LitestarResponse[dict[str, bool]]:
            return LitestarResponse({"ok": True}, background=LitestarTask(write, data.name))

        @post("/optout/unawaited", status_code=200, opt={"statement_mode": True})
        async def opted_out_unawaited(data: JSONBody[Name]) -> dict[str, bool]:
            await Item.create(name=data.name + "-first")
            Item.create(name=data.name)  # the forgotten await
            return {"ok": True}

        handlers_list += [background_only, opted_out_unawaited]
    else:

        @post("/plain/background-only", status_code=200, sync_to_thread=True)
        def background_only_sync(data: JSONBody[Name]) -> LitestarResponse[dict[str, bool]]:
            return LitestarResponse({"ok": True}, background=LitestarTask(write, data.name))

        @post(
            "/optout/unawaited", status_code=200, opt={"statement_mode": True}, sync_to_thread=True
        )
        def opted_out_unawaited_sync(data: JSONBody[Name]) -> dict[str, bool]:
            Item.create(name=data.name + "-first")
            Item.create(name=data.name)
            return {"ok": True}

        handlers_list += [background_only_sync, opted_out_unawaited_sync]
    plugin = DuoORMPlugin(shop.db, exclude_paths=EXCLUDE, read_only_paths=READ_ONLY)
    return Litestar(route_handlers=handlers_list, plugins=[plugin])
