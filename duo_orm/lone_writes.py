"""A lone ``create`` that skips the ORM session when nothing would notice.

``Model.create(...)`` in statement mode is one INSERT. Through a session it also
pays for the session, its transaction and the unit of work's flush plan, and on
PostgreSQL three round trips (BEGIN, the INSERT, COMMIT) where one autocommitted
INSERT is just as atomic. For a model the ORM would insert column by column, this
module runs the same hooks (timestamps, defaults, column checks), sends an INSERT
compiled once per set of columns on a pooled DBAPI connection (on SQLite in this
process's writer queue, as a BEGIN IMMEDIATE waits there), with RETURNING for
the key and what the database fills in, and leaves the instance as a closed
session leaves a created one: detached, with its identity key, nothing pending.

``update()`` of a detached instance is, the same way, one UPDATE by primary key of
the columns that changed (the values, then the hooks' timestamps), returning the
key to tell a row that is gone; the instance is left unchanged if it fails.

The hooks run with no session; one that touches the database (a ``validate()``
that queries, which must see its write's transaction) sends the write back to the
ORM path, where the hooks run again in the session. Whatever else could tell the ORM
path from these takes it too: everything that keeps a point read on it
(``lone_reads``), session listeners of any kind besides
duo-orm's own, mapper insert or update events, a version counter, a default computed
at INSERT time (a Python callable, a SQL expression, a sequence) that no value
replaces, values computed at UPDATE time (``onupdate``), a changed primary key,
expired attributes, and SQL expressions given as values.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, nullcontext
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

from sqlalchemy import Column, Dialect, Engine, Table, and_, bindparam, insert, update
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.orm import Mapper, class_mapper
from sqlalchemy.orm.attributes import instance_state
from sqlalchemy.orm.base import PASSIVE_NO_INITIALIZE
from sqlalchemy.orm.exc import StaleDataError
from sqlalchemy.sql.elements import ClauseElement

from . import _lone_statement, dispatch
from ._driver_sql import watched
from ._result_values import Processor, ResultProcessors
from .hooks import before_insert, before_update, run_model_hooks
from .lone_reads import (
    async_engine_for,
    engine_for,
    plain_columns,
    send_async,
    session_class_of,
    session_free,
    session_probe,
)
from .session import DuoSession

if TYPE_CHECKING:
    from .database import Database
    from .frame import DeferredFrame

T = TypeVar("T")

# Drivers (name, driver, async) whose connection this module can send a write to:
# alone, autocommitted, in statement mode (a statement-mode async call on SQLite
# runs as a sync one in a worker thread, ``dispatch``), and in a request's lone
# transaction on the async ones but asyncpg (``_REQUEST_DRIVERS``).
_DRIVERS = frozenset(
    {
        ("sqlite", "pysqlite", False),
        ("postgresql", "psycopg", False),
        ("postgresql", "psycopg2", False),
        ("postgresql", "psycopg", True),
        ("postgresql", "asyncpg", True),
        ("sqlite", "aiosqlite", True),
    }
)
# SQLAlchemy's asyncpg adapter begins its own transaction on the connection, which a
# lone transaction begun past it would collide with once the request needs a session.
_REQUEST_DRIVERS = frozenset({"psycopg", "aiosqlite"})
_TABLES = "__duo_lone_writes__"  # model attribute: {(dialect, driver, async): _Table | None}


class Insert(Generic[T]):
    """A lone INSERT of one new row of ``model`` from column ``values``, for ``dispatch``
    to run past the session. ``then`` turns the created instance into the call's
    result. Each run gives ``NotImplemented`` when the ORM must do the write."""

    __slots__ = ("model", "then", "values")

    def __init__(
        self, model: type[Any], values: Callable[[], dict[str, Any]], then: Callable[[Any], T]
    ) -> None:
        self.model, self.values, self.then = model, values, then

    def run(self, db: Database) -> T:
        engine = engine_for(db)
        if engine is None or not _writes_unobserved(session_class_of(db)):
            return NotImplemented  # type: ignore[no-any-return]
        prepared = self._prepare(engine.dialect)
        if prepared is None:
            return NotImplemented  # type: ignore[no-any-return]
        instance, plan = prepared
        parameters = plan.parameters(instance, engine)
        row, description = _sent_alone(db, engine, plan.sql, parameters)
        return self.then(plan.stored(instance, row, description))

    async def run_async(self, db: Database) -> T:
        engine = async_engine_for(db)  # psycopg's or asyncpg's: aiosqlite is run as above
        if engine is None or not _writes_unobserved(DuoSession):
            return NotImplemented  # type: ignore[no-any-return]
        prepared = self._prepare(engine.dialect)
        if prepared is None:
            return NotImplemented  # type: ignore[no-any-return]
        instance, plan = prepared
        parameters = plan.parameters(instance, engine.sync_engine)
        row, description = await send_async(engine, plan.sql, parameters)
        return self.then(plan.stored(instance, row, description))

    async def run_in_request(self, db: Database, deferred: DeferredFrame) -> T:
        """The INSERT as a request's write, in the transaction lone writes began (or
        begin now)."""
        engine = _request_engine(db)
        prepared = None if engine is None else self._prepare(engine.dialect)
        lone = None if prepared is None else deferred.lone_transaction()
        if engine is None or prepared is None or lone is None:
            return NotImplemented  # type: ignore[no-any-return]
        instance, plan = prepared
        parameters = plan.parameters(instance, engine.sync_engine)
        row, description = await lone.send(plan.sql, parameters)
        lone.adopt_later(plan.stored(instance, row, description))
        return self.then(instance)

    def _prepare(self, dialect: Dialect) -> tuple[Any, _Insert] | None:
        """The new instance, after its hooks, with the INSERT that stores it; ``None``
        if the ORM must write it."""
        table = _table(self.model, dialect)
        if table is None:
            return None
        values = self.values()
        if not table.takes(values):
            return None
        instance = self.model(**values)
        try:
            with dispatch.hooks_alone():
                before_insert(instance)
        except dispatch.HooksNeedSession:
            return None
        return instance, table.insert_of(instance_state(instance).dict)


class Update(Generic[T]):
    """A lone UPDATE of a detached ``instance`` with column ``values``, for ``dispatch``
    to run past the session: the changes the ORM would flush (the values, then the
    hooks' timestamps), by primary key, with RETURNING to tell a row that is gone.
    ``snapshot()`` records the instance so that a failure leaves it as it was."""

    __slots__ = ("instance", "snapshot", "then", "values")

    def __init__(
        self,
        instance: Any,
        values: Callable[[], dict[str, Any]],
        snapshot: Callable[[], Restorable],
        then: Callable[[Any], T],
    ) -> None:
        self.instance, self.values, self.snapshot, self.then = instance, values, snapshot, then

    def run(self, db: Database) -> T:
        engine = engine_for(db)
        if engine is None or not _writes_unobserved(session_class_of(db)):
            return NotImplemented  # type: ignore[no-any-return]
        found = self._table_and_values(engine.dialect)
        if found is None:
            return NotImplemented  # type: ignore[no-any-return]
        table, values = found
        with self._undone_on_failure() as attempt:
            plan = table.update_of(self.instance, values)
            if plan is not None:
                parameters = plan.parameters(self.instance, engine)
                row, _ = _sent_alone(db, engine, plan.sql, parameters)
                plan.check_found(row)
        if attempt.needs_session:
            return NotImplemented  # type: ignore[no-any-return]
        return self.then(_settled(self.instance))

    async def run_async(self, db: Database) -> T:
        engine = async_engine_for(db)  # psycopg's or asyncpg's: aiosqlite is run as above
        if engine is None or not _writes_unobserved(DuoSession):
            return NotImplemented  # type: ignore[no-any-return]
        found = self._table_and_values(engine.dialect)
        if found is None:
            return NotImplemented  # type: ignore[no-any-return]
        table, values = found
        with self._undone_on_failure() as attempt:
            plan = table.update_of(self.instance, values)
            if plan is not None:
                parameters = plan.parameters(self.instance, engine.sync_engine)
                row, _ = await send_async(engine, plan.sql, parameters)
                plan.check_found(row)
        if attempt.needs_session:
            return NotImplemented  # type: ignore[no-any-return]
        return self.then(_settled(self.instance))

    async def run_in_request(self, db: Database, deferred: DeferredFrame) -> T:
        """The UPDATE as a request's write, in the transaction lone writes began (or
        begin now); a row that is gone dooms it, as it dooms the ORM's flush."""
        engine = _request_engine(db)
        found = None if engine is None else self._table_and_values(engine.dialect)
        lone = None if found is None else deferred.lone_transaction()
        if engine is None or found is None or lone is None:
            return NotImplemented  # type: ignore[no-any-return]
        table, values = found
        with self._undone_on_failure() as attempt:
            plan = table.update_of(self.instance, values)
            if plan is not None:
                parameters = plan.parameters(self.instance, engine.sync_engine)
                row, _ = await lone.send(plan.sql, parameters)
                lone.check(plan.check_found, row)
            elif not lone.began:
                # Nothing to send, and no transaction yet to adopt the instance: the
                # session's path attaches it, so what changes on it later is saved.
                attempt.needs_session = True
        if attempt.needs_session:
            return NotImplemented  # type: ignore[no-any-return]
        lone.adopt_later(_settled(self.instance))
        return self.then(self.instance)

    def _table_and_values(self, dialect: Dialect) -> tuple[_Table, dict[str, Any]] | None:
        """The model's lone writes and the caller's values; ``None`` if the ORM must
        make this update."""
        table = _table(type(self.instance), dialect)
        if table is None or not table.updatable(self.instance):
            return None
        values = self.values()
        return (table, values) if table.takes(values, updating=True) else None

    @contextmanager
    def _undone_on_failure(self) -> Iterator[_Attempt]:
        """Leaves the instance as it was if the hooks or the UPDATE fail; a hook that
        needs a session is not a failure but the ORM path's turn."""
        snapshot, attempt = self.snapshot(), _Attempt()
        try:
            yield attempt
        except BaseException as error:
            snapshot.restore_detached(self.instance)
            if not isinstance(error, dispatch.HooksNeedSession):
                raise
            attempt.needs_session = True


