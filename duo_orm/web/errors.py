"""Which HTTP status and message an exception becomes, for every adapter.

The mapping is the one DESIGN.md fixes: ValidationError 422, ObjectNotFoundError
404, InvalidQueryError 400, IntegrityError and TransactionConflictError 409,
DatabaseUnavailableError 503 with ``Retry-After``, anything else 500. Messages
shown to clients never contain SQL, driver text or tracebacks: 409s say what
kind of conflict happened and name the constraint, 503s say to retry, 500s say
nothing beyond the status.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any, Literal

from pydantic import ValidationError as PydanticValidationError
from sqlalchemy.exc import SQLAlchemyError

from ..errors import translate
from ..exceptions import (
    DatabaseUnavailableError,
    DuoOrmError,
    IntegrityError,
    InvalidQueryError,
    ObjectNotFoundError,
    TransactionConflictError,
    UnsupportedOperationError,
    ValidationError,
)

logger = logging.getLogger("duo_orm.web")

# Seconds a client should wait before retrying a 503: long enough for a pool to
# notice the server is back, short enough that a restart costs little.
RETRY_AFTER_SECONDS = 2

_CONFLICTS = {
    "unique": "A record with the same unique value already exists.",
    "foreign_key": "The record refers to a record that does not exist, or is still referred to.",
    "not_null": "A required value is missing.",
    "check": "A value breaks a rule of the database.",
    "other": "The change conflicts with the data already stored.",
}


@dataclass(frozen=True)
class ErrorInfo:
    """A client-safe description of an error: what every error body is built from."""

    status: int
    detail: str
    field: str | None = None
    constraint: str | None = None
    retryable: bool = False
    errors: list[dict[str, Any]] = dataclasses.field(default_factory=list)  # pydantic-style details
    retry_after: int | None = None  # seconds, sent as the Retry-After header

    @property
    def headers(self) -> dict[str, str]:
        """Headers every renderer sends with this error's body."""
        if self.retry_after is None:
            return {}
        return {"Retry-After": str(self.retry_after)}

    @property
    def title(self) -> str:
        return HTTPStatus(self.status).phrase


def classify(exc: BaseException) -> ErrorInfo | None:
    """The HTTP meaning of a database-layer error; ``None`` for anything else."""
    if isinstance(exc, SQLAlchemyError):
        exc = translate(exc)
    if not isinstance(exc, DuoOrmError):
        return None
    if isinstance(exc, ValidationError):
        detail = exc.detail if isinstance(exc.detail, list) else []
        return ErrorInfo(422, exc.message, field=exc.field, errors=detail)
    if isinstance(exc, ObjectNotFoundError):
        return ErrorInfo(404, str(exc))
    if isinstance(exc, UnsupportedOperationError):
        return internal_error()  # a programming error on the server, not bad input
    if isinstance(exc, InvalidQueryError):
        return ErrorInfo(400, str(exc))
    if isinstance(exc, IntegrityError):
        return ErrorInfo(409, _CONFLICTS[exc.kind], constraint=exc.constraint)
    if isinstance(exc, TransactionConflictError):
        return ErrorInfo(
            409, "The request conflicted with a concurrent change; retry it.", retryable=True
        )
    if isinstance(exc, DatabaseUnavailableError):
        return unavailable()
    return internal_error()


def describe_handled(exc: BaseException) -> ErrorInfo:
    """What an adapter's exception handler answers; a 500's real cause goes to the log only."""
    info = classify(exc) or internal_error()
    if info.status == 503:
        logger.error("Database unavailable, answered 503", exc_info=exc)
    elif info.status >= 500:
        logger.error("Unhandled database error", exc_info=exc)
    return info


def internal_error() -> ErrorInfo:
    return ErrorInfo(500, "Internal Server Error")


def unavailable() -> ErrorInfo:
    """503: the database cannot be reached right now; the same request may succeed later."""
    return ErrorInfo(
        503,
        "The database is unavailable right now; retry the request shortly.",
        retryable=True,
        retry_after=RETRY_AFTER_SECONDS,
    )


def problem_body(info: ErrorInfo) -> dict[str, Any]:
    """An RFC 9457 ``application/problem+json`` document."""
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": info.title,
        "status": info.status,
        "detail": info.detail,
    }
    if info.field is not None:
        body["field"] = info.field
    if info.constraint is not None:
        body["constraint"] = info.constraint
    if info.retryable:
        body["retryable"] = True
    if info.errors:
        body["errors"] = info.errors
    return body


PROBLEM_CONTENT_TYPE = "application/problem+json"

# "native": the framework's own error shape; "problem": RFC 9457 problem+json
ErrorStyle = Literal["native", "problem"]
BodyShape = Callable[[ErrorInfo], dict[str, Any]]


def detail_body(info: ErrorInfo) -> dict[str, Any]:
    """The ``{"detail": ...}`` body FastAPI and Starlette use for their own errors.

    A 422 lists its problems the way FastAPI reports request validation errors,
    so clients parse one shape whatever rejected the input.
    """
    if info.status == 422:
        location: list[str] = ["body", info.field] if info.field else ["body"]
        item = {"type": "value_error", "loc": location, "msg": info.detail}
        return {"detail": [item, *info.errors] if info.field or not info.errors else info.errors}
    return {"detail": info.detail}


def error_body(
    info: ErrorInfo, style: ErrorStyle, native: BodyShape = detail_body
) -> tuple[dict[str, Any], str]:
    """The body and content type of an error response in the chosen style."""
    if style == "problem":
        return problem_body(info), PROBLEM_CONTENT_TYPE
    if style != "native":
        raise ValueError(f"error_style must be 'native' or 'problem', not {style!r}")
    return native(info), "application/json"


def render(
    info: ErrorInfo, style: ErrorStyle, native: BodyShape = detail_body
) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    """A complete error response (status, headers, body) for the ASGI middleware to send."""
    body, content_type = error_body(info, style, native)
    payload = encode(body)
    headers = [
        (b"content-type", content_type.encode()),
        (b"content-length", str(len(payload)).encode()),
        *((name.lower().encode(), value.encode()) for name, value in info.headers.items()),
    ]
    return info.status, headers, payload


def request_body_error(exc: PydanticValidationError) -> ErrorInfo:
    """A request body that failed its pydantic schema: 422 listing pydantic's errors."""
    errors = [
        {"type": e["type"], "loc": ["body", *e["loc"]], "msg": e["msg"]}
        for e in exc.errors(include_url=False)
    ]
    return ErrorInfo(422, f"Invalid {exc.title}", errors=errors)


def encode(body: Any) -> bytes:
    return json.dumps(body, separators=(",", ":"), default=str).encode()
