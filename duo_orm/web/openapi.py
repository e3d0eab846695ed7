"""Which error responses an operation's OpenAPI entry lists: those it can produce, and only those.

The adapters cannot see what a handler does, so they go by what the operation
looks like (the rule in ``error_statuses``). A route that knows better says so:
``@documents_errors(404)`` on the handler replaces the rule for that route, and a
status the route documents itself (FastAPI ``responses=``, Litestar ``responses``)
keeps the route's own text. Framework-neutral: each adapter turns the statuses into
its framework's response objects.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

__all__ = [
    "DESCRIPTIONS",
    "ORM_STATUSES",
    "RETRY_AFTER",
    "documents_errors",
    "error_statuses",
]

F = TypeVar("F", bound=Callable[..., Any])

# every status the adapters answer for an ORM error, in the order they are listed
ORM_STATUSES = (400, 404, 409, 422, 503)

DESCRIPTIONS = {
    400: "Bad query: an unknown sort or filter field, a value of the wrong type, "
    "a page size over the limit, a bad cursor, or a malformed body",
    404: "Not found: no row has this key",
    409: "Conflict: a duplicate value, a missing reference, or a concurrent change",
    422: "Validation error: a field the model refused",
    503: "Database unavailable: retryable, after the number of seconds in Retry-After",
}

# the OpenAPI header object a 503 carries
RETRY_AFTER: dict[str, Any] = {
    "description": "Seconds to wait before retrying",
    "schema": {"type": "integer"},
}

_WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_TAKES_DATA = frozenset({"POST", "PUT", "PATCH"})
_ATTRIBUTE = "__duo_orm_errors__"


def error_statuses(
    method: str,
    *,
    path_parameters: bool,
    query_parameters: bool,
    request_body: bool = False,
    handler: Callable[..., Any] | None = None,
) -> tuple[int, ...]:
    """The ORM error statuses to document for one operation.

    - 400 when it takes query parameters (a bad sort, filter or cursor) or a
      request body (one that is not JSON);
    - 404 when its path has a parameter (a key naming a row);
    - 409 when it writes (POST, PUT, PATCH, DELETE): unique or foreign-key
      violation, concurrent change;
    - 422 when it takes data to store (POST, PUT, PATCH): a ``ValidationError``;
    - 503 always: any handler may find the database unavailable.

    ``handler``'s own ``@documents_errors(...)`` list replaces the rule.
    """
    declared: tuple[int, ...] | None = getattr(handler, _ATTRIBUTE, None)
    if declared is not None:
        return declared
    verb = method.upper()
    chosen = {503}
    if query_parameters or request_body:
        chosen.add(400)
    if path_parameters:
        chosen.add(404)
    if verb in _WRITES:
        chosen.add(409)
    if verb in _TAKES_DATA:
        chosen.add(422)
    return tuple(status for status in ORM_STATUSES if status in chosen)


def documents_errors(*statuses: int) -> Callable[[F], F]:
    """Document exactly these ORM error statuses for a handler, instead of the rule.

    E.g. a health check that reaches no database documents none::

        @app.get("/health")
        @documents_errors()
        async def health() -> dict[str, str]: ...

    Put it below the framework's route decorator, so that it marks the function.
    """
    unknown = sorted(set(statuses) - set(ORM_STATUSES))
    if unknown:
        raise ValueError(f"documents_errors() takes {ORM_STATUSES}, not {unknown}")
    chosen = tuple(status for status in ORM_STATUSES if status in statuses)

    def mark(handler: F) -> F:
        setattr(handler, _ATTRIBUTE, chosen)
        return handler

    return mark