class _Attempt:
    __slots__ = ("needs_session",)

    def __init__(self) -> None:
        self.needs_session = False


class Restorable(Protocol):
    def restore_detached(self, instance: Any) -> None: ...


def _request_engine(db: Database) -> AsyncEngine | None:
    """The async engine a request's lone writes may use, unless something would see
    the difference (see ``lone_reads.session_free`` and ``_writes_unobserved``)."""
    if not (session_free(db, DuoSession) and _writes_unobserved(DuoSession)):
        return None
    engine = db._engines.async_engine()
    if engine.dialect.driver not in _REQUEST_DRIVERS or watched(engine.sync_engine):
        return None
    return engine


def _sent_alone(db: Database, engine: Engine, sql: str, parameters: Any) -> _lone_statement.Outcome:
    """One autocommitted write; on SQLite once this process's writer queue gives it
    its turn, as a BEGIN IMMEDIATE waits for one."""
    turns = db._engines.sync_turns
    with nullcontext() if turns is None else turns.alone(sql):
        return _lone_statement.run(engine, sql, parameters)


def _expression(value: Any) -> bool:
    """Whether a value is SQL to run (the ORM renders it into the statement)."""
    return isinstance(value, ClauseElement) or hasattr(value, "__clause_element__")


def _settled(instance: Any) -> Any:
    """``instance`` with its changes stored: nothing pending, as after a flush."""
    state = instance_state(instance)
    state._commit_all(state.dict)
    return instance


