"""``DuoORM(app, db)``: everything the adapter adds to a FastAPI app, in one call."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI
from fastapi.routing import APIRoute

from duo_orm import Database
from duo_orm.web import compose_lifespan
from duo_orm.web.errors import ErrorStyle
from duo_orm.web.openapi import error_statuses
from duo_orm_starlette.middleware import DuoORMMiddleware, duo_lifespan

from .errors import install_error_handlers, responses_for
from .gating import gate_threaded_routes, gating_routes_at_startup

__all__ = ["DuoORM", "duo_lifespan"]  # duo_lifespan is the Starlette adapter's


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
        app.add_middleware(  # the Starlette adapter's middleware: FastAPI is Starlette
            DuoORMMiddleware,
            databases=databases,
            error_style=error_style,
            exclude_paths=exclude_paths,
            read_only_paths=read_only_paths,
        )
        install_error_handlers(app, error_style=error_style)
        gate_threaded_routes(app)
        lifespan = app.router.lifespan_context
        if manage_lifespan:
            lifespan = compose_lifespan(databases, lifespan)
        app.router.lifespan_context = gating_routes_at_startup(lifespan)
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


_HTTP_METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}
