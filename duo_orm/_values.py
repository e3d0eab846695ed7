"""Values no column of a given type can hold, found before they reach the driver.

A driver refuses them with its own error, and each backend differently: PostgreSQL
answers ``integer out of range`` or ``text fields cannot contain NUL`` (and aborts
the surrounding transaction), sqlite3 raises a raw ``OverflowError``, every driver a
``UnicodeEncodeError`` for an unpaired surrogate, and SQLite happily stores a NUL.
Checking here gives every backend one behaviour:

- in a payload, a ``ValidationError`` naming the field (see ``columns.ColumnSpec``);
- in a primary-key lookup, a missing row (see ``model.Model.get``);
- in a filter, ``screen_condition`` below: an equality or ``IN`` with an impossible
  value matches nothing (exactly what the database would answer if it could compare),
  anything else (``<``, ``LIKE``, a function argument, ...) is an ``InvalidQueryError``,
  because there the value does not simply "match nothing" and guessing a meaning
  would hide a bug in the caller.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterable
from typing import Any, cast

from sqlalchemy import BigInteger, Integer, SmallInteger, String, false, true
from sqlalchemy.sql import operators, visitors
from sqlalchemy.sql.elements import BinaryExpression, BindParameter, ClauseElement

from .exceptions import InvalidQueryError

__all__ = [
    "bound_value_problem",
    "int_range",
    "ints_fit",
    "screen_condition",
    "text_problem",
    "texts_fit",
]

_BITS_BY_TYPE: tuple[tuple[type, int], ...] = ((SmallInteger, 16), (BigInteger, 64), (Integer, 32))
_SQLITE_RANGE = (-(2**63), 2**63 - 1)  # SQLite stores every INTEGER as 64-bit
_UNBOUNDED_DIALECTS = frozenset({"oracle"})  # NUMBER(38): wider than any check worth making


def int_range(column_type: Any, dialect: str) -> tuple[int, int] | None:
    """The smallest and largest integer a column of ``column_type`` holds on ``dialect``."""
    if not isinstance(column_type, Integer) or dialect in _UNBOUNDED_DIALECTS:
        return None
    if dialect == "sqlite":
        return _SQLITE_RANGE
    bits = next(bits for kind, bits in _BITS_BY_TYPE if isinstance(column_type, kind))
    if getattr(column_type, "unsigned", False):  # MySQL's INTEGER(unsigned=True)
        return 0, 2**bits - 1
    return -(2 ** (bits - 1)), 2 ** (bits - 1) - 1


def text_problem(value: str) -> str | None:
    """Why no text column can store ``value`` (``None`` when it can).

    PostgreSQL refuses NUL in text; SQLite would keep it, so it is refused
    everywhere for one behaviour. An unpaired surrogate is not Unicode at all: no
    driver can encode it.
    """
    if "\x00" in value:
        return "must not contain NUL (\\x00) characters"
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return "contains an unpaired surrogate (not valid Unicode)"
    return None


def texts_fit(values: Iterable[str]) -> bool:
    """Whether ``text_problem`` finds nothing in any of ``values``, in one pass in C."""
    joined = "".join(values)
    if "\x00" in joined:
        return False
    if joined.isascii():
        return True
    try:
        joined.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def ints_fit(values: Iterable[int], bounds: tuple[int, int]) -> bool:
    """Whether every one of ``values`` (ints) lies within ``bounds``.

    For the usual 16/32/64-bit bounds, filling a C array of that width checks the
    whole batch in one pass (it overflows on the first value that does not fit),
    about a third faster than ``min()`` plus ``max()``.
    """
    code = _ARRAY_CODES.get(bounds)
    if code is not None:
        try:
            array(code, values)
        except OverflowError:
            return False
        return True
    items = list(values)
    return not items or (min(items) >= bounds[0] and max(items) <= bounds[1])


def _array_codes() -> dict[tuple[int, int], str]:
    codes: dict[tuple[int, int], str] = {}
    for code in "hilqHILQ":
        bits = array(code).itemsize * 8
        signed = code.islower()
        low, high = (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) if signed else (0, 2**bits - 1)
        codes.setdefault((low, high), code)
    return codes


_ARRAY_CODES = _array_codes()


def impossible(value: Any, column_type: Any, dialect: str) -> str | None:
    """Why ``value`` can never be stored in a column of ``column_type`` (``None``: it can)."""
    kind = type(value)
    if kind is int:
        bounds = int_range(column_type, dialect)
        if bounds is not None and not bounds[0] <= value <= bounds[1]:
            return f"is out of range for {type(column_type).__name__} ({bounds[0]} to {bounds[1]})"
    elif kind is str and isinstance(column_type, String):
        return text_problem(value)
    return None


# -- filters -------------------------------------------------------------------

_EQUALITY = {operators.eq, operators.is_not_distinct_from}
_INEQUALITY = {operators.ne}
_MEMBERSHIP = {operators.in_op, operators.not_in_op}


def screen_condition(condition: Any, dialect: str) -> Any:
    """``condition`` with no impossible bound value left in it.

    Bind parameters carry the compared column's type, so ``User.id == 2**70`` is
    known to compare an Integer column with a value no Integer holds. Such a
    comparison is rewritten to what the database would answer if it could compare:
    ``==`` matches nothing, ``!=`` matches every non-NULL row, and ``IN`` /
    ``NOT IN`` drop the impossible members. Anywhere else the value raises
    ``InvalidQueryError`` (400 through the adapters). The common case, with
    nothing impossible, is one walk over the condition and returns it unchanged.
    """
    if not isinstance(condition, ClauseElement):
        return condition
    if not any(_bad_bind(node, dialect) for node in visitors.iterate(condition)):
        return condition

    def replace(element: Any, **_: Any) -> Any:
        return _replace(element, dialect)

    return visitors.replacement_traverse(cast(Any, condition), {}, replace)


def bound_value_problem(expression: ClauseElement, dialect: str) -> str | None:
    """Why a value bound in ``expression`` (``User.n + 2**70``) cannot be sent, if it cannot."""
    for node in visitors.iterate(expression):
        if isinstance(node, BindParameter) and _bad_bind(node, dialect):
            return _bind_problem(node, dialect)
    return None


def _bad_bind(node: Any, dialect: str) -> bool:
    if not isinstance(node, BindParameter):
        return False
    value = node.effective_value
    if isinstance(value, (list, tuple)):
        return any(impossible(item, node.type, dialect) for item in value)
    return impossible(value, node.type, dialect) is not None


def _replace(node: Any, dialect: str) -> Any:
    if isinstance(node, BinaryExpression):
        bind, other = _bind_side(node)
        if bind is None or not _bad_bind(bind, dialect):
            return None
        if node.operator in _EQUALITY:
            return false()
        if node.operator in _INEQUALITY:
            return other.is_not(None)
        if node.operator is operators.is_distinct_from:
            return true()
        if node.operator in _MEMBERSHIP and bind.expanding:
            values = bind.effective_value or ()
            kept = [v for v in values if not impossible(v, bind.type, dialect)]
            if not kept:
                return _empty_membership(node, other)
            return other.in_(kept) if node.operator is operators.in_op else other.not_in(kept)
        return None  # the bind itself is reached next, and refused
    if isinstance(node, BindParameter) and _bad_bind(node, dialect):
        reason = _bind_problem(node, dialect)
        raise InvalidQueryError(f"A filter value {reason}; it can only be compared with == or IN")
    return None


def _bind_problem(node: BindParameter[Any], dialect: str) -> str:
    value = node.effective_value
    values = value if isinstance(value, (list, tuple)) else [value]
    return next(r for v in values if (r := impossible(v, node.type, dialect)))


def _bind_side(node: BinaryExpression[Any]) -> tuple[BindParameter[Any] | None, Any]:
    if isinstance(node.right, BindParameter):
        return node.right, node.left
    if isinstance(node.left, BindParameter):
        return node.left, node.right
    return None, None


def _empty_membership(node: BinaryExpression[Any], column: Any) -> Any:
    """``IN`` of nothing possible matches nothing; ``NOT IN`` of it every non-NULL row."""
    return false() if node.operator is operators.in_op else column.is_not(None)