def _writes_unobserved(session_class: type[Any]) -> bool:
    """Whether no session listener but duo-orm's own hooks would see a write."""
    before_flush, others = _listeners(session_class)
    return not any(others) and list(before_flush) == [run_model_hooks]


_LISTENERS: weakref.WeakKeyDictionary[type[Any], tuple[Any, tuple[Any, ...]]] = (
    weakref.WeakKeyDictionary()
)


def _listeners(session_class: type[Any]) -> tuple[Any, tuple[Any, ...]]:
    """The probe's ``before_flush`` listeners and those of every other session event:
    collections that follow the class-level listeners as they come and go."""
    found = _LISTENERS.get(session_class)
    if found is None:
        dispatch = session_probe(session_class).dispatch
        others = tuple(
            getattr(dispatch, name) for name in dispatch._event_names if name != "before_flush"
        )
        found = _LISTENERS[session_class] = (dispatch.before_flush, others)
    return found


def _table(model: type[Any], dialect: Dialect) -> _Table | None:
    tables: dict[tuple[str, str, bool], _Table | None] | None = model.__dict__.get(_TABLES)
    if tables is None:
        tables = {}
        setattr(model, _TABLES, tables)
    key = (dialect.name, dialect.driver, dialect.is_async)
    if key not in tables:
        eligible = key in _DRIVERS and dialect.insert_returning
        tables[key] = _Table.of(model, dialect) if eligible else None
    return tables[key]


