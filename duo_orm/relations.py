"""What ``related()`` reaches: a relationship named, given as ``User.posts``, or a ``path()``.

A path is a chain of relationships, each starting where the previous one ends
(``path(User.posts, Post.comments)``). Filters, counts and loaders built here all
apply to the rows at the end of the chain; the hops before it only lead there.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import ColumnElement, and_, false, func, inspect, not_, select
from sqlalchemy.orm import (
    InstrumentedAttribute,
    Mapper,
    RelationshipProperty,
    aliased,
    joinedload,
    selectinload,
)
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.util import ClauseAdapter

from ._shown import shown
from .exceptions import InvalidQueryError


@dataclass(frozen=True)
class Path:
    """Relationships followed one after another; build it with :func:`path`."""

    hops: tuple[InstrumentedAttribute[Any], ...]
    loader: Literal["selectin", "joined"] | None = None


def path(*hops: Any, loader: Literal["selectin", "joined"] | None = None) -> Path:
    """``path(User.posts, Post.comments)``: from users through their posts to the comments.

    ``loader`` is the loader ``related()`` uses for it when it names none itself.
    """
    if not hops:
        raise InvalidQueryError("path() needs at least one relationship, such as User.posts")
    if loader not in (None, "selectin", "joined"):
        raise InvalidQueryError(f"loader must be 'selectin' or 'joined', not {shown(loader, 40)}")
    checked = tuple(_relationship_attribute(hop, "path()") for hop in hops)
    for before, after in itertools.pairwise(checked):
        target: Mapper[Any] = before.property.mapper
        if not target.isa(after.property.parent):
            raise InvalidQueryError(
                f"path(): {after} does not start where {before} ends ({target.class_.__name__})"
            )
    return Path(checked, loader)


def resolve(model: type, target: Any) -> tuple[InstrumentedAttribute[Any], ...]:
    """The hops ``target`` names, starting at ``model``; a typed error for anything else."""
    mapper: Mapper[Any] = model.__mapper__  # type: ignore[attr-defined]
    if isinstance(target, str):
        if target not in mapper.relationships:
            raise InvalidQueryError(
                f"{model.__name__} has no relationship {shown(target, 40)}; relationships "
                f"are: {', '.join(mapper.relationships.keys()) or '(none)'}"
            )
        hops: tuple[InstrumentedAttribute[Any], ...] = (getattr(model, target),)
    elif isinstance(target, Path):
        hops = target.hops
    else:
        hops = (_relationship_attribute(target, "related()"),)
    start: Mapper[Any] = hops[0].property.parent
    if not mapper.isa(start):
        raise InvalidQueryError(
            f"related() on {model.__name__} needs a relationship of {model.__name__}, not {hops[0]}"
        )
    return hops


def condition(where: Any) -> ColumnElement[bool] | None:
    """``where=`` as one condition: a column expression, or a list of them (all must hold)."""
    if where is None:
        return None
    items = list(where) if isinstance(where, (list, tuple)) else [where]
    for item in items:
        expression = isinstance(item, ClauseElement) or hasattr(item, "__clause_element__")
        if not expression or isinstance(item, (str, bool)):
            raise InvalidQueryError(
                "related(where=...) takes a condition on the related model, or a list of them "
                f"(such as Order.total > 10), not {shown(item, 60)}"
            )
    if not items:
        return None
    return items[0] if len(items) == 1 else and_(*items)


def matched(
    hops: Sequence[InstrumentedAttribute[Any]], where: ColumnElement[bool], every: bool
) -> ColumnElement[bool]:
    """Parents with a related row matching ``where`` or, for ``every``, with none failing it.

    A row for which ``where`` is NULL (``Order.total > 10`` on a NULL total) counts
    as failing it, so "every" never keeps a parent on an unknown.
    """
    inner: ColumnElement[bool] = not_(func.coalesce(where, false())) if every else where
    for hop in reversed(hops):
        inner = hop.any(inner) if hop.property.uselist else hop.has(inner)
    return not_(inner) if every else inner


def count(
    model: type, hops: Sequence[InstrumentedAttribute[Any]], where: ColumnElement[bool] | None
) -> ColumnElement[int]:
    """A correlated subquery: how many rows at the end of ``hops`` each parent has.

    Inside it the parent, and every hop back to the parent's table (friends of a
    user), are aliased: the only ``model`` table left is the one correlated to the
    outer query. ``where``, written against the model at the end, follows its alias.
    """
    mapper: Mapper[Any] = model.__mapper__  # type: ignore[attr-defined]
    parent: Any = aliased(model)
    statement = select(func.count()).select_from(parent)
    current: Any = parent
    for hop in hops:
        target: Any = hop.property.mapper.class_
        if hop.property.mapper.local_table is mapper.local_table:
            target = aliased(target)
            statement = statement.join(getattr(current, hop.key).of_type(target))
            if where is not None and hop is hops[-1]:
                where = ClauseAdapter(inspect(target).selectable).traverse(where)
        else:
            statement = statement.join(getattr(current, hop.key))
        current = target
    keys = [mapper.get_property_by_column(column).key for column in mapper.primary_key]
    statement = statement.where(*(getattr(parent, key) == getattr(model, key) for key in keys))
    if where is not None:
        statement = statement.where(where)
    return statement.correlate(model).scalar_subquery()


def loader_option(
    hops: Sequence[InstrumentedAttribute[Any]], loader: str, where: ColumnElement[bool] | None
) -> Any:
    """Eager loading of every hop; only the last one's rows are narrowed by ``where``."""
    if loader == "joined" and len(hops) > 1 and any(hop.property.uselist for hop in hops):
        raise InvalidQueryError(
            "loader='joined' through a path with a collection multiplies rows at every hop; "
            "use loader='selectin'"
        )
    last = hops[-1].and_(where) if where is not None else hops[-1]
    chain = [*hops[:-1], last]
    option = selectinload(chain[0]) if loader == "selectin" else joinedload(chain[0])
    for hop in chain[1:]:
        option = option.selectinload(hop) if loader == "selectin" else option.joinedload(hop)
    return option


