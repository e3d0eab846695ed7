"""A Core SELECT as the SQL string and parameters its driver takes, compiled once per shape.

``Connection.execute`` looks a statement up in the engine's compiled cache, then
builds an execution context and a result around the one statement. A lone read
that sends its statement itself (``lone_reads``) needs only the first part: the
statement's cache key (its shape, without the values), the SQL compiled for that
shape, and the values bound and processed as the dialect binds them. Shapes whose
SQL depends on the values (expanding IN lists, literal-rendered parameters) and
bind processors for tuples are left to ``Connection``: ``prepared`` gives ``None``.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import Any

from sqlalchemy import Dialect
from sqlalchemy.sql import Select
from sqlalchemy.sql.cache_key import CacheKey
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.util import LRUCache

from ._result_values import ResultProcessors

_CAPACITY = 500  # shapes per dialect, as many as SQLAlchemy's own cache keeps by default


class Shape:
    """One query shape compiled for one dialect."""

    __slots__ = ("compiled", "escaped", "order", "processors", "results", "sql")

    def __init__(
        self,
        compiled: SQLCompiler,
        processors: dict[str, Callable[[Any], Any]],
        results: ResultProcessors,
    ):
        self.compiled = compiled
        self.results = results  # what the driver's row values become
        self.sql = compiled.string
        self.processors = processors
        # positional paramstyles (qmark) take a list in this order; the others a dict
        self.order = tuple(compiled.positiontup or ()) if compiled.positional else None
        self.escaped = dict(compiled.escaped_bind_names)


_UNSUITABLE = object()  # a shape that Connection must send
_SHAPES: weakref.WeakKeyDictionary[Dialect, LRUCache[Any, Any]] = weakref.WeakKeyDictionary()


def prepared(statement: Select[Any], dialect: Dialect) -> tuple[Shape, Any] | None:
    """``statement``'s compiled shape and its parameters for the driver; ``None`` if
    ``Connection`` must send it."""
    cache_key = statement._generate_cache_key()
    if cache_key is None:  # a construct that cannot be cached
        return None
    shapes = _SHAPES.get(dialect)
    if shapes is None:
        shapes = _SHAPES[dialect] = LRUCache(_CAPACITY)
    shape = shapes.get(cache_key.key)
    if shape is None:
        shape = shapes[cache_key.key] = _shape_of(statement, cache_key, dialect)
    if shape is _UNSUITABLE:
        return None
    values = shape.compiled.construct_params(
        extracted_parameters=cache_key.bindparams, escape_names=False
    )
    for name, process in shape.processors.items():
        values[name] = process(values[name])
    if shape.order is not None:
        return shape, [values[name] for name in shape.order]
    escaped = shape.escaped
    return shape, values if not escaped else {escaped.get(k, k): v for k, v in values.items()}


def _shape_of(statement: Select[Any], cache_key: CacheKey, dialect: Dialect) -> Any:
    # compiled for the key, so that other statements of its shape bind their own values
    compiled = statement.compile(dialect=dialect, cache_key=cache_key)
    if not isinstance(compiled, SQLCompiler) or (
        compiled.literal_execute_params or compiled.post_compile_params
    ):
        return _UNSUITABLE
    processors = compiled._bind_processors
    if not all(callable(process) for process in processors.values()):
        return _UNSUITABLE  # a tuple's processors, one per element
    results = ResultProcessors(list(statement.selected_columns), dialect)
    return Shape(compiled, dict(processors), results)  # type: ignore[arg-type]
