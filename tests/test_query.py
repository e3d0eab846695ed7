"""The query builder: chaining, terminals, string names resolved safely, related loading."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import anyio
import pytest
from sqlalchemy import Select
from sqlalchemy.orm.exc import DetachedInstanceError

from duo_orm import (
    ConfigurationError,
    InvalidQueryError,
    MultipleObjectsFoundError,
    ObjectNotFoundError,
    Page,
    Query,
    ValidationError,
)

from .models import Models

NAMES = ["carol", "alice", "bob", "dave", "alice"]


def seed(models: Models) -> object:
    """Five users; returns the count, or an awaitable of it in async code."""
    return models.User.create_bulk(
        [
            {"email": f"u{i}@x.io", "name": name, "age": 20 + i, "active": i % 2 == 0}
            for i, name in enumerate(NAMES)
        ]
    )


@pytest.fixture
def sm(m: Models) -> Iterator[Models]:
    seed(m)
    yield m


@pytest.fixture
async def asm(am: Models) -> AsyncIterator[Models]:
    await seed(am)  # type: ignore[misc]
    yield am


def emails(users: list[object]) -> list[str]:
    return [u.email for u in users]  # type: ignore[attr-defined]


def test_queries_are_immutable(sm: Models) -> None:
    User = sm.User
    base = User.where(User.active == True)  # noqa: E712
    narrowed = base.where(User.age > 21)
    ordered = base.order_by("-age")
    assert isinstance(base, Query)
    assert base.count() == 3 and narrowed.count() == 2
    assert emails(ordered.all()) == ["u4@x.io", "u2@x.io", "u0@x.io"]
    assert base.conditions != narrowed.conditions and base.ordering == ()


def test_order_by_strings_descending_and_expressions_sync(sm: Models) -> None:
    User = sm.User
    assert emails(User.order_by("name", "-age").all()) == [
        "u4@x.io",
        "u1@x.io",
        "u2@x.io",
        "u0@x.io",
        "u3@x.io",
    ]
    assert emails(User.order_by(User.age.desc()).limit(2).all()) == ["u4@x.io", "u3@x.io"]
    assert emails(User.order_by(User.name, "id").all())[:2] == ["u1@x.io", "u4@x.io"]


@pytest.mark.anyio
async def test_where_order_limit_offset_async(asm: Models) -> None:
    User = asm.User
    page = await User.where(User.active == True).order_by("-age", "name").limit(2).offset(1).all()  # noqa: E712
    assert emails(page) == ["u2@x.io", "u0@x.io"]
    assert emails(await User.paginate(2, offset=3).order_by("id").all()) == ["u3@x.io", "u4@x.io"]
    assert await User.where(User.name == "alice").count() == 2
    assert (await User.where(User.email == "u2@x.io").first()).name == "bob"
    assert await User.where(User.email == "nobody").first() is None


@pytest.mark.parametrize(
    "bad",
    ["nmae", "name; DROP TABLE users", "-", "", "lower(name)", "users.name", "--name", "validate"],
)
def test_order_by_refuses_anything_but_mapped_columns(sm: Models, bad: str) -> None:
    with pytest.raises(InvalidQueryError) as info:
        sm.User.order_by(bad)
    assert "fields are: id, email, name, age, active, created_at, updated_at" in str(info.value)
    assert sm.User.count() == 5  # and nothing happened to the table


def test_order_by_refuses_other_objects(sm: Models) -> None:
    with pytest.raises(InvalidQueryError):
        sm.User.order_by(3)


def test_order_by_allowed_is_the_only_list_a_client_sees(sm: Models) -> None:
    by_name = sm.User.order_by("-name", "id", allowed=("id", "name")).all()
    assert [u.name for u in by_name] == ["dave", "carol", "bob", "alice", "alice"]
    for hidden in ("email", "-age", "nmae"):  # a real column or not: the same answer
        with pytest.raises(InvalidQueryError) as info:
            sm.User.order_by(hidden, allowed=("id", "name"))
        name = hidden.lstrip("-")
        assert (
            str(info.value) == f"User cannot be sorted by {name!r}; sortable fields are: id, name"
        )
    assert sm.User.order_by(sm.User.age.desc(), allowed=()).first().age == 24


def test_order_by_quotes_a_long_value_cut_short(sm: Models) -> None:
    for allowed in (None, ("id",)):
        with pytest.raises(InvalidQueryError) as info:
            sm.User.order_by("x" * 60_000, allowed=allowed)
        message = str(info.value)
        assert len(message) < 200 and "(60000 characters)" in message
        assert "'" + "x" * 40 + "'" in message


def test_order_by_allowed_must_name_fields(sm: Models) -> None:
    with pytest.raises(ConfigurationError, match="'secret'"):
        sm.User.order_by("id", allowed=("id", "secret"))
    with pytest.raises(ConfigurationError, match=r"allowed=\('name',\)"):
        sm.User.order_by("name", allowed="name")


def test_filter_by_and_unknown_field(sm: Models) -> None:
    assert emails(sm.User.filter_by(name="alice", active=True).all()) == ["u4@x.io"]
    with pytest.raises(InvalidQueryError) as info:
        sm.User.filter_by(nmae="alice")
    assert "'nmae'" in str(info.value)


def test_where_refuses_strings_and_booleans(sm: Models) -> None:
    for bad in ("name = 'x'", True, None):
        with pytest.raises(InvalidQueryError):
            sm.User.where(bad)


@pytest.mark.parametrize("value", [-1, "10", 1.5, True])
def test_limit_offset_refuse_bad_values(sm: Models, value: object) -> None:
    with pytest.raises(InvalidQueryError):
        sm.User.limit(value)  # type: ignore[arg-type]
    with pytest.raises(InvalidQueryError):
        sm.User.offset(value)  # type: ignore[arg-type]


def test_count_honours_limit_and_offset_including_zero(sm: Models) -> None:
    User = sm.User
    assert User.count() == 5
    assert User.limit(0).count() == 0  # as len(User.limit(0).all())
    assert User.limit(0).all() == []
    assert User.offset(3).count() == 2 and User.offset(0).count() == 5
    assert User.where(User.active == True).limit(2).count() == 2  # noqa: E712


def test_one_and_one_or_none_sync(sm: Models) -> None:
    User = sm.User
    assert User.where(User.email == "u1@x.io").one().name == "alice"
    with pytest.raises(ObjectNotFoundError):
        User.where(User.email == "none").one()
    with pytest.raises(MultipleObjectsFoundError):
        User.filter_by(name="alice").one()
    assert User.filter_by(name="zed").one_or_none() is None
    with pytest.raises(MultipleObjectsFoundError):
        User.filter_by(name="alice").one_or_none()


@pytest.mark.anyio
async def test_one_count_exists_async(asm: Models) -> None:
    User = asm.User
    assert (await User.filter_by(name="dave").one()).email == "u3@x.io"
    with pytest.raises(ObjectNotFoundError):
        await User.filter_by(name="zed").one()
    assert await User.count() == 5
    assert await User.exists() is True
    assert await User.where(User.age > 100).exists() is False
    assert await User.limit(2).count() == 2  # limit applies to count


def test_page_returns_items_and_total_sync(sm: Models) -> None:
    page = sm.User.order_by("id").page(2, 2)
    assert isinstance(page, Page)
    assert emails(page.items) == ["u2@x.io", "u3@x.io"]
    assert (page.total, page.number, page.size, page.pages) == (5, 2, 2, 3)
    assert sm.User.order_by("id").page(4, 2).items == []
    with pytest.raises(InvalidQueryError):
        sm.User.page(0, 10)
    with pytest.raises(InvalidQueryError):
        sm.User.page(1, 0)


@pytest.mark.anyio
async def test_page_async_ignores_earlier_limit(asm: Models) -> None:
    page = await asm.User.where(asm.User.active == True).limit(1).order_by("-id").page(1, 2)  # noqa: E712
    assert emails(page.items) == ["u4@x.io", "u2@x.io"] and page.total == 3


def test_case_insensitive_text_operators(sm: Models) -> None:
    sm.User.create(email="MiXeD@X.io", name="Zoe")
    User = sm.User
    assert emails(User.where(User.email.icontains("mixed")).all()) == ["MiXeD@X.io"]
    assert User.where(User.name.istartswith("zo")).count() == 1
    assert User.where(User.name.iendswith("OE")).count() == 1
    assert User.where(User.name.in_(["bob", "dave"])).count() == 2


def test_distinct_join_and_alchemize(sm: Models) -> None:
    m = sm
    ann = m.Customer.create(name="ann")
    ben = m.Customer.create(name="ben")
    m.Customer.create(name="cat")
    m.Order.create_bulk(
        [
            {"total": 5, "customer_id": ann.id},
            {"total": 50, "customer_id": ann.id},
            {"total": 7, "customer_id": ben.id},
        ]
    )
    buyers = m.Customer.join(m.Order).where(m.Order.total > 1).distinct().order_by("name").all()
    assert [c.name for c in buyers] == ["ann", "ben"]
    everyone = m.Customer.join(m.Order, kind="left").distinct().count()
    assert everyone == 3
    explicit = m.Customer.join(m.Order, on=m.Order.customer_id == m.Customer.id).count()
    assert explicit == 3  # one row per order
    statement = m.Customer.where(m.Customer.name == "ann").order_by("-id").alchemize()
    assert isinstance(statement, Select)
    with m.db.sync_standalone_session() as session:
        assert [c.name for c in session.scalars(statement)] == ["ann"]
    with pytest.raises(InvalidQueryError):
        m.Customer.join(m.Order, kind="outer")  # type: ignore[arg-type]


def make_shop(models: Models) -> None:
    """Customers with 3, 1 and 0 orders (sync: call it from a worker thread in async tests)."""
    ann = models.Customer.create(name="ann")
    ben = models.Customer.create(name="ben")
    models.Customer.create(name="cat")
    models.Order.create_bulk(
        [
            {"total": 5, "customer_id": ann.id},
            {"total": 50, "customer_id": ann.id},
            {"total": 70, "customer_id": ann.id},
            {"total": 7, "customer_id": ben.id},
        ]
    )


def test_related_eager_loads_for_detached_use_sync(m: Models) -> None:
    make_shop(m)
    plain = m.Customer.order_by("name").first()
    with pytest.raises(DetachedInstanceError):
        _ = plain.orders  # statement mode: nothing loaded, no session to load with
    for loader in ("selectin", "joined"):
        customers = m.Customer.related("orders", loader=loader).order_by("name").all()
        assert [len(c.orders) for c in customers] == [3, 1, 0]
    orders = m.Order.related("customer").order_by("total").all()
    assert [o.customer.name for o in orders] == ["ann", "ben", "ann", "ann"]


@pytest.mark.anyio
async def test_related_where_filters_parents_and_loaded_rows_async(am: Models) -> None:
    await anyio.to_thread.run_sync(make_shop, am)
    big = await am.Customer.related("orders", where=am.Order.total > 10).all()
    assert [c.name for c in big] == ["ann"]
    assert sorted(o.total for o in big[0].orders) == [50, 70]
    scalar = await am.Order.related("customer", where=am.Customer.name == "ben").all()
    assert [o.total for o in scalar] == [7]


def test_related_count_filters_and_orders_sync(m: Models) -> None:
    make_shop(m)
    C = m.Customer
    assert [
        c.name for c in C.related("orders", aggregate="count", min_count=1).order_by("name").all()
    ] == ["ann", "ben"]
    assert [c.name for c in C.related("orders", aggregate="count", max_count=0).all()] == ["cat"]
    ranked = C.related("orders", aggregate="count", order_by_count="desc").all()
    assert [c.name for c in ranked] == ["ann", "ben", "cat"]
    many_big = C.related("orders", where=m.Order.total > 10, aggregate="count", min_count=2).all()
    assert [c.name for c in many_big] == ["ann"]


def test_related_refuses_bad_input(m: Models) -> None:
    with pytest.raises(InvalidQueryError) as info:
        m.Customer.related("ordres")
    assert "relationships are: orders" in str(info.value)
    with pytest.raises(InvalidQueryError):
        m.Customer.related("orders", loader="lazy")  # type: ignore[arg-type]
    with pytest.raises(InvalidQueryError):
        m.Customer.related("orders", min_count=1)
    with pytest.raises(InvalidQueryError):
        m.Customer.related("orders", aggregate="sum")  # type: ignore[arg-type]


def test_queries_join_an_open_transaction(sm: Models) -> None:
    with sm.db.transaction():
        sm.User.create(email="new@x.io", name="new")
        assert sm.User.count() == 6  # sees its own uncommitted row
        first = sm.User.order_by("id").first()
        assert sm.User.get(first.id) is first  # one identity map
    assert sm.User.count() == 6


def test_class_level_shortcuts(sm: Models) -> None:
    User = sm.User
    assert len(User.all()) == 5
    assert User.first() is not None
    assert User.count() == 5 and User.exists()
    assert User.page(1, 10).total == 5
    assert User.limit(1).one().email == "u0@x.io"
    assert len(User.distinct().all()) == 5
    assert User.query().where(User.id > 0).count() == 5
    with pytest.raises(MultipleObjectsFoundError):
        User.one()
    with pytest.raises(MultipleObjectsFoundError):
        User.one_or_none()


def test_payload_errors_still_typed_in_queries(sm: Models) -> None:
    with pytest.raises(ValidationError) as info:
        sm.User.where(sm.User.id > 0).update_bulk({"nmae": "x"})
    assert info.value.field == "nmae"
