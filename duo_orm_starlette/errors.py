"""ORM errors as Starlette responses: ``{"detail": ...}`` bodies, or RFC 9457."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from pydantic import ValidationError as PydanticValidationError
from sqlalchemy.exc import SQLAlchemyError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from duo_orm import DuoOrmError
from duo_orm.web import ErrorInfo
from duo_orm.web.errors import ErrorStyle, describe_handled, error_body, request_body_error

Handler = Callable[[Request, Exception], Awaitable[Response]]


def duo_exception_handlers(*, error_style: ErrorStyle = "native") -> dict[Any, Handler]:
    """For ``Starlette(exception_handlers=...)``: 422, 404, 400, 409, 503 with
    ``Retry-After``, and 500 without internals.

    A pydantic ``ValidationError`` escaping an endpoint is a request body that did not
    fit its schema: 422 with pydantic's list of problems. A body ``json_body(request)``
    cannot decode (malformed, not text, nested too deeply) is a 400.
    """

    async def body_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, PydanticValidationError)
        return _respond(request_body_error(exc), error_style)

    database_error = database_error_handler(error_style)
    return {
        DuoOrmError: database_error,
        SQLAlchemyError: database_error,
        PydanticValidationError: body_error,
    }


def database_error_handler(error_style: ErrorStyle) -> Handler:
    """The handler for duo-orm (and raw SQLAlchemy) errors; the FastAPI adapter uses it too."""

    async def database_error(request: Request, exc: Exception) -> Response:
        return _respond(describe_handled(exc), error_style)

    return database_error


def _respond(info: ErrorInfo, error_style: ErrorStyle) -> Response:
    body, content_type = error_body(info, error_style)
    return JSONResponse(
        body, status_code=info.status, media_type=content_type, headers=info.headers
    )
