"""What each mapped column accepts, worked out once per model and checked in Python.

SQLite stores almost anything in any column; PostgreSQL refuses wrong types
with a driver error. Checking here gives both databases the same behaviour: a
``ValidationError`` naming the field, before anything reaches the database.
"""

from __future__ import annotations

import datetime as dt
import decimal
import enum
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import JSON, TypeDecorator, inspect
from sqlalchemy.orm import Mapper
from sqlalchemy.sql.elements import ClauseElement

from ._values import bound_value_problem, int_range, ints_fit, text_problem, texts_fit
from .exceptions import ConfigurationError, ValidationError

SET_ON_EVENTS = frozenset({"create", "update"})

# python_type -> the value types a column of that type accepts
_ACCEPTED: dict[type, tuple[type, ...]] = {
    int: (int,),
    float: (int, float, decimal.Decimal),
    decimal.Decimal: (int, float, decimal.Decimal),
    str: (str,),
    bool: (bool,),
    dt.datetime: (dt.datetime,),
    dt.date: (dt.date,),
    dt.time: (dt.time,),
    dt.timedelta: (dt.timedelta,),
    bytes: (bytes, bytearray, memoryview),
    uuid.UUID: (uuid.UUID,),
    list: (list, tuple),
}


NO_DEFAULT: Any = object()
_NONE_TYPE = type(None)


@dataclass(frozen=True)
class ColumnSpec:
    key: str
    accepted: tuple[type, ...] | None  # None: any value (JSON, custom types, ...)
    enum_class: type[enum.Enum] | None
    max_length: int | None
    nullable: bool
    has_default: bool  # the database or SQLAlchemy fills it when no value is given
    is_foreign_key: bool  # may be filled from a relationship at flush time
    set_on: frozenset[str]
    # a plain Python value from mapped_column(default=...), filled in before the hooks run
    scalar_default: Any = NO_DEFAULT
    # the smallest and largest int the column holds on this database (None: no limit)
    int_bounds: tuple[int, int] | None = None
    dialect: str = ""  # of the model's database: what expressions' bound values must fit
    # the value types check() lets through with no closer look (None: any type), worked
    # out once so that accepts_all() judges a column of a bulk insert by its set of types
    _plain_types: frozenset[type] | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        plain: frozenset[type] | None = None
        if self.enum_class is not None:
            plain = frozenset({self.enum_class, str})
        elif self.accepted is not None:
            plain = frozenset(self.accepted)
        object.__setattr__(self, "_plain_types", plain)

    def _int_fits(self, value: int) -> bool:
        bounds = self.int_bounds
        return bounds is None or bounds[0] <= value <= bounds[1]

    @property
    def _holds_text(self) -> bool:
        return self.enum_class is not None or (self.accepted is not None and str in self.accepted)

    @property
    def required(self) -> bool:
        return not (self.nullable or self.has_default or self.is_foreign_key or self.set_on)

    def accepts_all(self, values: Sequence[Any], *, inserting: bool) -> bool:
        """Whether ``check`` passes every one of ``values``, from their set of types.

        One pass in C over the values instead of a method call per value; ``False``
        only means "look closer": run ``check`` on each value for the verdict.
        """
        kinds = set(map(type, values))
        has_none = _NONE_TYPE in kinds
        if has_none:
            if not (self.nullable or (inserting and self.has_default)):
                return False
            kinds.discard(_NONE_TYPE)
        plain = self._plain_types
        if plain is not None and not kinds <= plain:
            return False
        if str in kinds and plain is not None:
            texts: Sequence[Any]
            if len(kinds) > 1:
                texts = [v for v in values if type(v) is str]
            else:  # filter(None) drops None, and "" (which has nothing to check), in C
                texts = list(filter(None, values)) if has_none else values
            if not texts_fit(texts):
                return False
            if self.max_length is not None and self.enum_class is None and texts:
                return max(map(len, texts)) <= self.max_length
        if int in kinds and self.int_bounds is not None:
            if len(kinds) > 1:
                return ints_fit((v for v in values if type(v) is int), self.int_bounds)
            # filter(None) drops None, and 0 (always in range), in C
            return ints_fit(filter(None, values) if has_none else values, self.int_bounds)
        return True

    def check(self, value: Any, *, inserting: bool) -> None:
        kind = type(value)
        if (  # the common case first: a value of exactly an accepted type
            self.enum_class is None and self.accepted is not None and kind in self.accepted
        ):
            if kind is str:
                if (self.max_length is None or len(value) <= self.max_length) and (
                    "\x00" not in value and (value.isascii() or text_problem(value) is None)
                ):
                    return
            elif kind is not int or self._int_fits(value):
                return
        if value is None:
            if not self.nullable and not (inserting and self.has_default):
                raise ValidationError(f"{self.key} may not be null", field=self.key)
            return
        if isinstance(value, ClauseElement):  # the database computes it; its bound values
            problem = bound_value_problem(value, self.dialect)  # are checked all the same
            if problem is not None:
                raise ValidationError(
                    f"{self.key}: a value in this expression {problem}", field=self.key
                )
            return
        if isinstance(value, str) and self._holds_text:
            problem = text_problem(value)
            if problem is not None:
                raise ValidationError(f"{self.key}: {problem}", field=self.key)
        if self.enum_class is not None:
            if isinstance(value, (self.enum_class, str)):
                return
            raise ValidationError(
                f"{self.key}: expected {self.enum_class.__name__}, got {type(value).__name__}",
                field=self.key,
            )
        if self.accepted is None:
            return
        if not isinstance(value, self.accepted) or (
            isinstance(value, bool) and bool not in self.accepted
        ):
            expected = self.accepted[0].__name__ if self.accepted[0] is not int else "int"
            raise ValidationError(
                f"{self.key}: expected {expected}, got {type(value).__name__}", field=self.key
            )
        if self.max_length is not None and isinstance(value, str) and len(value) > self.max_length:
            raise ValidationError(
                f"{self.key}: at most {self.max_length} characters, got {len(value)}",
                field=self.key,
            )
        problem = self.unstorable(value)
        if problem is not None:
            raise ValidationError(f"{self.key}: {problem}", field=self.key)

    def unstorable(self, value: Any) -> str | None:
        """Why a value of an accepted type still cannot be stored here (``None``: it can).

        Out of the column's integer range on this database, or text no database
        stores (NUL, unpaired surrogate). A primary-key lookup treats such a key
        as a missing row rather than an error.
        """
        kind = type(value)
        if kind is int and self.int_bounds is not None:
            low, high = self.int_bounds
            if not low <= value <= high:
                return f"out of range ({low} to {high})"
        elif kind is str and self._holds_text:
            return text_problem(value)
        return None


