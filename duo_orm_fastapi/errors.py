"""ORM errors as FastAPI responses: FastAPI's own ``{"detail": ...}`` shape, or RFC 9457."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import SQLAlchemyError
from starlette.responses import Response

from duo_orm import DuoOrmError
from duo_orm.web.errors import (
    PROBLEM_CONTENT_TYPE,
    ErrorInfo,
    ErrorStyle,
    error_body,
    log_client_error,
)
from duo_orm.web.openapi import DESCRIPTIONS, RETRY_AFTER
from duo_orm_starlette.errors import database_error_handler


def install_error_handlers(app: FastAPI, *, error_style: ErrorStyle = "native") -> None:
    """ValidationError 422, not found 404, bad query 400, conflicts 409, database
    unavailable 503 (with ``Retry-After``), the rest 500.

    FastAPI's own request validation 422 keeps FastAPI's body, but bounded like every
    client error: FastAPI quotes each bad ``input`` whole, so a 60 KB value would come
    back as a 60 KB answer. A body that fits is FastAPI's, byte for byte.
    """

    async def invalid_request(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        info = ErrorInfo(422, "Invalid request", errors=jsonable_encoder(exc.errors()))
        log_client_error(info, exc)
        body, content_type = error_body(info, "native")  # FastAPI's own shape, documented so
        return JSONResponse(body, status_code=422, media_type=content_type)

    for error in (DuoOrmError, SQLAlchemyError):  # the same answers as the Starlette adapter's
        app.add_exception_handler(error, database_error_handler(error_style))
    app.add_exception_handler(RequestValidationError, invalid_request)


def error_responses(*statuses: int, error_style: ErrorStyle = "native") -> dict[int | str, Any]:
    """OpenAPI ``responses=`` entries for the errors the ORM maps (default 404, 409, 422).

    ``DuoORM`` documents them on every operation by itself (see
    ``duo_orm.web.openapi``); use this to word one route's entries yourself.
    """
    return responses_for(statuses or (404, 409, 422), error_style)


def responses_for(statuses: tuple[int, ...], error_style: ErrorStyle) -> dict[int | str, Any]:
    """The response objects for exactly ``statuses`` (none for an empty tuple)."""
    content_type = PROBLEM_CONTENT_TYPE if error_style == "problem" else "application/json"
    responses: dict[int | str, Any] = {}
    for status in statuses:
        schema = _problem_schema() if error_style == "problem" else _detail_schema(status)
        response: dict[str, Any] = {
            "description": DESCRIPTIONS.get(status, "Error"),
            "content": {content_type: {"schema": schema}},
        }
        if status == 503:
            response["headers"] = {"Retry-After": RETRY_AFTER}
        responses[status] = response
    return responses


def _detail_schema(status: int) -> dict[str, Any]:
    if status == 422:  # the shape of FastAPI's own request validation errors
        item = {
            "type": "object",
            "properties": {
                "loc": {
                    "type": "array",
                    "items": {"anyOf": [{"type": "string"}, {"type": "integer"}]},
                },
                "msg": {"type": "string"},
                "type": {"type": "string"},
            },
            "required": ["loc", "msg", "type"],
        }
        return {
            "type": "object",
            "title": "ValidationErrorDetail",
            "properties": {"detail": {"type": "array", "items": item}},
            "required": ["detail"],
        }
    return {
        "type": "object",
        "title": "ErrorDetail",
        "properties": {"detail": {"type": "string", "title": "Detail"}},
        "required": ["detail"],
    }


def _problem_schema() -> dict[str, Any]:
    return {
        "type": "object",
        "title": "ProblemDetails",
        "properties": {
            "type": {"type": "string"},
            "title": {"type": "string"},
            "status": {"type": "integer"},
            "detail": {"type": "string"},
            "field": {"type": "string"},
            "constraint": {"type": "string"},
            "retryable": {"type": "boolean"},
            "errors": {"type": "array", "items": {"type": "object"}},
        },
        "required": ["type", "title", "status", "detail"],
    }
