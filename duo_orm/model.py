"""The behaviour every ``db.Model`` subclass inherits: the model is its own query interface.

Each public method builds one operation (a function of a sync ``Session``) and
hands it to :mod:`duo_orm.dispatch`, so the same call returns a value in sync
code and an awaitable in async code.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from operator import itemgetter
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar, cast

from pydantic import BaseModel
from pydantic import ValidationError as PydanticValidationError
from sqlalchemy import insert, inspect, literal, select
from sqlalchemy.exc import InvalidRequestError
from sqlalchemy.orm import Mapper, Session
from sqlalchemy.orm.attributes import flag_dirty, set_committed_value

from . import dispatch, lone_reads, lone_writes
from ._shown import shown
from .bulk import all_or_nothing
from .bulk_insert import chunks, insert_rows
from .columns import ColumnSpec, column_specs, stamp_events, stamped_keys
from .exceptions import (
    InvalidQueryError,
    ObjectNotFoundError,
    UnsupportedOperationError,
    ValidationError,
)
from .hooks import utc_now
from .payload import (
    Payload,
    bulk_rows,
    check_guarded_declaration,
    check_known_fields,
    columns_of,
    payload_values,
)
from .query import JoinKind, Query

if TYPE_CHECKING:
    from .database import Database

M = TypeVar("M", bound="Model")
S = TypeVar("S", bound=BaseModel)


class Model:
    """Mixin behind ``db.Model``. Public calls return a value, or an awaitable in async code."""

    __duo_database__: ClassVar[Database]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        table = cls.__dict__.get("__table__")
        if table is not None:  # fail at class definition, not at the first write
            for column in table.columns:
                stamp_events(cls, column.key, column.info)
            check_guarded_declaration(cls)

    # -- hooks ------------------------------------------------------------

    def validate(self) -> None:
        """Override to refuse bad data: raise ``ValidationError(message, field=...)``.

        Runs before every INSERT and UPDATE of this instance.
        """

    # -- class-level calls --------------------------------------------------

    @classmethod
    def fields(cls) -> list[str]:
        """The mapped column attribute names."""
        return list(column_specs(cls))

    @classmethod
    def from_schema(cls: type[M], payload: Payload = None, /, **fields: Any) -> M:
        """A new, unsaved instance built from a payload."""
        return cls(**payload_values(cls, payload, fields, partial=False))

    @classmethod
    def create(cls: type[M], payload: Payload | M = None, /, **fields: Any) -> Any:
        """INSERT one row (after timestamps, column checks and ``validate()``); returns it.

        ``payload`` may also be a new instance of this model, which is inserted
        as it is (its attributes are the code's own, so nothing is guarded).
        """
        instance: M | None = None
        data: Payload = None
        if isinstance(payload, Model):
            instance = _new_instance(cls, payload)
            check_known_fields(cls, fields)
            for key, value in fields.items():
                setattr(instance, key, value)
        else:
            data = payload

        def op(session: Session) -> M:
            new = instance
            if new is None:
                new = cls(**payload_values(cls, data, fields, partial=False))
            _attach(session, new)
            _flush(session, new)
            return new

        if instance is not None:
            return dispatch.run(cls.__duo_database__, op)
        direct = lone_writes.Insert(
            cls, lambda: payload_values(cls, data, fields, partial=False), _created
        )
        return dispatch.run(cls.__duo_database__, op, "write", direct)

    @classmethod
    def create_bulk(
        cls: type[M],
        payloads: Iterable[Payload | M],
        *,
        return_models: bool = False,
        with_hooks: bool = False,
        batch_size: int = 200,
    ) -> Any:
        """INSERT many rows, all or nothing. Returns the count, or the instances.

        Without hooks the rows go in as executemany batches (timestamps are still
        set and column types checked); ``with_hooks=True`` builds instances so
        ``validate()`` runs for each row. New instances of the model may stand
        among the payloads: then every row goes in as with ``with_hooks=True``,
        and the given instances are the ones returned, with their keys.
        """
        if batch_size < 1:
            raise InvalidQueryError(f"batch_size must be at least 1, got {batch_size}")
        items = list(payloads)
        instances: list[M] | None = None
        rows: list[dict[str, Any]] = []
        columns: dict[str, list[Any]] | None = None
        if any(issubclass(kind, Model) for kind in set(map(type, items))):
            instances = [
                _new_instance(cls, item)
                if isinstance(item, Model)
                else cls(**payload_values(cls, item, {}, partial=False))
                for item in items
            ]
        else:
            rows, columns = bulk_rows(cls, cast("list[Payload]", items))

        def op(session: Session) -> int | list[M]:
            with all_or_nothing(session):  # a failure undoes every batch
                if with_hooks or instances is not None:
                    built = instances if instances is not None else [cls(**row) for row in rows]
                    for batch in chunks(built, batch_size):
                        session.add_all(batch)
                        session.flush()
                    return built if return_models else len(built)
                _prepare_bulk_rows(cls, rows, columns)
                if return_models:
                    created: list[M] = []
                    for batch in chunks(rows, batch_size):
                        created.extend(session.scalars(insert(cls).returning(cls), batch))
                    return created
                insert_rows(session, cls, rows, columns, batch_size)
                return len(rows)

        return dispatch.run(cls.__duo_database__, op)

    @classmethod
    def get(cls: type[M], *pk: Any, **pk_parts: Any) -> Any:
        """The row with this primary key, or ``None``.

        A key no row can have (2**31 for an Integer key on PostgreSQL, a string with
        NUL, ...) is a missing row, answered without a statement: on PostgreSQL a
        refused statement would abort the surrounding transaction.
        """
        ident = _identity(cls, pk, pk_parts)
        if ident is IMPOSSIBLE_KEY:
            return dispatch.run(cls.__duo_database__, lambda session: None, "single_read")
        return dispatch.run(
            cls.__duo_database__,
            lambda session: session.get(cls, ident),
            "single_read",
            lone_reads.ByKey(cls, ident, lambda instance: instance),
        )

    @classmethod
    def get_one(cls: type[M], *pk: Any, **pk_parts: Any) -> Any:
        """The row with this primary key; ``ObjectNotFoundError`` when there is none."""
        ident = _identity(cls, pk, pk_parts)

        def found(instance: M | None) -> M:
            if instance is None:
                raise ObjectNotFoundError(f"{cls.__name__} {_describe(cls, ident)} not found")
            return instance

        def op(session: Session) -> M:
            if ident is IMPOSSIBLE_KEY:
                raise ObjectNotFoundError(f"{cls.__name__} not found: no row can have this key")
            return found(session.get(cls, ident))

        if ident is IMPOSSIBLE_KEY:
            return dispatch.run(cls.__duo_database__, op, "single_read")
        direct = lone_reads.ByKey(cls, ident, found)
        return dispatch.run(cls.__duo_database__, op, "single_read", direct)

    # -- queries (each starts a Query; see duo_orm.query) ---------------------

    @classmethod
    def query(cls: type[M]) -> Query[M]:
        """A query over every row of this model."""
        return Query(cls)

    @classmethod
    def where(cls: type[M], *conditions: Any) -> Query[M]:
        return Query(cls).where(*conditions)

    @classmethod
    def filter_by(cls: type[M], **equals: Any) -> Query[M]:
        return Query(cls).filter_by(**equals)

    @classmethod
    def order_by(cls: type[M], *fields: Any, allowed: Iterable[str] | None = None) -> Query[M]:
        return Query(cls).order_by(*fields, allowed=allowed)

    @classmethod
    def limit(cls: type[M], count: int) -> Query[M]:
        return Query(cls).limit(count)

    @classmethod
    def offset(cls: type[M], count: int) -> Query[M]:
        return Query(cls).offset(count)

    @classmethod
    def paginate(cls: type[M], limit: int, offset: int = 0) -> Query[M]:
        return Query(cls).paginate(limit, offset)

    @classmethod
    def distinct(cls: type[M]) -> Query[M]:
        return Query(cls).distinct()

    @classmethod
    def join(cls: type[M], target: Any, on: Any = None, kind: JoinKind = "inner") -> Query[M]:
        return Query(cls).join(target, on, kind)

    @classmethod
    def related(cls: type[M], target: Any, **options: Any) -> Query[M]:
        return Query(cls).related(target, **options)

    @classmethod
    def all(cls) -> Any:
        return Query(cls).all()

    @classmethod
    def first(cls) -> Any:
        return Query(cls).first()

    @classmethod
    def one(cls) -> Any:
        return Query(cls).one()

    @classmethod
    def one_or_none(cls) -> Any:
        return Query(cls).one_or_none()

    @classmethod
    def count(cls) -> Any:
        return Query(cls).count()

    @classmethod
    def exists(cls) -> Any:
        return Query(cls).exists()

    @classmethod
    def page(cls, number: int, size: int) -> Any:
        return Query(cls).page(number, size)

    @classmethod
    def iterate(cls, batch_size: int = 200, batch: bool = False) -> Any:
        return Query(cls).iterate(batch_size, batch)

    @classmethod
    def update_bulk(cls, payload: Payload = None, /, **options: Any) -> Any:
        """Whole-table update: needs ``require_filter=False`` (or start from ``where()``)."""
        return Query(cls).update_bulk(payload, **options)

    @classmethod
    def delete_bulk(cls, **options: Any) -> Any:
        """Whole-table delete: needs ``require_filter=False`` (or start from ``where()``)."""
        return Query(cls).delete_bulk(**options)

    # -- instance calls -----------------------------------------------------

    def save(self) -> Any:
        """INSERT or UPDATE this instance; returns it."""

        def op(session: Session) -> Model:
            _store(session, self, {})  # a failed save keeps its changes pending
            return self

        # A loaded row whose columns changed: one UPDATE of them, as ``update()`` sends.
        direct = lone_writes.Update(self, dict, lambda: _Snapshot(None, self), _created)
        return dispatch.run(self.__duo_database__, op, "write", direct)

    def update(self, payload: Payload = None, /, **fields: Any) -> Any:
        """Apply a partial payload and save. On failure the instance is left as it was."""

        def op(session: Session) -> Model:
            _store(session, self, payload_values(type(self), payload, fields, partial=True))
            return self

        direct = lone_writes.Update(
            self,
            lambda: payload_values(type(self), payload, fields, partial=True),
            lambda: _Snapshot(None, self),
            _created,
        )
        return dispatch.run(self.__duo_database__, op, "write", direct)

    def delete(self) -> Any:
        """DELETE this row; ``ObjectNotFoundError`` if it is already gone."""

        def op(session: Session) -> None:
            impossible = _has_impossible_key(self)  # not found, and nothing sent or attached
            if not impossible:
                _attach(session, self)
            if impossible or not _row_exists(session, self):
                raise ObjectNotFoundError(
                    f"{type(self).__name__} {_describe(type(self), _pk_of(self))} no longer exists"
                )
            session.delete(self)
            _flush(session, self)

        return dispatch.run(self.__duo_database__, op)

    def refresh(self) -> Any:
        """Reload every column from the database; returns the instance."""

        def op(session: Session) -> Model:
            gone = ObjectNotFoundError(
                f"{type(self).__name__} {_describe(type(self), _pk_of(self))} no longer exists"
            )
            if _has_impossible_key(self):  # answered without a statement, as get() does
                raise gone
            _attach(session, self)
            try:
                session.refresh(self)
            except InvalidRequestError:
                raise gone from None
            return self

        return dispatch.run(self.__duo_database__, op)

    def apply_schema(self: M, payload: Payload = None, /, **fields: Any) -> M:
        """Apply a partial payload in memory only (nothing is written)."""
        for key, value in payload_values(type(self), payload, fields, partial=True).items():
            setattr(self, key, value)
        return self

    def to_schema(self, schema: type[S]) -> S:
        """This instance as a pydantic model (which needs ``from_attributes=True``)."""
        if not (isinstance(schema, type) and issubclass(schema, BaseModel)):
            raise TypeError(
                f"to_schema() needs a pydantic model class (a pydantic.BaseModel subclass), "
                f"got {schema!r}"
            )
        if not schema.model_config.get("from_attributes"):
            raise ValidationError(
                f"{schema.__name__} cannot be built from a model instance: give it "
                f"model_config = ConfigDict(from_attributes=True)"
            )
        try:
            return schema.model_validate(self)
        except PydanticValidationError as exc:
            raise ValidationError(
                f"{type(self).__name__} does not fit {schema.__name__}: "
                f"{exc.error_count()} error(s)",
                detail=exc.errors(include_url=False),
            ) from exc

    def to_dict(
        self, include: Iterable[str] | None = None, exclude: Iterable[str] | None = None
    ) -> dict[str, Any]:
        """Column values as a dict."""
        names = list(column_specs(type(self)))
        if include is not None:
            include = list(include)
            check_known_fields(type(self), dict.fromkeys(include))
            names = [name for name in names if name in include]
        if exclude is not None:
            exclude = set(exclude)
            check_known_fields(type(self), dict.fromkeys(exclude))
            names = [name for name in names if name not in exclude]
        return {name: getattr(self, name) for name in names}

    def __repr__(self) -> str:
        pk = _pk_of(self)
        shown = ", ".join(f"{k}={v!r}" for k, v in zip(_pk_names(type(self)), pk, strict=False))
        return f"<{type(self).__name__} {shown}>"


# -- helpers ------------------------------------------------------------------


def _flush(session: Session, instance: Model) -> None:
    """Flush this write; if it fails, the instance keeps every value the caller gave it.

    A failed flush rolls the session back, which expires (empties) the
    instance's attributes; the snapshot puts them back, with the caller's
    unsaved changes still marked as changes. The instance then leaves the
    session if it was new (so an enclosing transaction can go on) or if the
    session is a one-statement session about to be rolled back and closed.
    """
    if session._flushing:  # a hook (validate()) writing while its own write is flushed
        raise UnsupportedOperationError(
            "validate() and other model hooks may read through the ORM but not write: "
            "this session is already flushing. Do the extra write after the call returns."
        )
    state = inspect(instance)
    keys = column_specs(type(instance)).keys()
    values = {key: state.dict[key] for key in keys if key in state.dict}
    originals = {key: state.committed_state[key] for key in values if key in state.committed_state}
    try:
        session.flush()
    except BaseException:
        if any(key not in state.dict for key in values):
            doomed = not session.is_active  # changes could never be flushed again
            for key, value in values.items():
                if key in originals and not doomed:
                    set_committed_value(instance, key, originals[key])
                    setattr(instance, key, value)
                else:
                    set_committed_value(instance, key, value)
        if instance in session and (state.pending or dispatch.is_statement_session(session)):
            session.expunge(instance)
        raise


def _store(session: Session, instance: Model, values: dict[str, Any]) -> None:
    """Set ``values`` on ``instance`` and flush it; on failure it is left as it was."""
    before = _Snapshot(session, instance)
    try:
        for key, value in values.items():
            setattr(instance, key, value)
        _attach(session, instance)
        _flush(session, instance)
    except BaseException:
        before.restore(session, instance)
        raise


def _created(instance: M) -> M:
    return instance


def _new_instance(model: type[M], item: Model) -> M:
    """``item`` as a row to INSERT: a new instance of ``model``."""
    if not isinstance(item, model):
        raise TypeError(
            f"{model.__name__} rows are created from payloads or {model.__name__} "
            f"instances, not from a {type(item).__name__} instance"
        )
    if inspect(item).key is not None:
        raise UnsupportedOperationError(
            f"This {model.__name__} is already stored ({_describe(model, _pk_of(item))}); "
            f"create() inserts new rows: call save() or update() on it instead."
        )
    return item


def _attach(session: Session, instance: Model) -> None:
    if instance in session:
        return
    try:
        session.add(instance)
    except InvalidRequestError as exc:
        raise UnsupportedOperationError(
            f"Cannot write this {type(instance).__name__} here: {exc}. Load it inside the "
            f"same db.transaction() block, or after the other session has closed."
        ) from exc


class _Snapshot:
    """An instance's column state before an ``update()``, to put back exactly if it fails.

    Values alone are not enough: an attribute that was expired or never loaded
    (deferred) has no value, but setting it leaves an entry in
    ``committed_state``, and the hooks stamp ``updated_at`` during the flush.
    Left behind, either is a pending change that a later flush writes (an unloaded
    attribute as NULL). So the snapshot holds every column's loaded value, its
    ``committed_state`` entry, whether it was expired, and the instance's place in
    the session.
    """

    __slots__ = (
        "attached",
        "callables",
        "committed",
        "expired",
        "fully_expired",
        "loaded",
        "modified",
    )

    def __init__(self, session: Session | None, instance: Model) -> None:
        state = inspect(instance)
        keys = column_specs(type(instance)).keys()
        self.attached = session is not None and instance in session
        self.loaded = {key: state.dict[key] for key in keys if key in state.dict}
        self.committed = {k: state.committed_state[k] for k in keys if k in state.committed_state}
        self.expired = state.expired_attributes.intersection(keys)
        self.callables = {key: state.callables[key] for key in keys if key in state.callables}
        self.fully_expired = state.expired
        self.modified = state.modified

    def restore(self, session: Session, instance: Model) -> None:
        """Undo the failed call on ``instance``, and on its membership of ``session``."""
        if not self.attached and instance in session:
            session.expunge(instance)  # the call attached it: leave the session as it was
        if instance in session and not session.is_active:
            self._restore_as_loaded(instance)
            return
        self._restore_exactly(instance)
        if self.attached and instance not in session:  # a pending instance the flush let go
            session.add(instance)

    def restore_detached(self, instance: Model) -> None:
        """Undo a failed lone update (``lone_writes``), which no session saw."""
        self._restore_exactly(instance)

    def _restore_exactly(self, instance: Model) -> None:
        state = inspect(instance)
        for key in column_specs(type(instance)):
            if key in self.loaded:
                state.dict[key] = self.loaded[key]
            else:
                state.dict.pop(key, None)
            if key in self.committed:
                state.committed_state[key] = self.committed[key]
            else:
                state.committed_state.pop(key, None)
            if key in self.expired:
                state.expired_attributes.add(key)
            else:
                state.expired_attributes.discard(key)
            if key in self.callables:
                if not isinstance(state.callables, dict):
                    state.callables = dict(state.callables)
                state.callables[key] = self.callables[key]
        if state.modified and not self.modified and not state.committed_state:
            # unchanged again: unmark it, or it stays in session.dirty (SQLAlchemy
            # has no public call for this)
            state._commit_all(state.dict, state.session.identity_map if state.session else None)
        elif self.modified and not state.modified and state.committed_state:
            flag_dirty(instance)  # changed still: unmarked, the next flush would skip it
        state.expired = self.fully_expired

    def _restore_as_loaded(self, instance: Model) -> None:
        """In a session a failed flush has doomed: values as loaded state.

        Marking them changed there would only make SQLAlchemy warn at the
        rollback that pending changes are discarded; and the rollback has
        expired everything, so attributes that had no value stay expired.
        """
        state = inspect(instance)
        for key in column_specs(type(instance)):
            if key in self.loaded:
                set_committed_value(instance, key, self.loaded[key])
            else:
                state.dict.pop(key, None)
                state.committed_state.pop(key, None)
                state.expired_attributes.add(key)


def _has_impossible_key(instance: Model) -> bool:
    """Whether the instance's primary key is one no row can have (checked without a statement)."""
    specs = column_specs(type(instance))
    names = _pk_names(type(instance))
    return any(
        specs[n].unstorable(v) is not None for n, v in zip(names, _pk_of(instance), strict=True)
    )


def _row_exists(session: Session, instance: Model) -> bool:
    """Whether this instance's row is still there (SQLAlchemy only warns on a stale DELETE)."""
    mapper: Mapper[Any] = inspect(type(instance))
    key = mapper.primary_key_from_instance(instance)
    match = [column == value for column, value in zip(mapper.primary_key, key, strict=True)]
    query = select(literal(1)).select_from(mapper.local_table).where(*match)
    return session.execute(query).first() is not None


def _prepare_bulk_rows(
    model: type, rows: list[dict[str, Any]], columns: dict[str, list[Any]] | None
) -> None:
    """Timestamps and column checks for rows that bypass instances.

    ``columns`` (from ``bulk_rows``) holds the rows' values by column when every
    row has the same keys. The checks look at each column's set of value types
    (``ColumnSpec.accepts_all``), which settles the common case without a call
    per value; when a column needs a closer look, the rows are checked one by
    one, so the error names the first bad value in row order, as it always has.
    """
    specs = column_specs(model)
    stamped = stamped_keys(model, "create")
    required = frozenset(spec.key for spec in specs.values() if spec.required)
    now = utc_now()
    for key in stamped:
        for row in rows:
            if row.get(key) is None:
                row[key] = now
        if columns is not None:  # every row has the key now
            columns[key] = list(map(itemgetter(key), rows))
    if columns is not None:
        passed = _all_pass(specs, required, columns)
    else:
        groups: dict[frozenset[str], list[dict[str, Any]]] = {}
        for row in rows:
            groups.setdefault(frozenset(row), []).append(row)
        passed = all(_all_pass(specs, required, columns_of(group)) for group in groups.values())
    if not passed:
        _check_rows_one_by_one(specs, required, rows)


def _all_pass(
    specs: Mapping[str, ColumnSpec], required: frozenset[str], columns: dict[str, list[Any]] | None
) -> bool:
    """Whether rows with these columns (all rows having every key) pass every check."""
    return (
        columns is not None
        and required <= columns.keys()
        and all(specs[key].accepts_all(values, inserting=True) for key, values in columns.items())
    )


def _check_rows_one_by_one(
    specs: Mapping[str, ColumnSpec], required: frozenset[str], rows: list[dict[str, Any]]
) -> None:
    """Raise the first error in row order (unreached when every value passes)."""
    for row in rows:
        for key, value in row.items():
            specs[key].check(value, inserting=True)
        if not required <= row.keys():
            missing = sorted(required - row.keys())[0]
            raise ValidationError(f"{missing} is required", field=missing)


def _pk_names(model: type) -> tuple[str, ...]:
    """The attribute names of ``model``'s primary key (cached: read on every ``get``)."""
    cached: tuple[str, ...] | None = model.__dict__.get("__duo_pk_names__")
    if cached is None:
        mapper: Mapper[Any] = inspect(model)
        cached = tuple(mapper.get_property_by_column(column).key for column in mapper.primary_key)
        setattr(model, "__duo_pk_names__", cached)  # noqa: B010 - not a declared attribute
    return cached


def _pk_of(instance: Model) -> tuple[Any, ...]:
    values = inspect(instance).dict
    return tuple(values.get(name) for name in _pk_names(type(instance)))


def _identity(model: type, pk: tuple[Any, ...], pk_parts: Mapping[str, Any]) -> Any:
    names = _pk_names(model)
    if pk and pk_parts:
        raise InvalidQueryError("Give the primary key positionally or by name, not both")
    if pk_parts:
        unknown = set(pk_parts) - set(names)
        missing = [name for name in names if name not in pk_parts]
        if unknown or missing:
            raise InvalidQueryError(
                f"{model.__name__}'s primary key is ({', '.join(names)}); "
                f"got {', '.join(sorted(pk_parts))}"
            )
        pk = tuple(pk_parts[name] for name in names)
    if len(pk) != len(names):
        raise InvalidQueryError(
            f"{model.__name__}'s primary key has {len(names)} column(s) "
            f"({', '.join(names)}); got {len(pk)} value(s)"
        )
    specs = column_specs(model)
    impossible = False
    for name, value in zip(names, pk, strict=False):
        if specs[name].unstorable(value) is not None:
            impossible = True  # a well-typed key no row can have: a missing row
            continue
        try:
            specs[name].check(value, inserting=False)
        except ValidationError as exc:
            raise InvalidQueryError(f"Invalid primary key: {exc.message}") from None
    if impossible:
        return IMPOSSIBLE_KEY
    return pk[0] if len(pk) == 1 else pk


IMPOSSIBLE_KEY: Any = object()  # _identity's answer for a key no row can have


def _describe(model: type, ident: Any) -> str:
    values = ident if isinstance(ident, tuple) else (ident,)
    return ", ".join(
        f"{name}={shown(value)}" for name, value in zip(_pk_names(model), values, strict=False)
    )