class _Table:
    """One model's lone INSERTs on one dialect, a statement per set of columns given."""

    @classmethod
    def of(cls, model: type[Any], dialect: Dialect) -> _Table | None:
        columns = plain_columns(model)
        if columns is None:
            return None
        mapper = class_mapper(model)
        if (
            mapper.version_id_col is not None
            or not isinstance(mapper.local_table, Table)
            or not mapper.local_table.implicit_returning
        ):
            return None
        return cls(mapper, mapper.local_table, columns, dialect)

    def __init__(
        self,
        mapper: Mapper[Any],
        table: Table,
        columns: list[tuple[str, Column[Any]]],
        dialect: Dialect,
    ) -> None:
        self._mapper, self._table, self._columns, self._dialect = mapper, table, columns, dialect
        # filled in at INSERT time unless a value is given: the ORM path must run then
        self._computed_defaults = frozenset(
            key
            for key, column in columns
            if column.default is not None and not getattr(column.default, "is_scalar", False)
        )
        self._key_keys = frozenset(key for key, column in columns if column.primary_key)
        self._value_keys = frozenset(key for key, _ in columns) - self._key_keys
        self._relationship_keys = tuple(mapper.relationships.keys())
        self._plans: dict[tuple[str, ...], _Insert] = {}
        self._update_plans: dict[tuple[str, ...], _Update] = {}
        # values filled in at UPDATE time would need the ORM's postfetch
        self._updates = dialect.update_returning and not any(
            column.onupdate is not None or column.server_onupdate is not None
            for _, column in columns
        )

    def updatable(self, instance: Any) -> bool:
        """Whether a lone UPDATE can store ``instance``'s changes: a detached instance
        with every column it had still loaded, nothing changed on it but columns outside
        the key, to plain values, and no related object loaded (a new key, an SQL
        expression, or a related object changed or added is the ORM's to write: its
        cascade saves related objects with the instance)."""
        state = instance_state(instance)
        loaded = state.dict
        return (
            self._updates
            and state.key is not None
            and state.session_id is None
            and not state.was_deleted
            and not state.expired_attributes
            and all(
                key in self._value_keys and not _expression(loaded.get(key))
                for key in state.committed_state
            )
            and not any(key in loaded for key in self._relationship_keys)
        )

    def update_of(self, instance: Any, values: Mapping[str, Any]) -> _Update | None:
        """Set ``values``, run the update hooks, and give the UPDATE of what changed
        (``None``: nothing did, and nothing is sent, as the ORM sends nothing)."""
        for key, value in values.items():
            setattr(instance, key, value)
        with dispatch.hooks_alone():
            before_update(instance)
        state = instance_state(instance)
        committed = state.committed_state
        changed = tuple(
            key
            for key, _ in self._columns
            if key in committed and state.get_history(key, PASSIVE_NO_INITIALIZE).has_changes()
        )
        if not changed:
            return None
        plan = self._update_plans.get(changed)
        if plan is None:
            plan = self._update_plans[changed] = _Update(self, changed)
        return plan

    def takes(self, values: Mapping[str, Any], updating: bool = False) -> bool:
        """Whether a lone INSERT (UPDATE) can store a row given ``values`` (the caller's),
        with no mapper listener on inserts (updates) to miss it."""
        events = self._mapper.dispatch
        if updating:
            if events.before_update or events.after_update:
                return False
            if not self._updates or any(key in self._key_keys for key in values):
                return False  # a changed primary key: the ORM's business
        else:
            if events.before_insert or events.after_insert:
                return False
            for key in self._computed_defaults:
                if values.get(key) is None:
                    return False
        return not any(_expression(value) for value in values.values())

    def insert_of(self, state: Mapping[str, Any]) -> _Insert:
        """The INSERT for an instance holding ``state`` after its hooks.

        A ``None`` is left out, as the ORM leaves it out, unless the column's type
        stores ``None`` as a value of its own (JSON's ``null``).
        """
        given = tuple(
            key
            for key, column in self._columns
            if key in state and (state[key] is not None or column.type.should_evaluate_none)
        )
        plan = self._plans.get(given)
        if plan is None:
            plan = self._plans[given] = _Insert(self, given)
        return plan


