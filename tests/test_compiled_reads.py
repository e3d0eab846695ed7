"""Lone counts and lists sent to the driver compiled once per shape (duo_orm._compiled_reads).

In statement mode ``count()``, ``exists()``, ``all()`` and ``first()`` of one table send
their SELECT past ``Connection``: the SQL compiled once for the query's shape, the
values bound as the dialect binds them. What a user relies on: every query gives
what the same query gives inside a transaction (the ORM session), with its own
values even when an earlier query of the same shape was different, for every
column type; shapes whose SQL depends on the values (IN lists) still work.
"""

from __future__ import annotations

import datetime as dt
import decimal
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from sqlalchemy import event, inspect

from duo_orm import Database

from .conftest import async_tables, tables
from .test_lone_reads import ROW, Colour, define


def rows() -> list[dict[str, Any]]:
    made = []
    for n in range(6):
        made.append(
            {
                **ROW,
                "name": f"lamp {n}%" if n % 2 else f"desk_{n}",
                "price": decimal.Decimal(f"{n}.25"),
                "seen_at": dt.datetime(2026, 11, 20 + n, 8, 30, tzinfo=dt.UTC),
                "on": dt.date(2026, 11, 20 + n),
                "active": n % 3 == 0,
                "colour": Colour.red if n < 3 else Colour.blue,
                "token": uuid.UUID(int=n),
                "data": None if n == 4 else {"n": n},
                "hidden": n == 5,
            }
        )
    return made


# Queries of every column type, as (label, build): build(Item) gives a query.
QUERIES: list[tuple[str, Callable[[Any], Any]]] = [
    ("everything", lambda Item: Item.order_by("id")),
    ("renamed column", lambda Item: Item.where(Item.name == "desk_2")),
    ("like with a %", lambda Item: Item.where(Item.name.contains("%")).order_by("-id")),
    ("decimal", lambda Item: Item.where(Item.price > decimal.Decimal("2.00"))),
    ("datetime", lambda Item: Item.where(Item.seen_at >= dt.datetime(2026, 11, 23, tzinfo=dt.UTC))),
    ("date", lambda Item: Item.where(Item.on < dt.date(2026, 11, 22))),
    ("bool", lambda Item: Item.where(Item.active.is_(True))),
    ("enum", lambda Item: Item.where(Item.colour == Colour.blue)),
    ("uuid", lambda Item: Item.where(Item.token == uuid.UUID(int=3))),
    ("not null", lambda Item: Item.where(Item.data.is_not(None), Item.hidden.is_(False))),
    ("in a list", lambda Item: Item.where(Item.id.in_([1, 3, 5]))),
    ("page", lambda Item: Item.order_by("-price").limit(2).offset(1)),
]


def values(instance: Any) -> dict[str, Any]:
    return {k: v for k, v in inspect(instance).dict.items() if not k.startswith("_")}


@pytest.fixture
def s(url: str) -> Iterator[Any]:
    with tables(Database(url), define) as models:
        models.Item.create_bulk(rows())
        yield models


@pytest.mark.parametrize(("label", "build"), QUERIES, ids=[label for label, _ in QUERIES])
def test_each_query_gives_what_a_transaction_gives(
    s: Any, label: str, build: Callable[[Any], Any]
) -> None:
    query = build(s.Item)
    alone = ([values(i) for i in query.all()], query.count(), query.exists(), query.first())
    with s.db.transaction():
        inside = ([values(i) for i in query.all()], query.count(), query.exists(), query.first())
    assert alone[:3] == inside[:3]
    assert (alone[3] is None) == (inside[3] is None)
    assert alone[3] is None or values(alone[3]) == values(inside[3])
    assert alone[1] > 0  # every query finds something, so the comparison says something


def test_queries_of_one_shape_bind_their_own_values(s: Any) -> None:
    Item = s.Item
    for n in range(6):
        assert Item.where(Item.price == decimal.Decimal(f"{n}.25")).count() == 1
        [found] = Item.where(Item.token == uuid.UUID(int=n)).all()
        assert found.price == decimal.Decimal(f"{n}.25")
        assert Item.where(Item.id > n).count() == 6 - n
    assert Item.where(Item.price == decimal.Decimal("9.99")).first() is None


def test_engine_listeners_see_counts_and_lists(s: Any) -> None:
    seen: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        seen.append(statement)

    engine = s.db.sync_engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        assert s.Item.where(s.Item.active.is_(True)).count() == 2
        assert len(s.Item.order_by("id").limit(3).all()) == 3
    finally:
        event.remove(engine, "before_cursor_execute", record)
    assert len(seen) == 2 and all("FROM items" in statement for statement in seen)


@pytest.mark.anyio
async def test_async_queries_give_what_a_transaction_gives(url: str) -> None:
    async with async_tables(Database(url), define) as s:
        await s.Item.create_bulk(rows())
        for _, build in QUERIES:
            query = build(s.Item)
            alone = ([values(i) for i in await query.all()], await query.count())
            async with s.db.transaction():
                inside = ([values(i) for i in await query.all()], await query.count())
            assert alone == inside
        for n in range(6):
            assert await s.Item.where(s.Item.id > n).count() == 6 - n
