"""``update_bulk`` and ``delete_bulk``: set-based, or row by row with the model's hooks.

Without hooks each is one UPDATE or DELETE statement (timestamps and column
checks still apply to the values given). With hooks rows are loaded in
primary-key batches, changed or deleted through the ORM so ``validate()``,
timestamps and cascades run per row, and flushed batch by batch. Either way the
whole operation runs in one transaction (a SAVEPOINT inside an enclosing
``db.transaction()``), so a failure leaves every row as it was.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from sqlalchemy import ColumnElement, Row, Select, delete, select, tuple_, update
from sqlalchemy.orm import Mapper, Session
from sqlalchemy.sql import ClauseElement

from . import dispatch
from .columns import column_specs
from .exceptions import InvalidQueryError
from .hooks import utc_now
from .payload import Payload, payload_values

Operation = Callable[[Session], int]


def update_operation(
    model: type,
    conditions: Sequence[ColumnElement[bool]],
    payload: Payload,
    fields: Mapping[str, Any],
    with_hooks: bool,
    batch_size: int,
) -> Operation:
    values = payload_values(model, payload, fields, partial=True)
    if not values:
        raise InvalidQueryError("update_bulk() needs at least one field to set")
    specs = column_specs(model)
    for key, value in values.items():
        specs[key].check(value, inserting=False)  # expressions pass; the database checks them

    if not with_hooks:

        def set_based(session: Session) -> int:
            stamped = dict(values)
            now = utc_now()
            for spec in specs.values():
                if "update" in spec.set_on and spec.key not in stamped:
                    stamped[spec.key] = now
            statement = update(model).where(*conditions).values(stamped)
            with all_or_nothing(session):
                result = session.execute(statement, execution_options=_sync_options(session))
            return int(result.rowcount)  # type: ignore[attr-defined]

        return set_based

    expressions: dict[str, Any] = {k: v for k, v in values.items() if isinstance(v, ClauseElement)}
    plain = [(k, v) for k, v in values.items() if k not in expressions]
    # SQL expressions (``User.n + 1``) are computed by the database in the batch's own
    # SELECT, so validate() sees real values, at no extra round trip
    computed = [
        expression.label(f"duo_value_{i}") for i, expression in enumerate(expressions.values())
    ]
    positions = [(key, i) for i, key in enumerate(expressions, start=1)]  # in each result row

    def hooked(session: Session) -> int:
        total = 0
        with all_or_nothing(session):
            for batch in _batches(session, model, conditions, batch_size, computed):
                for record in batch:
                    row = record[0]
                    for key, value in plain:
                        setattr(row, key, value)
                    for key, i in positions:
                        setattr(row, key, record[i])
                session.flush()  # timestamps, column checks and validate() run here
                total += len(batch)
        return total

    return hooked


def delete_operation(
    model: type, conditions: Sequence[ColumnElement[bool]], with_hooks: bool, batch_size: int
) -> Operation:
    if not with_hooks:

        def set_based(session: Session) -> int:
            statement = delete(model).where(*conditions)
            with all_or_nothing(session):
                result = session.execute(statement, execution_options=_sync_options(session))
            return int(result.rowcount)  # type: ignore[attr-defined]

        return set_based

    def hooked(session: Session) -> int:
        total = 0
        with all_or_nothing(session):
            for batch in _batches(session, model, conditions, batch_size):
                for (row,) in batch:
                    session.delete(row)
                session.flush()  # ORM events and relationship cascades run here
                total += len(batch)
        return total

    return hooked


@contextmanager
def all_or_nothing(session: Session) -> Iterator[None]:
    """A SAVEPOINT inside a transaction block; a one-call session rolls back by itself."""
    if dispatch.is_statement_session(session):
        yield
        return
    savepoint = session.begin_nested()
    try:
        yield
    except BaseException:
        if savepoint.is_active:
            savepoint.rollback()
        raise
    savepoint.commit()


def _sync_options(session: Session) -> dict[str, Any]:
    # A one-call session is thrown away: nothing in it to keep in step.
    if dispatch.is_statement_session(session):
        return {"synchronize_session": False}
    return {"synchronize_session": "auto"}


def _primary_key(model: type) -> list[Any]:
    mapper: Mapper[Any] = model.__mapper__  # type: ignore[attr-defined]
    return list(mapper.primary_key)


def _pk_of(model: type, row: Any) -> tuple[Any, ...]:
    mapper: Mapper[Any] = model.__mapper__  # type: ignore[attr-defined]
    return tuple(mapper.primary_key_from_instance(row))


def _batches(
    session: Session,
    model: type,
    conditions: Sequence[ColumnElement[bool]],
    size: int,
    extra: Sequence[ColumnElement[Any]] = (),
) -> Iterator[list[Row[Any]]]:
    """Matching rows, ``size`` at a time, walking the primary key (keyset pagination).

    Each row comes as ``(instance, *extra)``: the ``extra`` columns are selected
    alongside it, evaluated by the database for that row.
    """
    key = _primary_key(model)
    after: tuple[Any, ...] | None = None
    while True:
        statement: Select[Any] = select(model, *extra).where(*conditions).order_by(*key).limit(size)
        if after is not None:
            statement = statement.where(
                key[0] > after[0] if len(key) == 1 else tuple_(*key) > tuple_(*after)
            )
        rows = list(session.execute(statement))
        if not rows:
            return
        yield rows
        after = _pk_of(model, rows[-1][0])
