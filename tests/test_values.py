"""Values no column can hold never reach the driver raw, through every ORM entry point.

Each bad class (an integer out of its column's range on this database, NUL in a
string, an unpaired surrogate, a key no row can have) goes through get, get_one,
where().all/first/count, create, create_bulk, update, update_bulk, save and delete,
in sync code (a worker thread, where calls run synchronously) and async code, on
SQLite and PostgreSQL. Payloads get ``ValidationError`` naming the field with
nothing written; lookups get a missing row without a statement being sent.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import anyio
import anyio.to_thread
import pytest
from sqlalchemy import BigInteger, Integer, SmallInteger, String, Text, TypeDecorator, event, select
from sqlalchemy.engine import Engine

from duo_orm import Database, Mapped, mapped_column
from duo_orm.exceptions import InvalidQueryError, ObjectNotFoundError, ValidationError

from .conftest import async_tables, count_rows

pytestmark = pytest.mark.anyio

NUL = "a\x00b"
SURROGATE = "a\ud800b"


class Opaque(TypeDecorator[Any]):
    """A custom type: duo-orm cannot know what it accepts, so only the driver checks."""

    impl = Integer
    cache_ok = True


class OpaqueText(TypeDecorator[Any]):
    impl = Text
    cache_ok = True


@dataclass
class Gauges:
    db: Database
    Gauge: Any
    Tag: Any


def define_gauges(db: Database) -> Gauges:
    class Gauge(db.Model):
        __tablename__ = "gauges"
        id: Mapped[int] = mapped_column(primary_key=True)
        small: Mapped[int | None] = mapped_column(SmallInteger)
        medium: Mapped[int | None]
        big: Mapped[int | None] = mapped_column(BigInteger)
        name: Mapped[str] = mapped_column(String(50), default="g")
        note: Mapped[str | None] = mapped_column(Text)
        opaque: Mapped[int | None] = mapped_column(Opaque)
        opaque_text: Mapped[str | None] = mapped_column(OpaqueText)

    class Tag(db.Model):
        __tablename__ = "tags"
        code: Mapped[str] = mapped_column(String(20), primary_key=True)

    return Gauges(db, Gauge, Tag)


def too_big(dialect: str) -> list[tuple[str, int]]:
    """(field, value) pairs each just outside its column's range on ``dialect``."""
    if dialect == "sqlite":  # every INTEGER is 64-bit there
        return [("small", 2**63), ("medium", -(2**63) - 1), ("big", 2**63)]
    return [("small", 2**15), ("medium", 2**31), ("medium", -(2**31) - 1), ("big", 2**63)]


def largest(dialect: str) -> dict[str, int]:
    if dialect == "sqlite":
        return {"small": 2**63 - 1, "medium": -(2**63), "big": 2**63 - 1}
    return {"small": 2**15 - 1, "medium": -(2**31), "big": 2**63 - 1}


BAD_TEXT = [("name", NUL), ("name", SURROGATE), ("note", "\x00"), ("note", "x\udfffy")]


def bad_values(dialect: str, kind: str) -> list[tuple[str, Any]]:
    if kind == "int":
        return list(too_big(dialect))
    return [pair for pair in BAD_TEXT if (pair[1].find("\x00") >= 0) == (kind == "nul")]


IMPOSSIBLE_KEYS = {
    "sqlite": [2**63, -(2**63) - 1, 2**70, 10**5000],  # 10**5000: repr() refuses it
    "postgresql": [2**31, 2**70, 10**5000],
}

Call = Callable[[Callable[[], Any]], Awaitable[Any]]


@pytest.fixture(params=["sync", "async"])
def call(request: pytest.FixtureRequest) -> Call:
    """Run an ORM call as sync code (in a worker thread, no loop there) or as async code."""

    async def sync(fn: Callable[[], Any]) -> Any:
        return await anyio.to_thread.run_sync(fn)

    async def async_(fn: Callable[[], Any]) -> Any:
        return await fn()

    return sync if request.param == "sync" else async_


