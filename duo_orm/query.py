"""Chainable, immutable queries rooted at a model: ``User.where(...).order_by("-id").all()``.

A query only describes a SELECT; terminals (``all``, ``count``, ``update_bulk``,
...) run it through :mod:`duo_orm.dispatch` like every other ORM call, so they
return values in sync code and awaitables in async code. Names given as
strings resolve only to the model's mapped columns and never reach SQL text.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, Literal, TypeVar

from sqlalchemy import ColumnElement, Select, exists, func, select
from sqlalchemy.orm import (
    InstrumentedAttribute,
    Mapper,
    Session,
)
from sqlalchemy.sql.elements import UnaryExpression

from . import bulk, dispatch, relations, streaming
from ._shown import shown
from ._values import screen_condition
from .columns import column_specs
from .exceptions import (
    ConfigurationError,
    InvalidQueryError,
    MultipleObjectsFoundError,
    ObjectNotFoundError,
)
from .lone_reads import Rows, Scalar
from .payload import Payload
from .relations import Path

if TYPE_CHECKING:
    from .model import Model

M = TypeVar("M", bound="Model")

Loader = Literal["selectin", "joined"]
Aggregate = Literal["exists", "count", "all"]
JoinKind = Literal["inner", "left"]


_COUNT_ALL = "__duo_count_all__"  # model attribute: _count_all(), once


def _count_all(model: type[Model]) -> Select[Any]:
    """``SELECT count(*) FROM`` the model's table, built once. A statement is immutable
    and keeps its cache key, so a count without conditions is neither built nor keyed
    again (a sync count on SQLite went from 123 µs to 50). Kept on the class itself
    (a subclass has its own), so it goes when the model goes."""
    statement: Select[Any] | None = model.__dict__.get(_COUNT_ALL)
    if statement is None:
        statement = select(func.count()).select_from(model)
        statement._generate_cache_key()  # memoized before any other thread can see it
        setattr(model, _COUNT_ALL, statement)
    return statement


@dataclass(frozen=True)
class Page(Generic[M]):
    """One page of results and the total number of matching rows."""

    items: list[M]
    total: int
    number: int
    size: int

    @property
    def pages(self) -> int:
        return -(-self.total // self.size) if self.total else 0


@dataclass(frozen=True)
class Query(Generic[M]):
    """An immutable description of a SELECT of ``model`` rows; every chain call copies it."""

    model: type[M]
    conditions: tuple[ColumnElement[bool], ...] = ()
    ordering: tuple[ColumnElement[Any], ...] = ()
    limit_value: int | None = None
    offset_value: int | None = None
    joins: tuple[tuple[Any, Any, bool], ...] = ()
    loaders: tuple[Any, ...] = ()
    is_distinct: bool = False
    has_collection_join_load: bool = field(default=False)

    # -- chain ---------------------------------------------------------------

    def where(self, *conditions: Any) -> Query[M]:
        """Keep rows matching every condition (combine with ``&``, ``|``, ``~`` for more)."""
        for condition in conditions:
            if isinstance(condition, (str, bool)) or condition is None:
                raise InvalidQueryError(
                    f"where() takes column expressions such as {self.model.__name__}.id > 1, "
                    f"not {condition!r}"
                )
        dialect = self.model.__duo_database__.dialect
        screened = tuple(screen_condition(condition, dialect) for condition in conditions)
        return dataclasses.replace(self, conditions=self.conditions + screened)

    def filter_by(self, **equals: Any) -> Query[M]:
        """Keep rows whose columns equal the given values."""
        return self.where(*(self._column(name) == value for name, value in equals.items()))

    def order_by(self, *fields: Any, allowed: Iterable[str] | None = None) -> Query[M]:
        """Sort by ``"name"``, ``"-name"`` (descending), or column expressions.

        ``allowed`` names the only fields a string may sort by: pass it when the
        string comes from a client (``order_by(sort, allowed=("id", "name"))``), so a
        client can neither sort by a column the response hides nor learn its name
        from the error, which lists ``allowed`` alone. Column expressions are the
        code's own and are not restricted.
        """
        names = self._sortable(allowed)
        return dataclasses.replace(
            self, ordering=self.ordering + tuple(self._order_term(f, names) for f in fields)
        )

    def limit(self, count: int) -> Query[M]:
        return dataclasses.replace(self, limit_value=_non_negative("limit", count))

    def offset(self, count: int) -> Query[M]:
        return dataclasses.replace(self, offset_value=_non_negative("offset", count))

    def paginate(self, limit: int, offset: int = 0) -> Query[M]:
        return self.limit(limit).offset(offset)

    def distinct(self) -> Query[M]:
        return dataclasses.replace(self, is_distinct=True)

    def join(self, target: Any, on: Any = None, kind: JoinKind = "inner") -> Query[M]:
        """Join another model or a relationship (for filtering and ordering by it)."""
        if kind not in ("inner", "left"):
            raise InvalidQueryError(f"join kind must be 'inner' or 'left', not {kind!r}")
        return dataclasses.replace(self, joins=(*self.joins, (target, on, kind == "left")))

    def related(
        self,
        target: str | InstrumentedAttribute[Any] | Path,
        *,
        loader: Loader | None = None,
        where: Any = None,
        aggregate: Aggregate = "exists",
        min_count: int | None = None,
        max_count: int | None = None,
        order_by_count: Literal["asc", "desc"] | None = None,
        having: Any = None,
        order_by: Any = None,
    ) -> Query[M]:
        """Load a relationship with the rows, and optionally filter by it.

        ``target`` is a relationship's name, the relationship (``User.posts``) or a
        ``path(User.posts, Post.comments)``; filters and counts apply to the rows
        at its end. ``where`` (a condition on that model, or a list of them) loads
        only the matching related rows and keeps only parents that have one
        (``aggregate="exists"``) or whose related rows all match
        (``aggregate="all"``). With ``aggregate="count"`` parents are filtered by
        how many matching related rows they have (``min_count``/``max_count``, or
        ``having=`` functions of the count) and can be ordered by that number
        (``order_by_count="desc"``, or ``order_by=["-count"]``).
        """
        hops = relations.resolve(self.model, target)
        if loader is None:  # the path's own, else selectin
            loader = (target.loader if isinstance(target, Path) else None) or "selectin"
        elif loader not in ("selectin", "joined"):
            raise InvalidQueryError(f"loader must be 'selectin' or 'joined', not {loader!r}")
        if aggregate not in ("exists", "count", "all"):
            raise InvalidQueryError(
                f"aggregate must be 'exists', 'count' or 'all', not {aggregate!r}"
            )
        by_count = (min_count, max_count, order_by_count, having, order_by)
        if aggregate != "count" and by_count != (None,) * len(by_count):
            raise InvalidQueryError(
                "min_count, max_count, order_by_count, having and order_by need aggregate='count'"
            )
        if order_by_count not in (None, "asc", "desc"):
            raise InvalidQueryError(
                f"order_by_count must be 'asc' or 'desc', not {order_by_count!r}"
            )
        if order_by_count is not None and order_by is not None:
            raise InvalidQueryError("give order_by_count or order_by, not both")
        where = relations.condition(where)
        if where is not None:
            where = screen_condition(where, self.model.__duo_database__.dialect)
        if aggregate == "all" and where is None:
            raise InvalidQueryError("aggregate='all' needs a where= condition to hold for all")
        checks = relations.count_filters(having)
        query = dataclasses.replace(
            self,
            loaders=(*self.loaders, relations.loader_option(hops, loader, where)),
            has_collection_join_load=self.has_collection_join_load
            or (loader == "joined" and any(hop.property.uselist for hop in hops)),
        )
        if aggregate != "count":
            if where is None:
                return query
            return query.where(relations.matched(hops, where, every=aggregate == "all"))
        count = relations.count(self.model, hops, where)
        if min_count is not None:
            query = query.where(count >= _non_negative("min_count", min_count))
        if max_count is not None:
            query = query.where(count <= _non_negative("max_count", max_count))
        if checks:
            query = query.where(*(relations.having_condition(check, count) for check in checks))
        terms = relations.count_ordering(order_by, count)
        if order_by_count is not None:
            terms = [count.desc() if order_by_count == "desc" else count.asc()]
        return dataclasses.replace(query, ordering=(*query.ordering, *terms))

    # -- SQL -----------------------------------------------------------------

    def alchemize(self) -> Select[Any]:
        """The SQLAlchemy ``Select`` this query runs (the escape hatch)."""
        statement = select(self.model)
        for target, on, outer in self.joins:
            statement = (
                statement.join(target, on, isouter=outer)
                if on is not None
                else statement.join(target, isouter=outer)
            )
        if self.conditions:
            statement = statement.where(*self.conditions)
        if self.is_distinct:
            statement = statement.distinct()
        if self.ordering:
            statement = statement.order_by(*self.ordering)
        if self.limit_value is not None:
            statement = statement.limit(self.limit_value)
        if self.offset_value is not None:
            statement = statement.offset(self.offset_value)
        if self.loaders:
            statement = statement.options(*self.loaders)
        return statement

    def _count_statement(self) -> Select[Any]:
        limited = self.limit_value is not None or self.offset_value is not None
        if not (self.joins or self.is_distinct or limited):  # limit(0) counts no rows
            whole = _count_all(self.model)
            return whole.where(*self.conditions) if self.conditions else whole
        inner = dataclasses.replace(self, ordering=(), loaders=()).alchemize()
        return select(func.count()).select_from(inner.subquery())

    # -- terminals -----------------------------------------------------------

    def all(self) -> Any:
        """Every matching row, as a list."""
        statement = self.alchemize()
        return self._read(
            lambda session: self._fetch_all(session, statement),
            direct=self._rows(statement, list),
        )

    def first(self) -> Any:
        """The first matching row, or ``None``."""
        query = self.limit(1)
        statement = query.alchemize()
        return self._read(
            lambda session: next(iter(query._fetch_all(session, statement)), None),
            direct=query._rows(statement, lambda found: found[0] if found else None),
        )

    def one(self) -> Any:
        """Exactly one row, else ``ObjectNotFoundError`` or ``MultipleObjectsFoundError``."""

        def op(session: Session) -> M:
            found = self._fetch_at_most_one(session)
            if found is None:
                raise ObjectNotFoundError(f"No {self.model.__name__} matches this query")
            return found

        return self._read(op)

    def one_or_none(self) -> Any:
        """The one matching row or ``None``; ``MultipleObjectsFoundError`` for more."""
        return self._read(self._fetch_at_most_one)

    def count(self) -> Any:
        """How many rows match (limit and offset included)."""
        statement = self._count_statement()
        return self._read(
            lambda session: int(session.execute(statement).scalar_one()),
            direct=Scalar(self.model, statement, int),
        )

    def exists(self) -> Any:
        """Whether any row matches."""
        statement = select(exists(dataclasses.replace(self, loaders=()).alchemize()))
        return self._read(
            lambda session: bool(session.execute(statement).scalar_one()),
            direct=Scalar(self.model, statement, bool),
        )

    def page(self, number: int, size: int) -> Any:
        """Page ``number`` (from 1) of ``size`` rows, with the total count."""
        if isinstance(number, bool) or not isinstance(number, int) or number < 1:
            raise InvalidQueryError(f"page number must be an int >= 1, got {number!r}")
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            raise InvalidQueryError(f"page size must be an int >= 1, got {size!r}")
        unpaged = dataclasses.replace(self, limit_value=None, offset_value=None)
        window = unpaged.limit(size).offset((number - 1) * size)

        def op(session: Session) -> Page[M]:
            total = int(session.execute(unpaged._count_statement()).scalar_one())
            return Page(window._fetch_all(session), total, number, size)

        return self._read(op, statements=2)

    def iterate(self, batch_size: int = 200, batch: bool = False) -> Any:
        """Stream the rows (or lists of ``batch_size`` rows) in constant memory.

        Primary-key order unless the query is ordered. A generator in sync code,
        an async generator in async code; the rows come from one session that
        stays open until the iteration ends or the generator is closed.
        """
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise InvalidQueryError(f"batch_size must be an int >= 1, got {batch_size!r}")
        if self.has_collection_join_load:
            raise InvalidQueryError(
                "iterate() cannot stream a joined collection load; use loader='selectin'"
            )
        statement = self.alchemize()
        if not self.ordering:
            statement = statement.order_by(*_primary_key(self.model))
        return streaming.stream(self.model.__duo_database__, statement, batch_size, batch)

    def update_bulk(
        self,
        payload: Payload = None,
        /,
        *,
        with_hooks: bool = False,
        batch_size: int = 200,
        require_filter: bool = True,
        per_batch_transaction: bool = False,
        **fields: Any,
    ) -> Any:
        """UPDATE every matching row; returns the row count.

        All or nothing, unless ``per_batch_transaction=True`` lets each batch of a
        ``with_hooks=True`` walk commit on its own (outside transactions only).
        """
        self._check_bulk(require_filter, batch_size, "update_bulk")
        work = bulk.update_operation(
            self.model,
            self.conditions,
            payload,
            fields,
            with_hooks,
            batch_size,
            _flag("per_batch_transaction", per_batch_transaction),
        )
        return bulk.run(self.model.__duo_database__, work)

    def delete_bulk(
        self,
        *,
        with_hooks: bool = False,
        batch_size: int = 200,
        require_filter: bool = True,
        per_batch_transaction: bool = False,
    ) -> Any:
        """DELETE every matching row; returns the row count (batches as in ``update_bulk``)."""
        self._check_bulk(require_filter, batch_size, "delete_bulk")
        work = bulk.delete_operation(
            self.model,
            self.conditions,
            with_hooks,
            batch_size,
            _flag("per_batch_transaction", per_batch_transaction),
        )
        return bulk.run(self.model.__duo_database__, work)

    # -- helpers -------------------------------------------------------------

    def _rows(self, statement: Select[Any], then: Callable[[list[M]], Any]) -> Rows[Any] | None:
        """The session-free form of this query's rows (``statement``), for a query of
        one table."""
        return None if self.joins else Rows(self.model, statement, then)

    def _read(
        self, op: Any, statements: int = 1, direct: dispatch.Direct[Any] | None = None
    ) -> Any:
        """Run a read; one statement on its own needs no transaction (engines.Access),
        and a ``direct`` form of it needs no session (duo_orm.lone_reads).

        Loader options (``related()``) add a statement per relationship, and those
        must see the same snapshot as the first one.
        """
        database = self.model.__duo_database__
        if statements == 1 and not self.loaders:
            return dispatch.run(database, op, "single_read", direct)
        return dispatch.run(database, op, "read")

    def _fetch_all(self, session: Session, statement: Select[Any] | None = None) -> list[M]:
        """The rows of ``statement`` (this query's, when already built) as instances."""
        result = session.scalars(self.alchemize() if statement is None else statement)
        if self.has_collection_join_load:
            result = result.unique()
        return list(result.all())

    def _fetch_at_most_one(self, session: Session) -> M | None:
        query = self if self.limit_value is not None else self.limit(2)
        found = query._fetch_all(session)
        if len(found) > 1:
            raise MultipleObjectsFoundError(
                f"Expected one {self.model.__name__}, found more than one"
            )
        return found[0] if found else None

    def _check_bulk(self, require_filter: bool, batch_size: int, name: str) -> None:
        if self.joins or self.ordering or self.limit_value is not None or self.offset_value:
            raise InvalidQueryError(
                f"{name}() applies to where()/filter_by()/related(where=...) filters only; "
                "drop join(), order_by(), limit() and offset()"
            )
        if require_filter and not self.conditions:
            raise InvalidQueryError(
                f"{name}() without a where() would touch every row of "
                f"{self.model.__tablename__}; pass require_filter=False to mean it"  # type: ignore[attr-defined]
            )
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise InvalidQueryError(f"batch_size must be an int >= 1, got {batch_size!r}")

    def _column(self, name: str) -> InstrumentedAttribute[Any]:
        specs = column_specs(self.model)
        if not isinstance(name, str) or name not in specs:
            raise InvalidQueryError(
                f"{self.model.__name__} has no field {shown(name, 40)}; "
                f"fields are: {', '.join(specs)}"
            )
        attribute: InstrumentedAttribute[Any] = getattr(self.model, name)
        return attribute

    def _sortable(self, allowed: Iterable[str] | None) -> tuple[str, ...] | None:
        """The checked allow-list; a name that is not a field is the code's mistake."""
        if allowed is None:
            return None
        if isinstance(allowed, str):
            raise ConfigurationError(
                f"order_by(allowed=...) takes a collection of field names, not the string "
                f"{allowed!r}; write allowed=({allowed!r},)"
            )
        names = tuple(allowed)
        specs = column_specs(self.model)
        unknown = [name for name in names if name not in specs]
        if unknown:
            raise ConfigurationError(
                f"order_by(allowed=...) names {', '.join(map(repr, unknown))}, "
                f"not fields of {self.model.__name__}"
            )
        return names

    def _order_term(self, term: Any, allowed: tuple[str, ...] | None) -> ColumnElement[Any]:
        if isinstance(term, str):
            descending = term.startswith("-")
            name = term[1:] if descending else term
            if allowed is not None and name not in allowed:
                raise InvalidQueryError(
                    f"{self.model.__name__} cannot be sorted by {shown(name, 40)}; "
                    f"sortable fields are: {', '.join(allowed) or '(none)'}"
                )
            column = self._column(name)
            return column.desc() if descending else column.asc()
        if isinstance(term, (InstrumentedAttribute, UnaryExpression, ColumnElement)):
            return term  # type: ignore[return-value]
        raise InvalidQueryError(
            f"order_by() takes field names ('name', '-name') or column expressions, "
            f"not {type(term).__name__}"
        )


def _flag(name: str, value: bool) -> bool:
    if not isinstance(value, bool):
        raise InvalidQueryError(f"{name} must be True or False, not {shown(value, 40)}")
    return value


def _non_negative(name: str, value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidQueryError(f"{name} must be an int >= 0, got {value!r}")
    return value


def _primary_key(model: type) -> Sequence[Any]:
    mapper: Mapper[Any] = model.__mapper__  # type: ignore[attr-defined]
    return list(mapper.primary_key)