def count_filters(having: Any) -> list[Callable[[Any], Any]]:
    """``having=``: a function of the count expression, or a list of them."""
    if having is None:
        return []
    items = list(having) if isinstance(having, (list, tuple)) else [having]
    for item in items:
        if not callable(item) or isinstance(item, ClauseElement):
            raise InvalidQueryError(
                "related(having=...) takes functions of the count, such as "
                f"lambda count: count > 10, not {shown(item, 60)}"
            )
    return items


def count_ordering(order_by: Any, count: ColumnElement[int]) -> list[ColumnElement[Any]]:
    """``order_by=["-count"]``: the count ascending or descending, or a function of it."""
    if order_by is None:
        return []
    items = list(order_by) if isinstance(order_by, (list, tuple)) else [order_by]
    terms: list[ColumnElement[Any]] = []
    for item in items:
        if isinstance(item, str) and item in ("count", "-count"):
            terms.append(count.desc() if item == "-count" else count.asc())
        elif callable(item) and not isinstance(item, ClauseElement):
            terms.append(_expression(item(count), "order_by"))
        else:
            raise InvalidQueryError(
                "related(order_by=...) sorts by the count only: 'count', '-count', or a "
                f"function of the count; not {shown(item, 60)} (sort by fields with "
                "the query's own order_by())"
            )
    return terms


def having_condition(check: Callable[[Any], Any], count: ColumnElement[int]) -> Any:
    return _expression(check(count), "having")


def _expression(value: Any, name: str) -> Any:
    if not isinstance(value, ColumnElement) or isinstance(value, bool):
        raise InvalidQueryError(
            f"related({name}=...) functions must return a SQL expression of the count, "
            f"not {shown(value, 60)}"
        )
    return value


def _relationship_attribute(value: Any, where: str) -> InstrumentedAttribute[Any]:
    if isinstance(value, InstrumentedAttribute) and isinstance(
        value.property, RelationshipProperty
    ):
        return value
    raise InvalidQueryError(
        f"{where} takes relationships such as User.posts (or a relationship's name), "
        f"not {shown(value, 60)}"
    )
