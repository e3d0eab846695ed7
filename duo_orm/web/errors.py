"""Which HTTP status and message an exception becomes, for every adapter.

The mapping is the one DESIGN.md fixes: ValidationError 422, ObjectNotFoundError
404, InvalidQueryError 400, IntegrityError and TransactionConflictError 409,
DatabaseUnavailableError (DatabaseBusyError among them) 503 with ``Retry-After``,
anything else 500. Messages
shown to clients never contain SQL, driver text or tracebacks: 409s say what
kind of conflict happened and name the constraint, 503s say to retry, 500s say
nothing beyond the status. A client error's body never exceeds
``MAX_CLIENT_ERROR_BYTES``, whatever the client sent.

Logging, on the ``duo_orm.web`` logger (part of the ``duo_orm`` tree): a 5xx is
logged once at ERROR with its traceback, SQL parameters hidden; a handler's 4xx only
at DEBUG, so a hostile client cannot flood the log. (A COMMIT refused with a 409 is a
WARNING, logged by the unit of work: the handler thought it had succeeded.)
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Callable, MutableMapping
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any, Literal

from pydantic import ValidationError as PydanticValidationError
from sqlalchemy.exc import SQLAlchemyError, StatementError

from ..errors import translate
from ..exceptions import (
    DatabaseBusyError,
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


class InvalidBodyError(DuoOrmError):
    """A request body that cannot be decoded (malformed or too deeply nested JSON): 400."""


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
    if isinstance(exc, InvalidBodyError):
        return ErrorInfo(400, str(exc))
    if isinstance(exc, UnsupportedOperationError):
        return internal_error()  # a programming error on the server, not bad input
    if isinstance(exc, InvalidQueryError):
        return ErrorInfo(400, str(exc))
    if isinstance(exc, IntegrityError):
        return ErrorInfo(409, _CONFLICTS[exc.kind], constraint=exc.constraint)
    if isinstance(exc, DatabaseBusyError):  # also a conflict, but the answer is "later"
        return busy()
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
        log_server_error("Database unavailable or busy, answered 503", exc)
    elif info.status >= 500:
        log_server_error("Unhandled database error", exc)
    else:
        log_client_error(info, exc)
    return info


def log_server_error(message: str, exc: BaseException) -> None:
    """One ERROR record with the traceback; the SQL stays, its parameters (personal data) go."""
    hide_parameters(exc)
    logger.error(message, exc_info=exc)


def log_client_error(info: ErrorInfo, exc: BaseException | None = None) -> None:
    """A 4xx is the client's doing: DEBUG only, and bounded like the body."""
    if logger.isEnabledFor(logging.DEBUG):
        cause = type(exc).__name__ if exc is not None else "request"
        logger.debug("%d from %s: %r", info.status, cause, _clip(info.detail, _DETAIL_BYTES))


def log_client_gone(scope: MutableMapping[str, Any]) -> None:
    """A client that left mid-request is routine (a closed tab, a timeout): INFO, no traceback."""
    path = _clip(str(scope.get("path", "")), _NAME_BYTES * 2)  # quoted: a path can hold "\n"
    logger.info("Client disconnected during %s %r", scope.get("method", "HTTP"), path)


def hide_parameters(exc: BaseException) -> None:
    """Make every SQLAlchemy statement error in ``exc``'s chain print without its parameters.

    A traceback prints each chained exception's ``str()``, and a ``StatementError``'s
    includes the bound values unless ``hide_parameters`` is set (as
    ``create_engine(hide_parameters=True)`` would do for every error).
    """
    pending: list[BaseException] = [exc]
    seen: set[int] = set()
    while pending:
        current = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, StatementError):
            current.hide_parameters = True
        pending.extend(e for e in (current.__cause__, current.__context__) if e is not None)


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


def busy() -> ErrorInfo:
    """503: a lock or a pooled connection was waited for in vain; retrying later helps."""
    return ErrorInfo(
        503,
        "The database is busy right now; retry the request shortly.",
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


# A client error's body is at most this long, however long the input it echoes.
MAX_CLIENT_ERROR_BYTES = 4096
_DETAIL_BYTES = 512
_NAME_BYTES = 64
_ITEM_BYTES = 160
_MAX_ITEMS = 3
_MAX_LOC_PARTS = 4


def error_body(
    info: ErrorInfo, style: ErrorStyle, native: BodyShape = detail_body
) -> tuple[dict[str, Any], str]:
    """The body and content type of an error response in the chosen style.

    The backstop for every client error: one longer than ``MAX_CLIENT_ERROR_BYTES``
    (a 60 KB value quoted in a message, thousands of pydantic errors) is cut short.
    """
    if _too_many_characters(info):  # clearly too long: cut without encoding it all first
        info = _shortened(info)
    body, content_type = _shaped(info, style, native)
    if len(encode(body)) > MAX_CLIENT_ERROR_BYTES:
        body, content_type = _shaped(_shortened(info), style, native)
        if len(encode(body)) > MAX_CLIENT_ERROR_BYTES:  # a custom shape that still grows
            body, content_type = _shaped(ErrorInfo(info.status, info.title), style, native)
    return body, content_type


def _shaped(info: ErrorInfo, style: ErrorStyle, native: BodyShape) -> tuple[dict[str, Any], str]:
    if style == "problem":
        return problem_body(info), PROBLEM_CONTENT_TYPE
    if style != "native":
        raise ValueError(f"error_style must be 'native' or 'problem', not {style!r}")
    return native(info), "application/json"


def _too_many_characters(info: ErrorInfo) -> bool:
    """More characters than the limit has bytes; stops counting as soon as it knows."""
    total = len(info.detail) + len(info.field or "") + len(info.constraint or "")
    for item in info.errors:
        if total > MAX_CLIENT_ERROR_BYTES:
            break
        total += sum(len(str(value)) for value in item.values())
    return total > MAX_CLIENT_ERROR_BYTES


def _shortened(info: ErrorInfo) -> ErrorInfo:
    """``info`` with every client-supplied text clipped and at most a few error items."""
    return dataclasses.replace(
        info,
        detail=_clip(info.detail, _DETAIL_BYTES),
        field=None if info.field is None else _clip(info.field, _NAME_BYTES),
        constraint=None if info.constraint is None else _clip(info.constraint, _NAME_BYTES),
        errors=[_shortened_item(item) for item in info.errors[:_MAX_ITEMS]],
    )


def _shortened_item(item: dict[str, Any]) -> dict[str, Any]:
    location = [
        part if isinstance(part, int) else _clip(str(part), _NAME_BYTES // 2)
        for part in list(item.get("loc", ()))[:_MAX_LOC_PARTS]
    ]
    return {
        "type": _clip(str(item.get("type", "")), _NAME_BYTES),
        "loc": location,
        "msg": _clip(str(item.get("msg", "")), _ITEM_BYTES),
    }


def _clip(text: str, limit: int) -> str:
    """``text`` in at most ``limit`` bytes of JSON (escapes counted), marked when cut."""
    if len(text) * 12 <= limit:  # no character takes more than 12 bytes as JSON
        return text
    size = 0
    for index, char in enumerate(text):
        size += len(json.dumps(char)) - 2
        if size > limit - 3:
            return text[:index] + "..."
    return text


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
