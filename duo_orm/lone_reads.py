"""Lone reads that skip the ORM session when nothing would notice.

``Model.get(key)`` in statement mode is one SELECT of one row of one table. Sent
through ``Session.get`` it also pays for a session begun and closed around it, an
ORM compile-cache lookup, an execution context and a result object: most of the
call on SQLite, where the statement itself takes microseconds. For a model the
ORM would load column by column anyway, this module sends a SELECT compiled once
on a pooled DBAPI connection and builds the instance as the ORM's loader does,
detached the way a closed session leaves it.

A count or an exists is one value: it runs on a ``Connection`` (``Scalar``), whose
events and logging are all there, without the session around it; so do the rows of
``all()`` and ``first()`` on one table (``Rows``), built into instances as above.

Whatever could tell the ORM path from these takes it instead: inheritance,
eagerly loaded relationships, deferred or computed columns, ``load`` events,
``do_orm_execute`` listeners, (for point reads) engine listeners and SQL
logging, per-model binds, replicas and per-test isolation.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Sequence
from operator import itemgetter
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from sqlalchemy import Column, Dialect, Engine, Table, and_, bindparam, select
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.orm import ColumnProperty, Mapper, class_mapper
from sqlalchemy.orm.attributes import instance_state

from . import _asyncpg_statement, _compiled_reads, _lone_statement
from ._driver_sql import watched
from ._result_values import Processor, ResultProcessors
from .session import DuoSession

if TYPE_CHECKING:
    from .database import Database

T = TypeVar("T")

# Relationship loaders that leave a freshly loaded instance's dictionary alone (the
# ORM sets nothing for them at load time; an access later is the loader's business).
_LAZY_LOADERS = frozenset({"select", True, "raise", "raise_on_sql", "dynamic", "write_only"})
# Drivers (name, driver, async) whose connection this module can run one
# autocommitted read on.
_DRIVERS = frozenset(
    {
        ("sqlite", "pysqlite", False),
        ("postgresql", "psycopg", False),
        ("postgresql", "psycopg2", False),
        ("postgresql", "psycopg", True),
        ("postgresql", "asyncpg", True),
    }
)
_PLANS = "__duo_lone_reads__"  # model attribute: {(dialect, driver, async): _Plan | None}


class ByKey(Generic[T]):
    """A lone read of one row by primary key, for ``dispatch`` to run past the session.

    ``then`` turns the instance (or ``None``) into the call's result. Each run gives
    ``NotImplemented`` when the ORM must do the read instead.
    """

    __slots__ = ("ident", "model", "then")

    def __init__(self, model: type[Any], ident: Any, then: Callable[[Any], T]) -> None:
        self.model = model
        self.ident = ident if isinstance(ident, tuple) else (ident,)
        self.then = then

    def run(self, db: Database) -> T:
        engine = engine_for(db)
        if engine is None or (plan := _plan(self.model, engine.dialect)) is None:
            return NotImplemented  # type: ignore[no-any-return]
        return self.then(plan.fetch(engine, self.ident))

    async def run_async(self, db: Database) -> T:
        engine = async_engine_for(db)
        if engine is None or (plan := _plan(self.model, engine.dialect)) is None:
            return NotImplemented  # type: ignore[no-any-return]
        return self.then(await plan.fetch_async(engine, self.ident))


class Scalar(Generic[T]):
    """A lone read of one value (a count, an exists): sent to the driver compiled once
    per shape (``_compiled_reads``) where it can be, else on a ``Connection``."""

    __slots__ = ("model", "statement", "then")

    def __init__(self, model: type[Any], statement: Any, then: Callable[[Any], T]) -> None:
        self.model, self.statement, self.then = model, statement, then

    def run(self, db: Database) -> T:
        if not (session_free(db, session_class_of(db)) and plain_columns(self.model) is not None):
            return NotImplemented  # type: ignore[no-any-return]
        if (sent := _sent(db, self.statement)) is not None:
            shape, row, description = sent
            return self.then(shape.results.values(row, description)[0])
        with db._engines.sync_engine("single_read").connect() as connection:
            return self.then(connection.execute(self.statement).scalar_one())

    async def run_async(self, db: Database) -> T:
        if not (session_free(db, DuoSession) and plain_columns(self.model) is not None):
            return NotImplemented  # type: ignore[no-any-return]
        if (sent := await _sent_async(db, self.statement)) is not None:
            shape, row, description = sent
            return self.then(shape.results.values(row, description)[0])
        async with db._engines.async_engine("single_read").connect() as connection:
            return self.then((await connection.execute(self.statement)).scalar_one())


class Rows(Generic[T]):
    """A lone read of whole rows of one table (``all()``, ``first()``): the model's
    columns selected, sent as ``Scalar`` sends its statement, and the instances built as
    ``ByKey`` builds its one. The caller leaves joins out: through them one row can come
    back twice, and the ORM would hand back the same instance both times."""

    __slots__ = ("model", "statement", "then")

    def __init__(self, model: type[Any], statement: Any, then: Callable[[list[Any]], T]) -> None:
        self.model, self.statement, self.then = model, statement, then

    def run(self, db: Database) -> T:
        if not session_free(db, session_class_of(db)):
            return NotImplemented  # type: ignore[no-any-return]
        engine = db._engines.sync_engine("single_read")
        if (plan := _plan(self.model, engine.dialect)) is None:
            return NotImplemented  # type: ignore[no-any-return]
        statement = plan.columns_of(self.statement)
        if (sent := _sent(db, statement, many=True)) is not None:
            _, rows, description = sent
            return self.then(plan.instances(rows, description))
        with engine.connect() as connection:
            rows = connection.execute(statement).all()
        return self.then([plan.loaded(row) for row in rows])

    async def run_async(self, db: Database) -> T:
        if not session_free(db, DuoSession):
            return NotImplemented  # type: ignore[no-any-return]
        engine = db._engines.async_engine("single_read")
        if (plan := _plan(self.model, engine.dialect)) is None:
            return NotImplemented  # type: ignore[no-any-return]
        statement = plan.columns_of(self.statement)
        if (sent := await _sent_async(db, statement, many=True)) is not None:
            _, rows, description = sent
            return self.then(plan.instances(rows, description))
        async with engine.connect() as connection:
            rows = (await connection.execute(statement)).all()
        return self.then([plan.loaded(row) for row in rows])


# A statement sent to the driver: its compiled shape, the row (every row with ``many``)
# and the cursor's description.
Sent = tuple[_compiled_reads.Shape, Any, Any]


def _sent(db: Database, statement: Any, many: bool = False) -> Sent | None:
    """``statement`` sent past ``Connection`` (``_compiled_reads``) by a read its caller
    found session-free; ``None`` if it must run on one: an engine someone watches, a
    driver not sent to, SQL that depends on the values."""
    engine = db._engines.sync_engine()
    found = _compiled_reads.prepared(statement, engine.dialect) if _unobserved(engine) else None
    if found is None:
        return None
    shape, parameters = found
    return shape, *_lone_statement.run(engine, shape.sql, parameters, many=many)


async def _sent_async(db: Database, statement: Any, many: bool = False) -> Sent | None:
    engine = db._engines.async_engine()
    direct = _direct_async(db, engine)
    found = _compiled_reads.prepared(statement, engine.dialect) if direct else None
    if found is None:
        return None
    shape, parameters = found
    return shape, *await send_async(engine, shape.sql, parameters, many=many)


async def send_async(
    engine: AsyncEngine, sql: str, parameters: Any, *, many: bool = False
) -> _lone_statement.Outcome:
    """One autocommitted statement on ``engine``'s driver (see ``_DRIVERS``)."""
    if engine.dialect.driver == "asyncpg":
        return await _asyncpg_statement.run_async(engine, sql, parameters, many=many)
    return await _lone_statement.run_async(engine, sql, parameters, many=many)


