"""The filter operators a listing can allow, and the condition each one builds.

Text matching ignores case and escapes ``%`` and ``_`` (``autoescape``): a client's
wildcard is a literal character, so no client writes its own ``LIKE`` pattern (a
leading ``%`` on a big table is a slow query on demand). Only case-insensitive
matching is offered because it is the one every database answers the same way:
SQLite's ``LIKE`` ignores ASCII case, PostgreSQL's does not.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import ColumnElement

__all__ = ["MAX_IN_VALUES", "OPERATORS", "TEXT_OPERATORS", "condition"]

MAX_IN_VALUES = 100  # a longer IN list is refused: it would only grow the statement

_BUILD: dict[str, Callable[[Any, Any], ColumnElement[bool]]] = {
    "eq": lambda column, value: column == value,
    "ne": lambda column, value: column != value,
    "lt": lambda column, value: column < value,
    "le": lambda column, value: column <= value,
    "gt": lambda column, value: column > value,
    "ge": lambda column, value: column >= value,
    "in": lambda column, values: column.in_(values),
    "icontains": lambda column, value: column.icontains(value, autoescape=True),
    "istartswith": lambda column, value: column.istartswith(value, autoescape=True),
    "is_null": lambda column, value: column.is_(None) if value else column.is_not(None),
}

OPERATORS: tuple[str, ...] = tuple(_BUILD)
TEXT_OPERATORS = frozenset({"icontains", "istartswith"})

# what each operator's value is, for the OpenAPI description
DESCRIPTIONS = {
    "eq": "equal to",
    "ne": "not equal to",
    "lt": "less than",
    "le": "less than or equal to",
    "gt": "greater than",
    "ge": "greater than or equal to",
    "in": f"one of these comma-separated values (at most {MAX_IN_VALUES})",
    "icontains": "contains this text, ignoring case",
    "istartswith": "starts with this text, ignoring case",
    "is_null": "true: has no value; false: has a value",
}


def condition(operator: str, column: Any, value: Any) -> ColumnElement[bool]:
    return _BUILD[operator](column, value)
