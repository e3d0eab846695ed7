"""``Listing``: what a client may filter, sort and page on, declared once per route or model.

The query-string syntax (the same in every framework):

- ``?sort=-created_at,name``: comma-separated sortable fields, ``-`` for descending
  (``sort`` may also repeat, as OpenAPI clients send an array); the primary key is
  always the last tie-breaker (in the last field's direction), so pages never
  overlap or skip rows;
- ``?name__icontains=al``, ``?id__in=1,2,3``, ``?name=Ann`` (``eq``): a declared field,
  two underscores, a declared operator; the value is parsed by the column's type;
- ``?page=3&size=20``: offset pages (the total counted if the listing says so);
- ``?cursor=&size=20``: keyset pages, from the first (``cursor`` empty), then through
  the ``next``/``previous`` links, whose cost does not grow with the depth.

Any other parameter that names a model field or contains ``__`` is an unknown filter
(400, not silently ignored); the rest are the route's own business and are kept in
the links.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import inspect
from sqlalchemy.orm import Mapper

from ..._shown import shown
from ...exceptions import ConfigurationError, InvalidQueryError
from . import cursor as cursors
from .operators import MAX_IN_VALUES, OPERATORS, TEXT_OPERATORS
from .values import BOOLEAN, INTEGER, FieldType, field_type

if TYPE_CHECKING:
    from .params import ListParams

__all__ = ["MAX_PAGE", "Listing"]

SEPARATOR = "__"
RESERVED = ("sort", "page", "size", "cursor")
MAX_PAGE = 1_000_000  # deeper offset pages are refused: use the cursor


@dataclass(frozen=True, eq=False)
class Listing:
    """The allow-lists and limits of one list endpoint.

    E.g.::

        users = Listing(
            User,
            sort=("id", "name", "created_at"),
            filters={"name": ("eq", "icontains"), "created_at": ("ge", "lt")},
        )

    ``default_sort`` (default: the primary key) applies when the client sends none;
    ``count=False`` skips the ``COUNT(*)`` of offset pages (``total`` is then null);
    ``secret`` signs cursors (see ``duo_orm.web.listing.cursor`` for the default).
    A field or operator that cannot work is refused here, at import, not per request.
    """

    model: type
    sort: Iterable[str] = ()
    filters: Mapping[str, Iterable[str]] = field(default_factory=dict)
    default_sort: str | None = None
    default_size: int = 20
    max_size: int = 100
    count: bool = True
    secret: str | bytes | None = field(default=None, repr=False)
    # worked out from the above in __post_init__
    sortable: tuple[str, ...] = field(init=False)
    operators: dict[str, tuple[str, ...]] = field(init=False)
    types: dict[str, FieldType] = field(init=False, repr=False)
    primary_key: tuple[str, ...] = field(init=False)
    keyset: bool = field(init=False)

    def __post_init__(self) -> None:
        mapper: Mapper[Any] = inspect(self.model)
        columns = {prop.key: prop.columns[0] for prop in mapper.column_attrs}
        if isinstance(self.sort, str):
            raise ConfigurationError(f"Listing(sort=...) takes field names, not {self.sort!r}")
        sortable = tuple(self.sort)
        operators = {name: _operators(name, ops) for name, ops in self.filters.items()}
        unknown = [n for n in (*sortable, *operators) if n not in columns]
        if unknown:
            raise ConfigurationError(
                f"Listing names {', '.join(map(repr, unknown))}, not fields of "
                f"{self.model.__name__}"
            )
        pk = tuple(mapper.get_property_by_column(c).key for c in mapper.primary_key)
        types = {name: field_type(self.model, name) for name in {*sortable, *operators, *pk}}
        for name, ops in operators.items():
            if TEXT_OPERATORS.intersection(ops) and types[name].parse is not str:
                raise ConfigurationError(f"{name}: text operators need a text column")
        if not 1 <= self.default_size <= self.max_size:
            raise ConfigurationError("Listing needs 1 <= default_size <= max_size")
        set_ = object.__setattr__
        set_(self, "sortable", sortable)
        set_(self, "operators", operators)
        set_(self, "types", types)
        set_(self, "primary_key", pk)
        # keyset pages need a total order; a NULL sort key has no place in one
        set_(self, "keyset", not any(columns[n].nullable for n in {*sortable, *pk}))
        if self.default_sort is not None:
            try:
                self.sort_terms([self.default_sort])
            except InvalidQueryError as exc:  # the code's mistake, not a client's
                raise ConfigurationError(f"Listing(default_sort=...): {exc}") from None

    # -- parsing ---------------------------------------------------------------

    def parse(self, items: Iterable[tuple[str, str]], path: str = "") -> ListParams:
        """The client's query string (``(name, value)`` pairs) as checked ``ListParams``.

        ``path`` is the request's path, the base of the ``next``/``previous`` links.
        Anything wrong is an ``InvalidQueryError``: a 400 through every adapter.
        """
        from .params import ListParams

        items = list(items)
        given: dict[str, list[str]] = {}
        for name, value in items:
            given.setdefault(name, []).append(value)
        for name, values in given.items():
            if len(values) > 1 and name != "sort":
                raise InvalidQueryError(f"{shown(name, 40)} is given more than once")
        single = {name: values[0] for name, values in given.items()}
        size = self._integer(single, "size", self.default_size, self.max_size)
        page = self._integer(single, "page", None, MAX_PAGE)
        cursor = self._cursor(single.get("cursor"))
        if page is not None and "cursor" in single:
            raise InvalidQueryError("page and cursor cannot be combined: pick one pagination")
        if "cursor" in single and not self.keyset:
            raise InvalidQueryError("this list has no cursor pagination; use page")
        sort = self.sort_terms(given.get("sort", [self.default_sort] if self.default_sort else []))
        if cursor is not None:
            if "sort" in given and _sort_text(sort) != cursor.sort:
                raise InvalidQueryError("sort differs from the cursor's: drop one of them")
            sort = self.sort_terms([cursor.sort])
        filters = self._filters(single)
        return ListParams(
            self,
            sort=sort,
            filters=filters,
            size=size,
            page=page,
            keyset="cursor" in single,
            cursor=cursor,
            path=path,
            items=tuple((n, v) for n, v in items if n not in ("page", "cursor")),
        )

    def sort_terms(self, values: Iterable[str]) -> tuple[tuple[str, bool], ...]:
        """``["-created_at,name"]`` as ``(("created_at", True), ("name", False))``."""
        terms: list[tuple[str, bool]] = []
        for value in values:
            for part in value.split(","):
                name = part.strip()
                if not name:  # "sort=" or a trailing comma: nothing asked
                    continue
                descending = name.startswith("-")
                name = name[1:] if descending else name
                if name not in self.sortable:
                    raise InvalidQueryError(
                        f"cannot sort by {shown(name, 40)}; sortable fields are: "
                        f"{', '.join(self.sortable) or '(none)'}"
                    )
                if any(name == seen for seen, _ in terms):
                    raise InvalidQueryError(f"sort names {shown(name, 40)} twice")
                terms.append((name, descending))
        return tuple(terms)

    def _integer(self, given: dict[str, str], name: str, default: Any, most: int) -> Any:
        text = given.get(name)
        if text is None:
            return default
        value = INTEGER.read(name, text)
        if not 1 <= value <= most:
            raise InvalidQueryError(f"{name} must be between 1 and {most}, got {value}")
        return value

    def _cursor(self, token: str | None) -> cursors.Cursor | None:
        if not token:  # absent, or empty: the first keyset page
            return None
        found = cursors.verify(token, self.cursor_key(), self.model.__name__)
        self.sort_terms([found.sort])  # still sortable this way
        return found

    def cursor_key(self) -> bytes:
        return cursors.cursor_key(self.secret)

    def _filters(self, given: dict[str, str]) -> tuple[tuple[str, str, Any], ...]:
        filters: list[tuple[str, str, Any]] = []
        fields: set[str] = set(inspect(self.model).attrs.keys())  # relationships too
        for parameter, text in given.items():
            if parameter in RESERVED:
                continue
            name, _, operator = parameter.partition(SEPARATOR)
            if not operator and name not in fields:
                continue  # the route's own parameter
            operator = operator or "eq"
            if name not in self.operators:
                filterable = ", ".join(self.operators) or "(none)"
                raise InvalidQueryError(
                    f"cannot filter by {shown(name, 40)}; filterable fields are: {filterable}"
                )
            if operator not in self.operators[name]:
                raise InvalidQueryError(
                    f"{name} cannot be filtered with {shown(operator, 20)}; "
                    f"operators for {name}: {', '.join(self.operators[name])}"
                )
            filters.append((name, operator, self._value(parameter, name, operator, text)))
        return tuple(filters)

    def _value(self, parameter: str, name: str, operator: str, text: str) -> Any:
        if operator == "is_null":
            return BOOLEAN.read(parameter, text)
        kind = self.types[name]
        if operator == "in":
            parts = text.split(",")
            if len(parts) > MAX_IN_VALUES:
                raise InvalidQueryError(f"{parameter} takes at most {MAX_IN_VALUES} values")
            return [kind.read(parameter, part) for part in parts]
        return kind.read(parameter, text)


def _operators(name: str, given: Iterable[str]) -> tuple[str, ...]:
    if isinstance(given, str):
        raise ConfigurationError(f"Listing(filters={{{name!r}: ...}}) takes a tuple of operators")
    chosen = tuple(given)
    unknown = [op for op in chosen if op not in OPERATORS]
    if unknown or not chosen:
        raise ConfigurationError(
            f"Listing(filters={{{name!r}: ...}}): operators are {', '.join(OPERATORS)}; "
            f"got {', '.join(map(repr, chosen)) or 'none'}"
        )
    return chosen


def _sort_text(terms: Iterable[tuple[str, bool]]) -> str:
    return ",".join(("-" if descending else "") + name for name, descending in terms)