@pytest.fixture
async def g(url: str) -> AsyncIterator[Gauges]:
    async with async_tables(Database(url), define_gauges) as models:
        yield models


@contextmanager
def sent_statements() -> Iterator[list[tuple[str, Any]]]:
    """The SQL statements every engine sends to a database inside the block."""
    sent: list[tuple[str, Any]] = []

    def record(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        sent.append((statement, parameters))

    event.listen(Engine, "before_cursor_execute", record)
    try:
        yield sent
    finally:
        event.remove(Engine, "before_cursor_execute", record)


def sent_values(sent: list[tuple[str, Any]]) -> list[Any]:
    """Every parameter value of the recorded statements."""
    values: list[Any] = []
    for _, parameters in sent:
        batch = parameters if isinstance(parameters, list) else [parameters]
        for one in batch:
            values.extend(one.values() if isinstance(one, dict) else one or ())
    return values


def rows(g: Gauges) -> list[tuple[Any, ...]]:
    with g.db.sync_standalone_session() as session:
        table = g.Gauge.__table__
        return [tuple(row) for row in session.execute(select(table).order_by(table.c.id))]


async def refused(call: Call, fn: Callable[[], Any], field: str) -> ValidationError:
    with pytest.raises(ValidationError) as info:
        await call(fn)
    assert info.value.field == field, info.value
    return info.value


# -- the values that fit still go in -------------------------------------------------------


async def test_the_extremes_of_each_range_are_stored(g: Gauges, call: Call) -> None:
    edges = largest(g.db.dialect)
    created = await call(lambda: g.Gauge.create(edges, name="ünïcødé 😀"))
    again = await call(lambda: g.Gauge.get_one(created.id))
    assert {k: getattr(again, k) for k in edges} == edges
    assert again.name == "ünïcødé 😀"


# -- payloads: ValidationError naming the field, nothing written ----------------------------


@pytest.mark.parametrize("kind", ["int", "nul", "surrogate"])
async def test_create_refuses_values_no_column_holds(g: Gauges, call: Call, kind: str) -> None:
    for field, value in bad_values(g.db.dialect, kind):
        await refused(call, lambda f=field, v=value: g.Gauge.create({f: v}), field)
    assert count_rows(g, "gauges") == 0


@pytest.mark.parametrize("kind", ["int", "nul", "surrogate"])
@pytest.mark.parametrize("options", [{}, {"with_hooks": True}, {"return_models": True}])
async def test_create_bulk_refuses_them_and_writes_no_row(
    g: Gauges, call: Call, kind: str, options: dict[str, bool]
) -> None:
    for field, value in bad_values(g.db.dialect, kind):
        good = [{field: None if field != "name" else "ok"} for _ in range(300)]
        payloads = [*good, {field: value}, *good]
        await refused(
            call, lambda p=payloads: g.Gauge.create_bulk(p, batch_size=100, **options), field
        )
        mixed = [{"name": "ok", "note": None}, {"name": "ok"}, {field: value}]  # uneven keys
        await refused(call, lambda p=mixed: g.Gauge.create_bulk(p, **options), field)
    assert count_rows(g, "gauges") == 0


@pytest.mark.parametrize("kind", ["int", "nul", "surrogate"])
async def test_update_and_save_refuse_them_and_change_nothing(
    g: Gauges, call: Call, kind: str
) -> None:
    gauge = await call(lambda: g.Gauge.create(name="kept"))
    before = rows(g)
    for field, value in bad_values(g.db.dialect, kind):
        await refused(call, lambda f=field, v=value: gauge.update({f: v}), field)
        assert getattr(gauge, field) != value  # the instance is left as it was

        def assign_then_save(f: str = field, v: Any = value) -> Any:
            setattr(gauge, f, v)
            return gauge.save()

        await refused(call, assign_then_save, field)
        setattr(gauge, field, "kept" if field == "name" else None)
        await refused(call, lambda f=field, v=value: g.Gauge(**{f: v}).save(), field)
    assert rows(g) == before


@pytest.mark.parametrize("kind", ["int", "nul", "surrogate"])
@pytest.mark.parametrize("with_hooks", [False, True])
async def test_update_bulk_refuses_them_and_changes_nothing(
    g: Gauges, call: Call, kind: str, with_hooks: bool
) -> None:
    await call(lambda: g.Gauge.create_bulk([{"name": f"g{n}"} for n in range(3)]))
    before = rows(g)
    for field, value in bad_values(g.db.dialect, kind):
        query = g.Gauge.where(g.Gauge.id > 0)
        await refused(
            call,
            lambda q=query, f=field, v=value: q.update_bulk({f: v}, with_hooks=with_hooks),
            field,
        )
    assert rows(g) == before


async def test_a_refused_value_leaves_the_transaction_usable(g: Gauges) -> None:
    """On PostgreSQL a refused statement would abort the transaction; none is sent."""
    async with g.db.transaction():
        await g.Gauge.create(name="first")
        with pytest.raises(ValidationError):
            await g.Gauge.create(medium=2**70)
        assert await g.Gauge.get(2**70) is None
        assert await g.Gauge.where(g.Gauge.name == NUL).count() == 0
        with pytest.raises(ObjectNotFoundError):
            await g.Gauge(id=2**70, name="never").delete()
        await g.Gauge.create(name="second")
    assert sorted(r[4] for r in rows(g)) == ["first", "second"]


# -- keys no row can have: a missing row, answered without a statement ---------------------


async def test_get_and_get_one_treat_an_impossible_key_as_missing(g: Gauges, call: Call) -> None:
    await call(lambda: g.Gauge.create(name="there"))
    for key in IMPOSSIBLE_KEYS[g.db.dialect]:
        with sent_statements() as sent:
            assert await call(lambda k=key: g.Gauge.get(k)) is None
            with pytest.raises(ObjectNotFoundError):
                await call(lambda k=key: g.Gauge.get_one(k))
            assert await call(lambda k=key: g.Gauge.get(id=k)) is None
        assert sent == []
    for code in (NUL, SURROGATE):
        with sent_statements() as sent:
            assert await call(lambda c=code: g.Tag.get(c)) is None
            with pytest.raises(ObjectNotFoundError):
                await call(lambda c=code: g.Tag.get_one(c))
        assert sent == []


async def test_delete_and_refresh_of_an_impossible_key_are_not_found(g: Gauges, call: Call) -> None:
    await call(lambda: g.Gauge.create(name="there"))
    for key in IMPOSSIBLE_KEYS[g.db.dialect]:
        with sent_statements() as sent, pytest.raises(ObjectNotFoundError):
            await call(lambda k=key: g.Gauge(id=k, name="x").delete())
        assert sent == []
    with pytest.raises(ObjectNotFoundError):
        await call(lambda: g.Tag(code=NUL).delete())
    with sent_statements() as sent, pytest.raises(ObjectNotFoundError):
        await call(lambda: g.Tag(code=SURROGATE).refresh())
    assert sent == []
    assert count_rows(g, "gauges") == 1


async def test_a_malformed_key_is_still_a_bad_query(g: Gauges, call: Call) -> None:
    with pytest.raises(InvalidQueryError):
        await call(lambda: g.Gauge.get("1"))


# -- filters -------------------------------------------------------------------------------


async def test_equality_with_an_impossible_value_matches_nothing(g: Gauges, call: Call) -> None:
    await call(lambda: g.Gauge.create_bulk([{"name": "a", "medium": 1}, {"name": "b"}]))
    G = g.Gauge
    impossible = [(G.id, k) for k in IMPOSSIBLE_KEYS[g.db.dialect]] + [
        (getattr(G, f), v)
        for kind in ("int", "nul", "surrogate")
        for f, v in bad_values(g.db.dialect, kind)
    ]
    for column, value in impossible:
        with sent_statements() as sent:
            query = G.where(column == value)
            assert await call(query.all) == []
            assert await call(query.first) is None
            assert await call(query.count) == 0
            assert await call(G.filter_by(**{column.key: value}).count) == 0
        assert value not in sent_values(sent)  # the comparison was replaced, not sent
        everyone_else = await call(G.where(column != value).count)
        assert everyone_else == await call(G.where(column.is_not(None)).count)
        assert await call(G.where(column.in_([value])).count) == 0
        assert await call(G.where(G.name.in_(["a", "b"]), column.not_in([value])).count) == (
            everyone_else
        )


async def test_in_keeps_the_possible_members(g: Gauges, call: Call) -> None:
    first = await call(lambda: g.Gauge.create(name="a"))
    G = g.Gauge
    assert [x.id for x in await call(G.where(G.id.in_([2**70, first.id])).all)] == [first.id]
    assert await call(G.where(G.name.in_([NUL, "a", SURROGATE])).count) == 1
    assert await call(G.where(G.id.not_in([2**70, first.id])).count) == 0


@pytest.mark.parametrize(
    "condition",
    [
        lambda G: G.id > 2**70,
        lambda G: G.medium.between(0, 2**70),
        lambda G: G.name.contains(NUL),
        lambda G: G.name.startswith(SURROGATE),
        lambda G: G.name.like("%\x00%"),
    ],
)
async def test_other_comparisons_with_an_impossible_value_are_a_bad_query(
    g: Gauges, condition: Callable[[Any], Any]
) -> None:
    with pytest.raises(InvalidQueryError) as info:
        g.Gauge.where(condition(g.Gauge))
    assert "filter value" in str(info.value)


async def test_filters_in_update_bulk_and_delete_bulk_are_screened(g: Gauges, call: Call) -> None:
    await call(lambda: g.Gauge.create(name="kept"))
    G = g.Gauge
    assert await call(lambda: G.where(G.id == 2**70).update_bulk(name="x")) == 0
    assert await call(lambda: G.where(G.name == NUL).delete_bulk()) == 0
    assert await call(lambda: G.where(G.id == 2**70).delete_bulk(with_hooks=True)) == 0
    assert [r[4] for r in rows(g)] == ["kept"]


async def test_related_where_is_screened(url: str) -> None:
    from .models import define_models

    async with async_tables(Database(url), define_models) as m:
        customer = await m.Customer.create(name="c")
        await m.Order.create(total=1, customer_id=customer.id)
        query = m.Customer.related("orders", where=m.Order.total == 2**70)
        assert await query.all() == []
        assert await m.Customer.related("orders", where=m.Order.total == 1).count() == 1


async def test_update_bulk_checks_the_values_inside_expressions(g: Gauges, call: Call) -> None:
    await call(lambda: g.Gauge.create(name="kept", medium=1))
    before = rows(g)
    G = g.Gauge
    every = G.where(G.id > 0)
    await refused(call, lambda: every.update_bulk(medium=G.medium + 2**70), "medium")
    await refused(call, lambda: every.update_bulk(name=G.name + NUL), "name")
    await refused(call, lambda: every.update_bulk(name=G.name + SURROGATE, with_hooks=True), "name")
    assert await call(lambda: every.update_bulk(medium=G.medium + 1)) == 1
    assert rows(g)[0][2] == before[0][2] + 1


# -- the backstop: what only the driver can refuse is still a typed 4xx error ---------------


async def test_driver_refusals_are_translated(g: Gauges, call: Call) -> None:
    """Custom types are not checked by duo-orm; what the driver refuses is still a 422."""
    G = g.Gauge
    refusals: list[tuple[str, Any]] = [("opaque", 2**70), ("opaque_text", SURROGATE)]
    if g.db.dialect == "postgresql":  # SQLite stores these
        refusals += [("opaque", 2**31), ("opaque_text", NUL)]
    for field, value in refusals:
        with pytest.raises(ValidationError) as info:
            await call(lambda f=field, v=value: G.create({f: v}))
        assert "refused" in info.value.message or "could not send" in info.value.message
        assert str(value) not in info.value.message
        with pytest.raises(ValidationError):
            await call(lambda f=field, v=value: G.where(getattr(G, f) == v).all())
        with pytest.raises(ValidationError):
            await call(lambda f=field, v=value: G.create_bulk([{f: v}, {f: None}]))
    assert count_rows(g, "gauges") == 0
