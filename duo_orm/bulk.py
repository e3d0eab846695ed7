"""``update_bulk`` and ``delete_bulk``: set-based, or row by row with the model's hooks.

Without hooks each is one UPDATE or DELETE statement (timestamps and column
checks still apply to the values given). With hooks rows are loaded in
primary-key batches, changed or deleted through the ORM so ``validate()``,
timestamps and cascades run per row, and flushed batch by batch. Either way the
whole operation runs in one transaction (a SAVEPOINT inside an enclosing
``db.transaction()``), so a failure leaves every row as it was; unless
``per_batch_transaction=True`` asks for each batch of a hooked walk to commit
on its own (shorter locks; a failure keeps the batches before it).

Primary-key columns can be set only without hooks: the row-by-row walk pages
through the primary key, so rows whose key it changed would be skipped or
visited again. The one UPDATE statement has no such problem; inside a
transaction, the session's loaded instances of moved rows are re-keyed after
it, which SQLAlchemy's own session synchronisation does not do.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    ColumnElement,
    Row,
    Select,
    delete,
    inspect,
    literal,
    select,
    tuple_,
    update,
)
from sqlalchemy.orm import Mapper, Session, make_transient, make_transient_to_detached
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.sql import ClauseElement

from . import dispatch
from ._pending import pending
from .columns import column_specs
from .exceptions import InvalidQueryError, UnsupportedOperationError
from .hooks import utc_now
from .payload import Payload, payload_values

if TYPE_CHECKING:
    from .database import Database

Operation = Callable[[Session], int]
StepResult = tuple[int, tuple[Any, ...] | None]  # rows done, the last one's key (None: no more)


def update_operation(
    model: type,
    conditions: Sequence[ColumnElement[bool]],
    payload: Payload,
    fields: Mapping[str, Any],
    with_hooks: bool,
    batch_size: int,
    per_batch: bool = False,
) -> Operation | Steps:
    values = payload_values(model, payload, fields, partial=True)
    if not values:
        raise InvalidQueryError("update_bulk() needs at least one field to set")
    keys = _primary_key_names(model)
    moved = [key for key in values if key in keys]
    if moved and with_hooks:
        raise InvalidQueryError(
            f"update_bulk(with_hooks=True) cannot set {moved[0]}: it is part of "
            f"{model.__name__}'s primary key, which the row-by-row walk pages through, so "
            f"changed rows would be skipped or visited twice. Use with_hooks=False (one "
            f"UPDATE statement), or update the instances one by one."
        )
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
            if moved and not dispatch.is_statement_session(session):
                return _update_moving_keys(session, model, conditions, stamped, statement)
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

    def change(session: Session, batch: list[Row[Any]]) -> None:
        for record in batch:
            row = record[0]
            for key, value in plain:
                setattr(row, key, value)
            for key, i in positions:
                setattr(row, key, record[i])
        session.flush()  # timestamps, column checks and validate() run here

    return _walk(model, conditions, batch_size, change, per_batch, computed)


def delete_operation(
    model: type,
    conditions: Sequence[ColumnElement[bool]],
    with_hooks: bool,
    batch_size: int,
    per_batch: bool = False,
) -> Operation | Steps:
    if not with_hooks:

        def set_based(session: Session) -> int:
            statement = delete(model).where(*conditions)
            with all_or_nothing(session):
                result = session.execute(statement, execution_options=_sync_options(session))
            return int(result.rowcount)  # type: ignore[attr-defined]

        return set_based

    def remove(session: Session, batch: list[Row[Any]]) -> None:
        for (row,) in batch:
            session.delete(row)
        session.flush()  # ORM events and relationship cascades run here

    return _walk(model, conditions, batch_size, remove, per_batch)


@dataclass(frozen=True)
class Steps:
    """A hooked walk run as one transaction per batch: ``step`` does the batch after a key."""

    step: Callable[[Session, tuple[Any, ...] | None], StepResult]


def run(db: Database, work: Operation | Steps) -> Any:
    """Run a bulk operation: the count in sync code, an awaitable of it in async code."""
    if not isinstance(work, Steps):
        return dispatch.run(db, work)
    if dispatch.in_operation():
        raise UnsupportedOperationError(
            "per_batch_transaction=True cannot run inside a model hook: its batches "
            "would join the hook's transaction instead of committing on their own"
        )

    def batch_after(after: tuple[Any, ...] | None) -> Callable[[Session], StepResult]:
        return lambda session: work.step(session, after)

    if dispatch.event_loop_running():

        async def walk() -> int:
            total, after = 0, None
            while True:
                done: int
                done, after = await dispatch.run(db, batch_after(after))
                total += done
                if after is None:
                    return total

        return pending(walk(), None)
    total, after = 0, None
    while True:
        done, after = dispatch.run(db, batch_after(after))
        total += done
        if after is None:
            return total


def _walk(
    model: type,
    conditions: Sequence[ColumnElement[bool]],
    size: int,
    handle: Callable[[Session, list[Row[Any]]], None],
    per_batch: bool,
    extra: Sequence[ColumnElement[Any]] = (),
) -> Operation | Steps:
    """Matching rows handed to ``handle`` a batch at a time: all or nothing, or batch by batch."""
    if per_batch:

        def step(session: Session, after: tuple[Any, ...] | None) -> StepResult:
            if not dispatch.is_statement_session(session):
                raise UnsupportedOperationError(
                    "per_batch_transaction=True cannot commit batches inside a transaction "
                    "(db.transaction() or a request's unit of work); leave it out there, "
                    "and the operation is all or nothing with the transaction"
                )
            batch = _batch(session, model, conditions, size, after, extra)
            if not batch:
                return 0, None
            handle(session, batch)
            # a short batch was the last one: no empty transaction to find that out
            last = _pk_of(model, batch[-1][0]) if len(batch) == size else None
            return len(batch), last

        return Steps(step)

    def whole(session: Session) -> int:
        total = 0
        with all_or_nothing(session):
            for batch in _batches(session, model, conditions, size, extra):
                handle(session, batch)
                total += len(batch)
        return total

    return whole


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


def _update_moving_keys(
    session: Session,
    model: type,
    conditions: Sequence[ColumnElement[bool]],
    values: Mapping[str, Any],
    statement: Any,
) -> int:
    """The UPDATE, then the session's loaded instances of the rows it moved, re-keyed.

    SQLAlchemy's synchronisation leaves such instances in the identity map under
    their old key: ``get(old)`` would return a row that is gone, ``get(new)`` a
    second copy. So the values the UPDATE will write to the loaded rows it
    matches are read first (the database evaluates the same expressions, on the
    same rows), and afterwards each instance is put under its new key with those
    values as loaded state: no attribute left to reload, which async code could
    not do implicitly.
    """
    mapper: Mapper[Any] = model.__mapper__  # type: ignore[attr-defined]
    key = list(mapper.primary_key)
    new_values = [
        value
        if isinstance(value, ClauseElement)
        else literal(value, mapper.column_attrs[name].columns[0].type)
        for name, value in values.items()
    ]
    moves: list[tuple[Any, Row[Any]]] = []
    with all_or_nothing(session):
        session.flush()  # so identity keys are the rows' keys before the UPDATE
        loaded = {
            tuple(identity): obj
            for obj in session.identity_map.values()
            if isinstance(obj, model) and (identity := inspect(obj).identity) is not None
        }
        old_keys = list(loaded)
        for start in range(0, len(old_keys), 500):  # bound parameters per statement
            chunk = old_keys[start : start + 500]
            among = key[0].in_([k[0] for k in chunk]) if len(key) == 1 else tuple_(*key).in_(chunk)
            query = select(*key, *new_values).where(*conditions, among)
            moves.extend((loaded[tuple(row[: len(key)])], row) for row in session.execute(query))
        result = session.execute(statement, execution_options={"synchronize_session": False})
    for obj, _ in moves:  # all out first, so no new key meets an old one still in the map
        make_transient(obj)
    for obj, row in moves:
        for name, value in zip(values, row[len(key) :], strict=True):
            set_committed_value(obj, name, value)
        make_transient_to_detached(obj)  # its identity is now its new primary key
        session.add(obj)
    return int(result.rowcount)  # type: ignore[attr-defined]


def _primary_key_names(model: type) -> list[str]:
    mapper: Mapper[Any] = model.__mapper__  # type: ignore[attr-defined]
    return [mapper.get_property_by_column(column).key for column in mapper.primary_key]


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
    after: tuple[Any, ...] | None = None
    while rows := _batch(session, model, conditions, size, after, extra):
        yield rows
        after = _pk_of(model, rows[-1][0])


def _batch(
    session: Session,
    model: type,
    conditions: Sequence[ColumnElement[bool]],
    size: int,
    after: tuple[Any, ...] | None,
    extra: Sequence[ColumnElement[Any]] = (),
) -> list[Row[Any]]:
    """The first ``size`` matching rows whose primary key comes after ``after``."""
    key = _primary_key(model)
    statement: Select[Any] = select(model, *extra).where(*conditions).order_by(*key).limit(size)
    if after is not None:
        statement = statement.where(
            key[0] > after[0] if len(key) == 1 else tuple_(*key) > tuple_(*after)
        )
    return list(session.execute(statement))
