"""ORM errors as FastAPI responses: FastAPI's own ``{"detail": ...}`` shape, or RFC 9457."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from sqlalchemy.exc import SQLAlchemyError
from starlette.responses import Response

from duo_orm import DuoOrmError
from duo_orm.web.errors import PROBLEM_CONTENT_TYPE, ErrorStyle, describe_handled, error_body


def install_error_handlers(app: FastAPI, *, error_style: ErrorStyle = "native") -> None:
    """ValidationError 422, not found 404, bad query 400, conflicts 409, database
    unavailable 503 (with ``Retry-After``), the rest 500."""

    async def handle(request: Request, exc: Exception) -> Response:
        info = describe_handled(exc)
        body, content_type = error_body(info, error_style)
        return JSONResponse(
            body, status_code=info.status, media_type=content_type, headers=info.headers
        )

    app.add_exception_handler(DuoOrmError, handle)
    app.add_exception_handler(SQLAlchemyError, handle)


_DESCRIPTIONS = {
    400: "Bad query (for example an unknown sort field)",
    404: "Not found",
    409: "Conflict (duplicate value, missing reference, or a concurrent change)",
    422: "Validation error",
    503: "Database unavailable; retry after the Retry-After header's seconds",
}


def error_responses(*statuses: int, error_style: ErrorStyle = "native") -> dict[int | str, Any]:
    """OpenAPI ``responses=`` entries for the errors the ORM maps (default 404, 409, 422)."""
    chosen = statuses or (404, 409, 422)
    content_type = PROBLEM_CONTENT_TYPE if error_style == "problem" else "application/json"
    responses: dict[int | str, Any] = {}
    for status in chosen:
        schema = _problem_schema() if error_style == "problem" else _detail_schema(status)
        responses[status] = {
            "description": _DESCRIPTIONS.get(status, "Error"),
            "content": {content_type: {"schema": schema}},
        }
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
        },
        "required": ["type", "title", "status", "detail"],
    }