def column_specs(model: type) -> dict[str, ColumnSpec]:
    """The specs of ``model``'s mapped columns, keyed by attribute name (cached)."""
    cached: dict[str, ColumnSpec] | None = model.__dict__.get("__duo_columns__")
    if cached is None:
        cached = _build_specs(model)
        setattr(model, "__duo_columns__", cached)  # noqa: B010 - not a declared attribute
    return cached


def stamped_keys(model: type, event: str) -> tuple[str, ...]:
    """The columns set to the current time on ``event`` ("create" or "update") (cached)."""
    cached: dict[str, tuple[str, ...]] | None = model.__dict__.get("__duo_stamped__")
    if cached is None:
        specs = column_specs(model).values()
        cached = {e: tuple(s.key for s in specs if e in s.set_on) for e in SET_ON_EVENTS}
        setattr(model, "__duo_stamped__", cached)  # noqa: B010 - not a declared attribute
    return cached[event]


def _build_specs(model: type) -> dict[str, ColumnSpec]:
    mapper: Mapper[Any] = inspect(model)
    database = getattr(model, "__duo_database__", None)
    dialect: str = getattr(database, "dialect", "")
    specs: dict[str, ColumnSpec] = {}
    for prop in mapper.column_attrs:
        column = prop.columns[0]
        table = getattr(column, "table", None)
        autoincrement = table is not None and getattr(table, "autoincrement_column", None) is column
        specs[prop.key] = ColumnSpec(
            key=prop.key,
            accepted=_accepted_types(column.type),
            enum_class=getattr(column.type, "enum_class", None),
            max_length=getattr(column.type, "length", None)
            if isinstance(getattr(column.type, "length", None), int)
            else None,
            nullable=bool(column.nullable),
            has_default=column.default is not None
            or column.server_default is not None
            or autoincrement
            or column.computed is not None
            or column.identity is not None
            or (column is mapper.version_id_col and mapper.version_id_generator is not False),
            is_foreign_key=bool(column.foreign_keys),
            set_on=stamp_events(model, prop.key, column.info),
            scalar_default=column.default.arg
            if column.default is not None and getattr(column.default, "is_scalar", False)
            else NO_DEFAULT,
            dialect=dialect,
            int_bounds=int_range(column.type, dialect)
            if _accepted_types(column.type) == (int,)
            else None,
        )
    return specs


def _accepted_types(column_type: Any) -> tuple[type, ...] | None:
    if isinstance(column_type, (JSON, TypeDecorator)):
        return None
    try:
        python_type = column_type.python_type
    except NotImplementedError:
        return None
    return _ACCEPTED.get(python_type)


# duo-orm 0.1's (and Django's) spellings of ``set_on``: ``auto_now_add`` stamps on
# INSERT, ``auto_now`` on INSERT and UPDATE. ``set_on`` is the preferred one.
_STAMP_FLAGS = {"auto_now_add": frozenset({"create"}), "auto_now": SET_ON_EVENTS}


def stamp_events(model: type, key: str, info: Mapping[str, Any]) -> frozenset[str]:
    """When a column is set to the current time, from its ``info``: "create", "update"."""
    events = _parse_set_on(model, key, info.get("set_on"))
    for flag, flagged in _STAMP_FLAGS.items():
        raw = info.get(flag)
        if raw is None:
            continue
        if not isinstance(raw, bool):
            raise ConfigurationError(
                f"{model.__name__}.{key}: info[{flag!r}] must be True or False, got {raw!r}"
            )
        if raw:
            events |= flagged
    return events


def _parse_set_on(model: type, key: str, raw: Any) -> frozenset[str]:
    if raw is None:
        return frozenset()
    events = frozenset([raw] if isinstance(raw, str) else raw)
    if not events or not events <= SET_ON_EVENTS:
        raise ConfigurationError(
            f"{model.__name__}.{key}: info['set_on'] must be 'create', 'update' or a set "
            f"of both, got {raw!r}"
        )
    return events