def engine_for(db: Database) -> Engine | None:
    """The sync engine ``db``'s point reads may run on past ``Connection``, if any."""
    if not session_free(db, session_class_of(db)):
        return None
    engine = db._engines.sync_engine()
    return engine if _unobserved(engine) else None


def async_engine_for(db: Database) -> AsyncEngine | None:
    """The async engine ``db``'s point reads may run on past ``Connection``, if any
    (its sessions are ``DuoSession`` itself, made by an ``async_sessionmaker``)."""
    if not session_free(db, DuoSession):
        return None
    engine = db._engines.async_engine()
    return engine if _direct_async(db, engine) else None


def _direct_async(db: Database, engine: AsyncEngine) -> bool:
    """``_unobserved``, and not asyncpg behind a transaction pooler, which may not find
    a statement asyncpg prepared on the server connection that runs it."""
    pooled_asyncpg = engine.dialect.driver == "asyncpg" and db._engines.transaction_pooled
    return not pooled_asyncpg and _unobserved(engine.sync_engine)


def session_class_of(db: Database) -> type[Any]:
    """The class of ``db``'s sync sessions (a sessionmaker's subclass, once made)."""
    factory = db._sync_factory
    return DuoSession if factory is None else factory.class_


def session_free(db: Database, session_class: type[Any]) -> bool:
    """Whether a lone read may skip ``db``'s session: no replicas to route to, no test
    transaction to join, no per-model binds, no ``do_orm_execute`` listener."""
    return (
        db._router is None
        and db._isolation is None
        and "binds" not in db._session_options
        and not _orm_execute_listened(session_class)
    )


