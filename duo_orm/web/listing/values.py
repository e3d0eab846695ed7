"""Query-string text turned into column values, by the column's Python type.

Used for filter values and for the keys inside a cursor, so both read text the
same way. A value that does not parse is the client's mistake: an
``InvalidQueryError`` (400) naming the parameter, never the database's error.
"""

from __future__ import annotations

import datetime as dt
import enum
import math
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from ..._shown import shown
from ...exceptions import ConfigurationError, InvalidQueryError

__all__ = ["BOOLEAN", "INTEGER", "FieldType", "field_type", "write"]

_INTEGER = re.compile(r"[+-]?\d{1,20}")
_TRUE = frozenset({"true", "1"})
_FALSE = frozenset({"false", "0"})


@dataclass(frozen=True)
class FieldType:
    """How one column's values are read from text, written to text, and documented."""

    name: str  # for messages: "an integer", "a date-time", ...
    parse: Callable[[str], Any]  # raises ValueError for text that is no such value
    schema: dict[str, Any]  # the OpenAPI schema of one value
    timezone: bool | None = None  # datetime columns: whether they hold an offset

    def read(self, parameter: str, text: str) -> Any:
        try:
            value = self.parse(text)
        except (ValueError, ArithmeticError, KeyError):
            raise InvalidQueryError(
                f"{shown(parameter, 40)} must be {self.name}, got {shown(text, 40)}"
            ) from None
        if isinstance(value, dt.datetime) and self.timezone is not None:
            value = _aligned(value, self.timezone)
        return value


def write(value: Any) -> str:
    """A column value as the text ``FieldType.parse`` reads back (for cursors)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, enum.Enum):
        return value.name
    if isinstance(value, (dt.date, dt.time)):
        return value.isoformat()
    return str(value)


def field_type(model: type, name: str) -> FieldType:
    """The ``FieldType`` of ``model``'s column ``name``; a type it cannot read is the code's
    mistake (``ConfigurationError``), caught when the listing is declared."""
    column = model.__mapper__.columns[name]  # type: ignore[attr-defined]
    column_type = column.type
    enum_class = getattr(column_type, "enum_class", None)
    if enum_class is not None:
        names = list(enum_class.__members__)
        return FieldType("one of " + ", ".join(names), enum_class.__getitem__, _enum(names))
    try:
        python_type = column_type.python_type
    except NotImplementedError:
        python_type = None
    if python_type is dt.datetime:
        aware = bool(getattr(column_type, "timezone", False))
        return FieldType("an ISO 8601 date-time", _datetime, _format("date-time"), aware)
    for kind, made in _TYPES.items():
        if python_type is not None and issubclass(python_type, kind):
            return made
    raise ConfigurationError(
        f"{model.__name__}.{name} has a column type ({column_type}) that cannot be "
        "filtered or sorted from a query string"
    )


def _bool(text: str) -> bool:
    lowered = text.lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ValueError(text)


def _int(text: str) -> int:
    if not _INTEGER.fullmatch(text):
        raise ValueError(text)
    return int(text)


def _float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(text)
    return value


def _decimal(text: str) -> Decimal:
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise ValueError(text) from None
    if not value.is_finite():
        raise ValueError(text)
    return value


def _datetime(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text)


def _aligned(value: dt.datetime, aware: bool) -> dt.datetime:
    """A naive value means UTC; an aware one is compared in UTC on a naive column."""
    if aware and value.tzinfo is None:
        return value.replace(tzinfo=dt.UTC)
    if not aware and value.tzinfo is not None:
        return value.astimezone(dt.UTC).replace(tzinfo=None)
    return value


def _format(name: str) -> dict[str, Any]:
    return {"type": "string", "format": name}


def _enum(names: list[str]) -> dict[str, Any]:
    return {"type": "string", "enum": names}


# bool before int: bool is an int subclass
_TYPES: dict[type, FieldType] = {
    bool: FieldType("true or false", _bool, {"type": "boolean"}),
    int: FieldType("an integer", _int, {"type": "integer"}),
    float: FieldType("a number", _float, {"type": "number"}),
    Decimal: FieldType("a number", _decimal, {"type": "number"}),
    str: FieldType("text", str, {"type": "string"}),
    dt.date: FieldType("an ISO 8601 date", dt.date.fromisoformat, _format("date")),
    dt.time: FieldType("an ISO 8601 time", dt.time.fromisoformat, _format("time")),
    uuid.UUID: FieldType("a UUID", uuid.UUID, _format("uuid")),
}

BOOLEAN = _TYPES[bool]
INTEGER = _TYPES[int]
