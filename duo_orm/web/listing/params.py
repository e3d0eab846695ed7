"""``ListParams``: one request's checked listing choices, applied to a query to get a page."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from sqlalchemy import ColumnElement, and_, or_, tuple_
from sqlalchemy.orm import Session

from ... import dispatch
from ...exceptions import ConfigurationError, InvalidQueryError
from ...query import Query
from .cursor import EXPIRED, Cursor, sign
from .operators import condition
from .page import Page
from .spec import Listing
from .values import write

__all__ = ["ListParams", "Listed"]


class ListParams:
    """What the client asked for, checked against its ``Listing``: filters, sort, page.

    A plain class, not a dataclass: Litestar's signature model would try to convert a
    dataclass field by field when it passes the provider's value to the handler.
    """

    __slots__ = ("cursor", "filters", "items", "keyset", "listing", "page", "path", "size", "sort")

    def __init__(
        self,
        listing: Listing,
        *,
        sort: tuple[tuple[str, bool], ...],
        filters: tuple[tuple[str, str, Any], ...],
        size: int,
        page: int | None = None,
        keyset: bool = False,
        cursor: Cursor | None = None,
        path: str = "",
        items: tuple[tuple[str, str], ...] = (),
    ) -> None:
        self.listing = listing
        self.sort = sort  # (field, descending), as the client gave it
        self.filters = filters  # (field, operator, parsed value)
        self.size = size
        self.page = page  # offset pages (None: page 1, or cursor pages)
        self.keyset = keyset  # cursor pages
        self.cursor = cursor  # None: the first keyset page
        self.path = path
        self.items = items  # the query string, less page and cursor

    def __repr__(self) -> str:
        return (
            f"ListParams(sort={self.sort!r}, filters={self.filters!r}, size={self.size}, "
            f"page={self.page}, keyset={self.keyset})"
        )

    def apply(self, query: Any) -> Listed:
        """``query`` (a model, or a ``Query`` with the route's own conditions) filtered,
        sorted and ready for ``.page()``; it must not be ordered or paged already."""
        if isinstance(query, type):
            query = Query(query)
        if not isinstance(query, Query) or query.model is not self.listing.model:
            raise ConfigurationError(
                f"ListParams.apply() takes a {self.listing.model.__name__} query"
            )
        if query.ordering or query.limit_value is not None or query.offset_value is not None:
            raise ConfigurationError(
                "ListParams.apply() sorts and pages the query itself: "
                "drop order_by(), limit() and offset()"
            )
        model = query.model
        conditions = [
            condition(op, getattr(model, name), value) for name, op, value in self.filters
        ]
        return Listed(self, query.where(*conditions) if conditions else query)

    def ordering(self) -> list[tuple[str, bool]]:
        """The full ordering: the client's sort, then the primary key as the tie-breaker.

        The key runs the way the last sort field does, so ``-created_at`` is
        ``created_at DESC, id DESC``: one direction, which an index on
        ``(created_at, id)`` serves forwards and backwards.
        """
        chosen = list(self.sort)
        named = {name for name, _ in chosen}
        descending = chosen[-1][1] if chosen else False
        chosen += [(name, descending) for name in self.listing.primary_key if name not in named]
        return chosen

    def link(self, **replace: str) -> str:
        query = urlencode([*self.items, *replace.items()])
        return f"{self.path}?{query}"


@dataclass(frozen=True)
class Listed:
    """A filtered query and the request's choices; ``.page()`` runs it."""

    params: ListParams
    query: Query[Any]

    def page(self) -> Any:
        """The page (a ``Page`` of model instances): a value in sync code, an awaitable
        in async code. Offset pages run the COUNT (if the listing counts) and the
        page's SELECT in one read transaction; cursor pages run one SELECT."""
        params = self.params
        model = self.query.model
        keys = [(getattr(model, name), desc) for name, desc in params.ordering()]
        op = self._keyset(keys) if params.keyset else self._offset(keys)
        return dispatch.run(model.__duo_database__, op, "read")

    def _offset(self, keys: Sequence[tuple[Any, bool]]) -> Any:
        params, size = self.params, self.params.size
        number = params.page or 1
        ordered = dataclasses.replace(self.query, ordering=tuple(_ordered(keys, False)))
        window = ordered.limit(size + 1).offset((number - 1) * size)

        def op(session: Session) -> Page[Any]:
            rows = _fetch(session, window)
            total = None
            if params.listing.count:
                total = int(session.execute(self.query._count_statement()).scalar_one())
            return Page[Any](
                items=rows[:size],
                size=size,
                page=number,
                total=total,
                next=params.link(page=str(number + 1)) if len(rows) > size else None,
                previous=params.link(page=str(number - 1)) if number > 1 else None,
            )

        return op

    def _keyset(self, keys: Sequence[tuple[Any, bool]]) -> Any:
        params, size = self.params, self.params.size
        cursor = params.cursor
        backward = cursor is not None and cursor.direction == "before"
        query = self.query
        if cursor is not None:
            names = [name for name, _ in params.ordering()]
            if len(cursor.keys) != len(names):  # made before the model's key changed
                raise InvalidQueryError(EXPIRED)
            types = params.listing.types
            values = [
                types[n].read("cursor", text) for n, text in zip(names, cursor.keys, strict=True)
            ]
            query = query.where(_beyond(keys, values, backward))
        ordered = dataclasses.replace(query, ordering=tuple(_ordered(keys, backward)))
        window = ordered.limit(size + 1)

        def op(session: Session) -> Page[Any]:
            rows = _fetch(session, window)
            more = len(rows) > size
            rows = rows[:size]
            if backward:
                rows.reverse()
            has_next = cursor is not None if backward else more
            has_previous = more if backward else cursor is not None
            return Page[Any](
                items=rows,
                size=size,
                next=self._cursor_link("after", rows[-1]) if rows and has_next else None,
                previous=self._cursor_link("before", rows[0]) if rows and has_previous else None,
            )

        return op

    def _cursor_link(self, direction: Any, row: Any) -> str:
        params = self.params
        names = [name for name, _ in params.ordering()]
        sort = ",".join(("-" if desc else "") + name for name, desc in params.sort)
        made = Cursor(direction, sort, tuple(write(getattr(row, n)) for n in names))
        listing = params.listing
        token = sign(made, listing.cursor_key(), listing.model.__name__)
        return params.link(cursor=token)


def _ordered(keys: Sequence[tuple[Any, bool]], reverse: bool) -> list[ColumnElement[Any]]:
    return [c.desc() if desc != reverse else c.asc() for c, desc in keys]


def _beyond(keys: Sequence[tuple[Any, bool]], values: Sequence[Any], backward: bool) -> Any:
    """Rows strictly after (or before) the row with ``values`` in the ``keys`` order.

    One row-value comparison when every key runs the same way (an index range scan on
    PostgreSQL and SQLite); the expanded ``a > x OR (a = x AND b > y)`` otherwise.
    """
    directions = {desc != backward for _, desc in keys}
    if len(directions) == 1:
        descending = directions.pop()
        columns = [c for c, _ in keys]
        if len(columns) == 1:
            return columns[0] < values[0] if descending else columns[0] > values[0]
        left, right = tuple_(*columns), tuple(values)  # each value bound as its column's type
        return left < right if descending else left > right
    alternatives = []
    for index, (column, desc) in enumerate(keys):
        equal = [c == v for (c, _), v in zip(keys[:index], values, strict=False)]
        step = column < values[index] if desc != backward else column > values[index]
        alternatives.append(and_(*equal, step))
    return or_(*alternatives)


def _fetch(session: Session, query: Query[Any]) -> list[Any]:
    result = session.scalars(query.alchemize())
    if query.has_collection_join_load:
        result = result.unique()
    return list(result.all())