def _unobserved(engine: Engine) -> bool:
    """Whether a read may also skip ``Connection``: a driver this module knows, and
    nobody watching the engine's statements."""
    dialect = engine.dialect
    return (dialect.name, dialect.driver, dialect.is_async) in _DRIVERS and not watched(engine)


_PROBES: weakref.WeakKeyDictionary[type[Any], Any] = weakref.WeakKeyDictionary()


def _orm_execute_listened(session_class: type[Any]) -> bool:
    """Whether a ``do_orm_execute`` listener (on ``Session``, a subclass or a
    sessionmaker) would see this class's sessions: asked of a bare instance, whose
    event collection follows the class-level listeners as they come and go."""
    return bool(session_probe(session_class).dispatch.do_orm_execute)


def session_probe(session_class: type[Any]) -> Any:
    """A bare instance of ``session_class``, to ask which listeners its sessions have."""
    probe = _PROBES.get(session_class)
    if probe is None:
        probe = _PROBES[session_class] = object.__new__(session_class)
    return probe


_PLAIN = "__duo_plain_columns__"  # model attribute: _plain_columns(), once


def plain_columns(model: type[Any]) -> list[tuple[str, Column[Any]]] | None:
    """``_plain_columns`` of ``model``'s mapper, worked out once."""
    if _PLAIN not in model.__dict__:
        setattr(model, _PLAIN, _plain_columns(class_mapper(model)))
    found: list[tuple[str, Column[Any]]] | None = model.__dict__[_PLAIN]
    return found


def _plan(model: type[Any], dialect: Dialect) -> _Plan | None:
    plans: dict[tuple[str, str, bool], _Plan | None] | None = model.__dict__.get(_PLANS)
    if plans is None:
        plans = {}
        setattr(model, _PLANS, plans)
    key = (dialect.name, dialect.driver, dialect.is_async)
    if key not in plans:
        columns = plain_columns(model)
        plans[key] = None if columns is None else _Plan(model, columns, dialect)
    return plans[key]


