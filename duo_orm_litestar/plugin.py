"""``DuoORMPlugin``: request transactions, lifespan, DI and error handlers for Litestar."""

from __future__ import annotations

from collections.abc import MutableMapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

from litestar import Request, Response
from litestar.config.app import AppConfig
from litestar.di import Provide
from litestar.handlers import HTTPRouteHandler
from litestar.middleware.base import DefineMiddleware
from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.spec import OpenAPIHeader, OpenAPIResponse, OpenAPIType, Operation, Schema
from litestar.plugins import InitPluginProtocol, ReceiveRoutePlugin
from litestar.routes import BaseRoute, HTTPRoute
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession

from duo_orm import Database, DuoOrmError
from duo_orm.web import ErrorInfo, UnitOfWorkMiddleware, databases_connected, open_unit
from duo_orm.web.errors import (
    PROBLEM_CONTENT_TYPE,
    ErrorStyle,
    describe_handled,
    error_body,
    render,
)
from duo_orm.web.openapi import DESCRIPTIONS, RETRY_AFTER, error_statuses
from duo_orm.web.routes import STATEMENT_MODE


def litestar_body(info: ErrorInfo) -> dict[str, Any]:
    """Litestar's own error shape: ``status_code``, ``detail`` and ``extra``."""
    body: dict[str, Any] = {"status_code": info.status, "detail": info.detail}
    if info.status == 422:
        extra: list[dict[str, Any]] = []
        if info.field:
            extra.append({"message": info.detail, "key": info.field, "source": "body"})
        for error in info.errors:
            key = ".".join(str(part) for part in error.get("loc", ()))
            extra.append({"message": error.get("msg"), "key": key, "source": "body"})
        body["extra"] = extra
    elif info.constraint is not None:
        body["extra"] = {"constraint": info.constraint}
    elif info.retryable:
        body["extra"] = {"retryable": True}
    return body


async def provide_db_session(request: Request[Any, Any, Any]) -> AsyncSession:
    """The request transaction's session, for handlers that want raw statements."""
    return await open_unit(cast(MutableMapping[str, Any], request.scope))


def handler_opted_out(scope: MutableMapping[str, Any]) -> bool:
    """``@get(..., opt={"statement_mode": True})`` or ``@statement_mode`` under ``@get``."""
    handler = scope.get("route_handler")
    if handler is None:
        return False
    if (getattr(handler, "opt", None) or {}).get("statement_mode") is True:
        return True
    return getattr(getattr(handler, "fn", None), STATEMENT_MODE, False) is True


@dataclass
class _ErrorBody:
    status_code: int
    detail: str
    extra: dict[str, Any] | list[dict[str, Any]] | None = None


@dataclass
class _ProblemBody:
    type: str
    title: str
    status: int
    detail: str
    field: str | None = None
    constraint: str | None = None
    retryable: bool | None = None
    errors: list[dict[str, Any]] | None = None


@dataclass
class _RetryableOperation(Operation):
    """An operation whose 503 response documents its ``Retry-After`` header
    (Litestar's ``ResponseSpec`` has no field for response headers)."""

    def __post_init__(self) -> None:
        response = (self.responses or {}).get("503")
        if isinstance(response, OpenAPIResponse) and not response.headers:
            response.headers = {
                "Retry-After": OpenAPIHeader(
                    description=RETRY_AFTER["description"],
                    schema=Schema(type=OpenAPIType.INTEGER),
                )
            }


