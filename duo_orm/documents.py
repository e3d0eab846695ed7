"""``json()`` and ``array()``: conditions on JSON and ARRAY columns without dialect operators.

``json(Device.meta)["flags"]["beta"].is_true()`` reads like the document it
filters, and compiles to what each database understands (``#>>`` on PostgreSQL,
``JSON_EXTRACT`` on SQLite). What a database cannot answer (JSON containment and
key tests outside PostgreSQL; ARRAY columns, which only PostgreSQL has) raises
``UnsupportedOperationError`` when the condition is built, not a driver error
when it runs.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ARRAY, JSON, ColumnElement, Integer, cast, false, func, literal, true
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import InstrumentedAttribute

from ._shown import shown
from .exceptions import InvalidQueryError, UnsupportedOperationError


@dataclass(frozen=True, eq=False)
class JsonPath:
    """A place inside a JSON column; build it with :func:`json` and ``[key]``."""

    column: InstrumentedAttribute[Any]
    keys: tuple[str | int, ...]
    dialect: str

    def __getitem__(self, key: str | int) -> JsonPath:
        if isinstance(key, bool) or not isinstance(key, (str, int)):
            raise InvalidQueryError(f"JSON keys are strings or list positions, not {shown(key)}")
        return JsonPath(self.column, (*self.keys, key), self.dialect)

    # -- typed values ----------------------------------------------------------

    def as_text(self) -> ColumnElement[str]:
        result: ColumnElement[str] = self._element("as_text").as_string()
        return result

    def as_integer(self) -> ColumnElement[int]:
        result: ColumnElement[int] = self._element("as_integer").as_integer()
        return result

    def as_float(self) -> ColumnElement[float]:
        result: ColumnElement[float] = self._element("as_float").as_float()
        return result

    def as_boolean(self) -> ColumnElement[bool]:
        result: ColumnElement[bool] = self._element("as_boolean").as_boolean()
        return result

    # -- conditions ------------------------------------------------------------

    def equals(self, value: Any) -> ColumnElement[bool]:
        """The value here equals ``value``, compared as its Python type (1 as a number)."""
        if value is None:
            return self.is_null()
        same: ColumnElement[bool] = (
            self._document() == _jsonb(value)
            if isinstance(value, (dict, list))
            else self._typed(value) == value
        )
        return same

    def not_equals(self, value: Any) -> ColumnElement[bool]:
        if value is None:
            return self.is_not_null()
        different: ColumnElement[bool] = (
            self._document() != _jsonb(value)
            if isinstance(value, (dict, list))
            else self._typed(value) != value
        )
        return different

    def __eq__(self, value: object) -> ColumnElement[bool]:  # type: ignore[override]
        return self.equals(value)

    def __ne__(self, value: object) -> ColumnElement[bool]:  # type: ignore[override]
        return self.not_equals(value)

    __hash__ = None  # type: ignore[assignment]

    def is_null(self) -> ColumnElement[bool]:
        """The key is missing or holds JSON ``null`` (the column is NULL, without keys)."""
        if not self.keys:
            return self.column.is_(None)
        return self.as_text().is_(None)

    def is_not_null(self) -> ColumnElement[bool]:
        if not self.keys:
            return self.column.is_not(None)
        return self.as_text().is_not(None)

    def is_true(self) -> ColumnElement[bool]:
        return self.as_boolean().is_(true())

    def is_false(self) -> ColumnElement[bool]:
        return self.as_boolean().is_(false())

    def contains(self, fragment: Any) -> ColumnElement[bool]:
        """The document here contains ``fragment`` (PostgreSQL's ``@>``)."""
        contained: ColumnElement[bool] = self._document("contains()").contains(_jsonb(fragment))
        return contained

    def has_key(self, key: str) -> ColumnElement[bool]:
        """The object here has the top-level key ``key`` (PostgreSQL's ``?``)."""
        if not isinstance(key, str):
            raise InvalidQueryError(f"has_key() takes a string, not {shown(key)}")
        present: ColumnElement[bool] = self._document("has_key()").has_key(key)
        return present

    # -- SQL -------------------------------------------------------------------

    def _element(self, method: str) -> Any:
        if not self.keys:
            raise InvalidQueryError(
                f"json(...).{method}() needs a key first, such as json(col)['count'].{method}()"
            )
        return self.column[self.keys[0] if len(self.keys) == 1 else self.keys]

    def _typed(self, value: Any) -> ColumnElement[Any]:
        if isinstance(value, bool):
            return self.as_boolean()
        if isinstance(value, int):
            return self.as_integer()
        if isinstance(value, float):
            return self.as_float()
        if isinstance(value, str):
            return self.as_text()
        raise InvalidQueryError(
            f"a JSON value compares with None, bool, int, float, str, dict or list, "
            f"not {type(value).__name__}"
        )

    def _document(self, what: str = "comparing with a dict or list") -> Any:
        if self.dialect != "postgresql":
            raise UnsupportedOperationError(
                f"json(...): {what} needs PostgreSQL's jsonb operators; {self.dialect} has "
                "none. Compare single values (json(col)['key'] == 'value') instead."
            )
        document = self.column[self.keys] if self.keys else self.column
        return cast(document, JSONB)


def json(column: Any) -> JsonPath:
    """Conditions on a JSON column: ``json(Device.meta)["status"] == "active"``."""
    return JsonPath(_column(column, JSON, "json"), (), _dialect(column))


@dataclass(frozen=True, eq=False)
class ArrayColumn:
    """Conditions on an ARRAY column; build it with :func:`array`."""

    column: InstrumentedAttribute[Any]

    def includes(self, value: Any) -> ColumnElement[bool]:
        return self.column.contains([value])

    def includes_all(self, values: Collection[Any]) -> ColumnElement[bool]:
        return self.column.contains(_values(values, "includes_all"))

    def includes_any(self, values: Collection[Any]) -> ColumnElement[bool]:
        result: ColumnElement[bool] = self.column.overlap(_values(values, "includes_any"))
        return result

    def equals(self, values: Collection[Any]) -> ColumnElement[bool]:
        return self.column == _values(values, "equals")

    def not_equals(self, values: Collection[Any]) -> ColumnElement[bool]:
        return self.column != _values(values, "not_equals")

    def length(self) -> ColumnElement[int]:
        """How many elements the array has (0 for an empty array)."""
        return func.cardinality(self.column, type_=Integer)


def array(column: Any) -> ArrayColumn:
    """Conditions on an ARRAY column (PostgreSQL): ``array(Article.tags).includes("orm")``."""
    checked = _column(column, ARRAY, "array")
    dialect = _dialect(column)
    if dialect != "postgresql":
        raise UnsupportedOperationError(
            f"array(): ARRAY columns exist only on PostgreSQL, and this database is {dialect}"
        )
    return ArrayColumn(checked)


def _column(column: Any, kind: type, name: str) -> InstrumentedAttribute[Any]:
    if not isinstance(column, InstrumentedAttribute) or not isinstance(
        getattr(column, "type", None), kind
    ):
        raise InvalidQueryError(
            f"{name}() takes a model's {kind.__name__} column, such as Model.field, "
            f"not {shown(column, 60)}"
        )
    return column


def _dialect(column: InstrumentedAttribute[Any]) -> str:
    dialect: str = column.class_.__duo_database__.dialect
    return dialect


def _values(values: Any, method: str) -> list[Any]:
    if isinstance(values, (str, bytes)) or not isinstance(values, Collection):
        raise InvalidQueryError(
            f"{method}() takes a list of values, not {shown(values, 60)}; "
            "use includes() for one value"
        )
    return list(values)


def _jsonb(value: Any) -> ColumnElement[Any]:
    return cast(literal(value, JSONB), JSONB)