def _plain_columns(mapper: Mapper[Any]) -> list[tuple[str, Column[Any]]] | None:
    """``(attribute, column)`` of every mapped column, if the ORM would load this model
    by copying each into the instance's dictionary and nothing else; else ``None``."""
    table = mapper.local_table
    if (
        not isinstance(table, Table)
        or mapper.persist_selectable is not table
        or mapper.inherits is not None
        or mapper.polymorphic_on is not None
        or mapper.polymorphic_map
        or mapper.with_polymorphic
        or mapper.always_refresh
        or mapper.class_manager.dispatch.load  # a reconstructor, a composite, a listener
        or mapper.class_manager.dispatch.refresh
    ):
        return None
    if any(relationship.lazy not in _LAZY_LOADERS for relationship in mapper.relationships):
        return None
    found = []
    for prop in mapper.attrs:
        if not isinstance(prop, ColumnProperty):
            continue
        column = prop.columns[0]
        if (
            len(prop.columns) != 1
            or prop.deferred
            or not isinstance(column, Column)
            or column.table is not table
        ):
            return None
        found.append((prop.key, column))
    return found


class _Plan:
    """One model's point read on one dialect: the SQL, compiled once, and how to turn
    its parameters and row into values."""

    def __init__(
        self, model: type[Any], columns: list[tuple[str, Column[Any]]], dialect: Dialect
    ) -> None:
        mapper = class_mapper(model)
        key_columns = list(mapper.primary_key)
        names = [f"duo_pk_{number}" for number in range(len(key_columns))]
        pairs = zip(key_columns, names, strict=True)
        matches = [column == bindparam(name) for column, name in pairs]
        statement = select(*(column for _, column in columns)).where(and_(*matches))
        compiled = statement.compile(dialect=dialect)
        self.sql = compiled.string
        self.keys = tuple(key for key, _ in columns)
        self._columns = tuple(column for _, column in columns)
        positions = [self._columns.index(column) for column in key_columns]
        # the primary key's values out of a row's, as a tuple
        self._key_of: Callable[[Sequence[Any]], tuple[Any, ...]] = (
            itemgetter(*positions) if len(positions) > 1 else _one_item(positions[0])
        )
        self._binds: tuple[Processor, ...] = tuple(
            column.type.dialect_impl(dialect).bind_processor(dialect) for column in key_columns
        )
        # positional paramstyles (qmark) take a list in this order; the others a dict
        self._order = tuple(compiled.positiontup or ()) if compiled.positional else None
        self._names = tuple(names)
        self._manager = mapper.class_manager
        self._identity_key = mapper.identity_key_from_primary_key
        self._results = ResultProcessors(self._columns, dialect)

    def parameters(self, ident: Sequence[Any]) -> Any:
        values = {
            name: value if bind is None or value is None else bind(value)
            for name, value, bind in zip(self._names, ident, self._binds, strict=True)
        }
        return values if self._order is None else [values[name] for name in self._order]

    def fetch(self, engine: Engine, ident: Sequence[Any]) -> Any:
        row, description = _lone_statement.run(engine, self.sql, self.parameters(ident))
        return None if row is None else self.instance(row, description)

    async def fetch_async(self, engine: AsyncEngine, ident: Sequence[Any]) -> Any:
        parameters = self.parameters(ident)
        row, description = await send_async(engine, self.sql, parameters)
        return None if row is None else self.instance(row, description)

    def columns_of(self, statement: Any) -> Any:
        """``statement`` (a ``select(model)``) selecting this plan's columns instead."""
        return statement.with_only_columns(*self._columns)

    def instance(self, row: Sequence[Any], description: Any) -> Any:
        """A detached instance holding the DBAPI ``row`` (values as the driver gave them)."""
        return self.loaded(self._results.values(row, description))

    def instances(self, rows: Sequence[Sequence[Any]], description: Any) -> list[Any]:
        """``instance`` of each DBAPI row."""
        return [self.loaded(values) for values in self._results.rows(rows, description)]

    def loaded(self, values: Sequence[Any]) -> Any:
        """A detached instance holding ``values`` (Python values, in this plan's column
        order), as a closed session leaves a loaded one."""
        instance = self._manager.new_instance()
        state = instance_state(instance)
        state.dict.update(zip(self.keys, values, strict=True))
        state.key = self._identity_key(self._key_of(values))
        return instance


def _one_item(position: int) -> Callable[[Sequence[Any]], tuple[Any, ...]]:
    return lambda values: (values[position],)