class DuoORMPlugin(InitPluginProtocol, ReceiveRoutePlugin):
    """One line: ``Litestar(plugins=[DuoORMPlugin(db)])``.

    - lifespan: ``db.connect()`` at startup (a bad URL or unreachable server fails
      startup), ``db.disconnect()`` at shutdown, composed with the app's other lifespans;
    - every HTTP request runs in one transaction, committed just before a 2xx/3xx
      response starts, rolled back otherwise, answered with 409/500 if the commit fails;
      ``exclude_paths`` and handlers with ``opt={"statement_mode": True}`` opt out,
      ``read_only_paths`` always roll back;
    - ``db_session`` dependency (the request's ``AsyncSession``);
    - exception handlers: ValidationError 422, not found 404, bad query 400,
      conflicts 409, database unavailable 503 with ``Retry-After``, the rest 500
      without internals, in Litestar's error shape
      (``error_style="problem"`` for RFC 9457);
    - in the OpenAPI schema, each operation lists the error responses it can produce
      (``duo_orm.web.openapi.error_statuses``: 404 only with a path parameter, 400
      with query parameters or a body, 409/422 for writes, 503 with ``Retry-After``
      everywhere); ``@documents_errors(...)`` under the route decorator replaces the
      rule, and a status the handler's own ``responses`` documents keeps its text.
    """

    def __init__(
        self,
        db: Database | None = None,
        *,
        databases: Sequence[Database] = (),
        error_style: ErrorStyle = "native",
        exclude_paths: Sequence[str] = (),
        read_only_paths: Sequence[str] = (),
        session_dependency_key: str = "db_session",
        document_errors: bool = True,
    ) -> None:
        self.databases = ([db] if db is not None else []) + list(databases)
        if not self.databases:
            raise TypeError("DuoORMPlugin needs a Database")
        self.error_style: ErrorStyle = error_style
        self.exclude_paths = tuple(exclude_paths)
        self.read_only_paths = tuple(read_only_paths)
        self.session_dependency_key = session_dependency_key
        self.document_errors = document_errors

    def on_app_init(self, app_config: AppConfig) -> AppConfig:
        databases, style = self.databases, self.error_style
        app_config.lifespan.insert(0, lambda app: databases_connected(databases))
        app_config.middleware.insert(
            0,
            DefineMiddleware(
                cast(Any, UnitOfWorkMiddleware),
                databases=databases,
                render_error=lambda info: render(info, style, litestar_body),
                exclude_paths=self.exclude_paths,
                read_only_paths=self.read_only_paths,
                route_opted_out=handler_opted_out,
            ),
        )
        app_config.dependencies.setdefault(self.session_dependency_key, Provide(provide_db_session))
        for error in (DuoOrmError, SQLAlchemyError):
            app_config.exception_handlers.setdefault(error, self._handle)
        return app_config

    def _handle(self, request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
        info = describe_handled(exc)
        body, media_type = error_body(info, self.error_style, litestar_body)
        return Response(body, status_code=info.status, media_type=media_type, headers=info.headers)

    def receive_route(self, route: BaseRoute) -> None:
        if not self.document_errors or not isinstance(route, HTTPRoute):
            return
        statuses: dict[HTTPRouteHandler, set[int]] = {}
        for method, (handler, kwargs_model) in route.route_handler_map.items():
            statuses.setdefault(handler, set()).update(
                error_statuses(
                    method,
                    path_parameters=bool(route.path_parameters),
                    query_parameters=bool(kwargs_model.expected_query_params),
                    request_body="data" in handler.parsed_fn_signature.parameters,
                    handler=handler.fn,
                )
            )
        for handler, chosen in statuses.items():
            responses = dict(handler.responses or {})
            for status in sorted(chosen):
                responses.setdefault(status, self._response_spec(status))
            handler.responses = responses
            if 503 in chosen and handler.operation_class is Operation:
                handler.operation_class = _RetryableOperation

    def _response_spec(self, status: int) -> ResponseSpec:
        if self.error_style == "problem":
            return ResponseSpec(
                data_container=_ProblemBody,
                description=DESCRIPTIONS[status],
                media_type=PROBLEM_CONTENT_TYPE,
                generate_examples=False,
            )
        return ResponseSpec(
            data_container=_ErrorBody, description=DESCRIPTIONS[status], generate_examples=False
        )
