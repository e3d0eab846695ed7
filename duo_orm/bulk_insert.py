"""``create_bulk`` without hooks: the rows as Core executemany INSERTs.

The ORM's bulk INSERT (``session.execute(insert(Model), rows)``) ends in the same
executemany, after a pass over every row that turns attribute names into column
keys, leaves out a ``None`` where the column's default should apply, and groups the
rows by the columns they give. For a model mapped column by column to one table
this module makes that pass itself, in one step per column where the rows allow it,
and hands the batches to the session's connection as a Core INSERT of the table:
the same statements, the same values, without the per-row bookkeeping.

The ORM's bulk INSERT stays for what only it does: a version counter's first
value, inheritance and polymorphic identities (``lone_reads.plain_columns`` refuses
those), and sessions with ``do_orm_execute`` listeners, which are written for the
ORM statement they would otherwise not see.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from itertools import groupby
from typing import Any

from sqlalchemy import Insert, Table, insert
from sqlalchemy.orm import Session, class_mapper

from .lone_reads import plain_columns

_TARGET = "__duo_bulk_insert__"  # model attribute: _Target | None


def insert_rows(
    session: Session,
    model: type[Any],
    rows: list[dict[str, Any]],
    columns: dict[str, list[Any]] | None,
    batch_size: int,
) -> None:
    """INSERT ``rows`` (attribute name to value, checked already) in batches of
    ``batch_size``. ``columns``: the same values by attribute when every row has the
    same keys (``payload.bulk_rows``), else ``None``."""
    target = _target(model)
    if target is None or session.dispatch.do_orm_execute:
        for batch in chunks(rows, batch_size):
            session.execute(insert(model), batch)
        return
    for group in target.groups(rows, columns):
        for batch in chunks(group, batch_size):
            session.execute(target.statement, batch)


def chunks(items: Sequence[Any], size: int) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class _Target:
    """One model's table, and how its rows become the table's parameters."""

    def __init__(self, statement: Insert, renamed: dict[str, str], drops_none: frozenset[str]):
        self.statement = statement
        self._renamed = renamed  # attribute -> column key, where they differ
        # where a None is left out, so the column's default applies (as the ORM does);
        # a type that stores None as a value of its own (JSON's null) keeps it
        self._drops_none = drops_none

    def groups(
        self, rows: list[dict[str, Any]], columns: dict[str, list[Any]] | None
    ) -> Iterable[list[dict[str, Any]]]:
        """``rows`` as parameter sets, in order, in runs that give the same columns
        (an executemany's statement names the columns of its first set)."""
        if (
            columns is not None
            and not self._renamed
            and not any(None in columns[key] for key in self._drops_none.intersection(columns))
        ):
            return [rows]  # already what the table takes: no pass over the rows
        renamed, drops_none = self._renamed, self._drops_none
        parameters = [
            {
                renamed.get(key, key): value
                for key, value in row.items()
                if value is not None or key not in drops_none
            }
            for row in rows
        ]
        return (list(run) for _, run in groupby(parameters, key=lambda p: p.keys()))


def _target(model: type[Any]) -> _Target | None:
    if _TARGET not in model.__dict__:
        setattr(model, _TARGET, _target_of(model))
    found: _Target | None = model.__dict__[_TARGET]
    return found


def _target_of(model: type[Any]) -> _Target | None:
    columns = plain_columns(model)
    mapper = class_mapper(model)
    table = mapper.local_table
    if columns is None or mapper.version_id_col is not None or not isinstance(table, Table):
        return None
    return _Target(
        insert(table),
        {key: column.key for key, column in columns if key != column.key},
        frozenset(key for key, column in columns if not column.type.should_evaluate_none),
    )