class _Insert:
    """An INSERT of one set of columns, compiled once, and what its RETURNING fills in."""

    def __init__(self, table: _Table, given: tuple[str, ...]) -> None:
        dialect = table._dialect
        by_key = dict(table._columns)
        given_columns = [by_key[key] for key in given]
        # what the database fills in: the key, server defaults, identities, computed
        returned = [
            (key, column)
            for key, column in table._columns
            if key not in given
            and (
                column.primary_key
                or column.server_default is not None
                or column.computed is not None
                or column.identity is not None
            )
        ]
        names = [f"duo_{number}" for number in range(len(given))]
        statement = insert(table._table).values(
            {
                column: bindparam(name, type_=column.type)
                for column, name in zip(given_columns, names, strict=True)
            }
        )
        if returned:
            statement = statement.returning(*(column for _, column in returned))
        compiled = statement.compile(dialect=dialect)
        self.sql = compiled.string
        self._given = given
        self._names = tuple(names)
        self._binds: tuple[Processor, ...] = tuple(
            column.type.dialect_impl(dialect).bind_processor(dialect) for column in given_columns
        )
        self._order = tuple(compiled.positiontup or ()) if compiled.positional else None
        self._returned_keys = tuple(key for key, _ in returned)
        self._results = ResultProcessors([column for _, column in returned], dialect)
        self._key_keys = tuple(key for key, column in table._columns if column.primary_key)

    def parameters(self, instance: Any, engine: Engine) -> Any:
        """The DBAPI parameters for ``instance``, through the types' bind processors as
        ``Connection`` sends them (a ``None`` given to JSON becomes JSON's ``null``);
        a value a type refuses raises as ``Connection`` would raise it."""
        state = instance_state(instance).dict
        values = {}
        try:
            for name, key, bind in zip(self._names, self._given, self._binds, strict=True):
                value = state[key]
                values[name] = value if bind is None else bind(value)
        except Exception as error:
            raise _lone_statement.wrapped(error, self.sql, None, engine) from error
        return values if self._order is None else [values[name] for name in self._order]

    def stored(self, instance: Any, row: Any, description: Any) -> Any:
        """``instance`` as the ORM leaves a created one once its session is closed."""
        state = instance_state(instance)
        if self._returned_keys:
            returned = self._results.values(row, description)
            state.dict.update(zip(self._returned_keys, returned, strict=True))
        state._commit_all(state.dict)
        state.key = state.mapper.identity_key_from_primary_key(
            tuple(state.dict[key] for key in self._key_keys)
        )
        return instance


class _Update:
    """An UPDATE of one set of columns by primary key, compiled once, returning the key
    so that a row already gone is told apart."""

    def __init__(self, table: _Table, changed: tuple[str, ...]) -> None:
        dialect = table._dialect
        by_key = dict(table._columns)
        key_columns = [(key, column) for key, column in table._columns if column.primary_key]
        keys = [f"duo_pk_{number}" for number in range(len(key_columns))]
        names = [f"duo_{number}" for number in range(len(changed))]
        statement = (
            update(table._table)
            .where(
                and_(
                    *(
                        column == bindparam(name, type_=column.type)
                        for (_, column), name in zip(key_columns, keys, strict=True)
                    )
                )
            )
            .values(
                {
                    by_key[key]: bindparam(name, type_=by_key[key].type)
                    for key, name in zip(changed, names, strict=True)
                }
            )
            .returning(*(column for _, column in key_columns))
        )
        compiled = statement.compile(dialect=dialect)
        self.sql = compiled.string
        self._table_name = table._table.name
        self._sources = tuple(zip(names, changed, strict=True)) + tuple(
            (name, key) for name, (key, _) in zip(keys, key_columns, strict=True)
        )
        columns = [by_key[key] for _, key in self._sources]
        self._binds: tuple[Processor, ...] = tuple(
            column.type.dialect_impl(dialect).bind_processor(dialect) for column in columns
        )
        self._order = tuple(compiled.positiontup or ()) if compiled.positional else None

    def parameters(self, instance: Any, engine: Engine) -> Any:
        """The DBAPI parameters: the changed values, then the key (unchanged: a changed
        key keeps the ORM path)."""
        state = instance_state(instance).dict
        values = {}
        try:
            for (name, key), bind in zip(self._sources, self._binds, strict=True):
                value = state[key]
                values[name] = value if bind is None else bind(value)
        except Exception as error:
            raise _lone_statement.wrapped(error, self.sql, None, engine) from error
        return values if self._order is None else [values[name] for name in self._order]

    def check_found(self, row: Any) -> None:
        """No row came back: it was deleted (or its key changed) since it was loaded,
        which the ORM reports as stale data."""
        if row is None:
            raise StaleDataError(
                f"UPDATE statement on table '{self._table_name}' expected to update 1 "
                "row(s); 0 were matched."
            )
