"""``DuoORM(app, db)``: everything the adapter adds to a FastAPI app, in one call."""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.routing import APIRoute
from starlette.requests import ClientDisconnect

from duo_orm import Database
from duo_orm.web import UnitOfWorkMiddleware, compose_lifespan
from duo_orm.web.errors import ErrorStyle, render
from duo_orm.web.openapi import error_statuses
from duo_orm.web.routes import endpoint_opted_out, gate_threaded, is_gated
from duo_orm.web.unit_of_work import SCOPE_KEY, RequestState

from .errors import install_error_handlers, responses_for

Lifespan = Callable[[Any], AbstractAsyncContextManager[Any]]


def duo_lifespan(*databases: Database, lifespan: Lifespan | None = None) -> Lifespan:
    """``FastAPI(lifespan=duo_lifespan(db))``: connect at startup, dispose at shutdown.

    Pass your own lifespan as ``lifespan=`` and it runs inside, with the
    databases already connected.
    """
    return compose_lifespan(databases, lifespan)


class DuoORM:
    """Install the request unit of work, engine lifespan, error handlers and OpenAPI docs.

    Every HTTP request runs in one transaction per database, opened on its first
    ORM call, for ``async def`` and ``def`` endpoints alike; ``Depends(unit_of_work)``
    still works and returns the session. ``exclude_paths`` (path prefixes) and the
    ``@statement_mode`` route decorator opt out; ``read_only_paths`` always roll back.
    """

    def __init__(
        self,
        app: FastAPI,
        *databases: Database,
        error_style: ErrorStyle = "native",
        exclude_paths: Sequence[str] = (),
        read_only_paths: Sequence[str] = (),
        manage_lifespan: bool = True,
    ) -> None:
        if not databases:
            raise TypeError("DuoORM(app, db) needs at least one Database")
        self.app = app
        self.databases = databases
        self.error_style: ErrorStyle = error_style
        app.add_middleware(
            UnitOfWorkMiddleware,
            databases=databases,
            render_error=lambda info: render(info, error_style),
            exclude_paths=exclude_paths,
            read_only_paths=read_only_paths,
            route_opted_out=endpoint_opted_out,
            client_gone_errors=(ClientDisconnect,),
        )
        install_error_handlers(app, error_style=error_style)
        gate_threaded_routes(app)
        if manage_lifespan:
            app.router.lifespan_context = _gating_routes_at_startup(
                compose_lifespan(databases, app.router.lifespan_context)
            )
        self._document_errors()

    def _document_errors(self) -> None:
        """List on each operation the ORM error responses it can produce.

        The statuses follow ``duo_orm.web.openapi.error_statuses`` (404 only with a
        path parameter, 400 with query parameters or a body, 409/422 for writes,
        503 everywhere); ``@documents_errors(...)`` on an endpoint replaces that
        rule, and a status the route documents with ``responses=`` keeps its text.
        """
        app, style = self.app, self.error_style
        generate = app.openapi

        def openapi() -> dict[str, Any]:
            if app.openapi_schema is not None:
                return app.openapi_schema
            schema = generate()
            endpoints = {
                (route.path_format, method.lower()): route.endpoint
                for route in app.routes
                if isinstance(route, APIRoute)
                for method in route.methods or ()
            }
            for path, path_item in schema.get("paths", {}).items():
                for method, operation in path_item.items():
                    if method not in _HTTP_METHODS:
                        continue
                    places = {p.get("in") for p in operation.get("parameters", ())}
                    statuses = error_statuses(
                        method,
                        path_parameters="path" in places,
                        query_parameters="query" in places,
                        request_body="requestBody" in operation,
                        handler=endpoints.get((path, method)),
                    )
                    responses = operation.setdefault("responses", {})
                    for status, spec in responses_for(statuses, style).items():
                        responses.setdefault(str(status), spec)
            app.openapi_schema = schema
            return schema

        app.openapi = openapi  # type: ignore[method-assign]


def gate_threaded_routes(app: FastAPI) -> None:
    """Hold a place at the transaction gate before a ``def`` endpoint takes a worker thread.

    FastAPI runs ``def`` endpoints, and then their response validation, in its
    thread pool: a request holding a connection needs a second thread to finish.
    Waiting for the gate in the event loop, not in a thread, keeps one free.
    Routes added after ``DuoORM(app, db)`` are wrapped when the app starts.
    """
    _gate_routes(app.router.routes)


def _gate_routes(routes: Sequence[Any]) -> None:
    for route in routes:
        included = getattr(route, "original_router", None)
        if included is not None:  # FastAPI >= 0.13x keeps included routers as a branch
            _gate_routes(included.routes)
            continue
        if not isinstance(route, APIRoute) or _is_async(route.endpoint):
            continue
        if not is_gated(route.app):  # the route as FastAPI serves it directly
            route.app = gate_threaded(route.app)
        if not is_gated(route.get_route_handler):  # and as an included router rebuilds it
            route.get_route_handler = _gated_handler_factory(route.get_route_handler)  # type: ignore[method-assign]


def _gated_handler_factory(make: Callable[[], RequestHandler]) -> Callable[[], RequestHandler]:
    def make_gated() -> RequestHandler:
        handler = make()

        async def gated(request: Request) -> Response:
            state = request.scope.get(SCOPE_KEY)
            if isinstance(state, RequestState) and state.deferred and not state.opted_out():
                await state.hold_thread_gates()
            return await handler(request)

        return gated

    setattr(make_gated, "__duo_orm_gated__", True)  # noqa: B010
    return make_gated


RequestHandler = Callable[[Request], Coroutine[Any, Any, Response]]


def _is_async(endpoint: Callable[..., Any]) -> bool:
    call = endpoint if inspect.isroutine(endpoint) else getattr(endpoint, "__call__", None)  # noqa: B004
    return inspect.iscoroutinefunction(call)


def _gating_routes_at_startup(inner: Lifespan) -> Lifespan:
    @asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[Any]:
        if isinstance(app, FastAPI):
            gate_threaded_routes(app)
        async with inner(app) as state:
            yield state

    return lifespan


_HTTP_METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}
