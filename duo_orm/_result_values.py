"""DBAPI row values as SQLAlchemy's result processing would turn them into Python values.

The lone paths (``lone_reads``, ``lone_writes``, ``_compiled_reads``) take rows
straight from the driver; these are the type conversions ``Connection``'s result
would still have made (SQLite's Decimal and datetime strings, enum names, JSON).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import ColumnElement, Dialect

Processor = Callable[[Any], Any] | None


class ResultProcessors:
    """Turns DBAPI rows of ``columns`` into Python values as the dialect's result
    processors would (they depend on the type codes the driver reports)."""

    __slots__ = ("_by_codes", "_columns", "_dialect")

    def __init__(self, columns: Sequence[ColumnElement[Any]], dialect: Dialect) -> None:
        self._columns, self._dialect = tuple(columns), dialect
        self._by_codes: dict[tuple[Any, ...], tuple[Processor, ...]] = {}

    def values(self, row: Sequence[Any], description: Any) -> list[Any]:
        processors = self._for(description)
        return [
            value if processor is None else processor(value)
            for value, processor in zip(row, processors, strict=True)
        ]

    def rows(self, rows: Sequence[Sequence[Any]], description: Any) -> Sequence[Sequence[Any]]:
        """``values`` of each row, the processors looked up once for all of them."""
        processors = self._for(description)
        converted = [(i, p) for i, p in enumerate(processors) if p is not None]
        if not converted:
            return rows  # the driver's values are already the Python values
        result = []
        for row in rows:
            values = list(row)
            for i, process in converted:
                values[i] = process(values[i])
            result.append(values)
        return result

    def _for(self, description: Any) -> tuple[Processor, ...]:
        codes = tuple(entry[1] for entry in description)
        processors = self._by_codes.get(codes)
        if processors is None:
            processors = self._by_codes[codes] = self._processors(codes)
        return processors

    def _processors(self, codes: tuple[Any, ...]) -> tuple[Processor, ...]:
        dialect = self._dialect
        return tuple(
            column.type.dialect_impl(dialect).result_processor(dialect, code)
            for column, code in zip(self._columns, codes, strict=True)
        )
