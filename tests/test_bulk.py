"""update_bulk / delete_bulk (set-based and hooked, all or nothing) and iterate()."""

from __future__ import annotations

import gc
import tracemalloc
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import case, event, func

from duo_orm import (
    Database,
    IntegrityError,
    InvalidQueryError,
    Mapped,
    String,
    ValidationError,
    mapped_column,
)

from .conftest import async_tables, count_rows, user_emails
from .models import Models


def users(n: int) -> list[dict[str, object]]:
    return [{"email": f"u{i}@x.io", "name": f"user {i}", "age": i} for i in range(n)]


@contextmanager
def counting_writes(db: Database, engine: Any) -> Iterator[list[str]]:
    """The UPDATE/DELETE statements sent while the block runs."""
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_rest: Any) -> None:
        if statement.lstrip().upper().startswith(("UPDATE", "DELETE")):
            seen.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


def names(models: Models) -> dict[str, str]:
    with models.db.sync_standalone_session() as session:
        from sqlalchemy import select

        rows = session.execute(select(models.User.email, models.User.name))
        return {email: name for email, name in rows}


def test_update_bulk_without_hooks_is_one_statement_sync(m: Models) -> None:
    m.User.create_bulk(users(50))
    engine = m.db.sync_engine
    with counting_writes(m.db, engine) as writes:
        n = m.User.where(m.User.age >= 10).update_bulk({"name": m.User.name + "!"}, batch_size=7)
    assert n == 40 and len(writes) == 1
    after = names(m)
    assert after["u10@x.io"] == "user 10!" and after["u9@x.io"] == "user 9"


def test_update_bulk_sets_updated_at_without_hooks(m: Models) -> None:
    [first] = m.User.create_bulk(users(1), return_models=True)
    m.User.where(m.User.id == first.id).update_bulk(age=99)
    fresh = m.User.get_one(first.id)
    assert fresh.age == 99 and fresh.updated_at > first.updated_at
    assert fresh.created_at == first.created_at


@pytest.mark.anyio
async def test_update_bulk_with_hooks_runs_validate_and_timestamps_async(am: Models) -> None:
    created = await am.User.create_bulk(users(30), return_models=True)
    n = await am.User.where(am.User.id > 0).update_bulk(
        {"name": am.User.name + "!"}, with_hooks=True, batch_size=7
    )
    assert n == 30
    loaded = await am.User.order_by("id").all()
    assert all(u.name.endswith("!") for u in loaded)
    assert all(u.updated_at > c.updated_at for u, c in zip(loaded, created, strict=True))
    with pytest.raises(ValidationError) as info:
        await am.User.where(am.User.id > 0).update_bulk({"name": "invalid"}, with_hooks=True)
    assert info.value.field == "name"
    assert all(u.name.endswith("!") for u in await am.User.all())


def test_update_bulk_values_are_checked_before_anything_runs(m: Models) -> None:
    m.User.create_bulk(users(3))
    with pytest.raises(ValidationError) as info:
        m.User.where(m.User.id > 0).update_bulk({"name": "x" * 51})
    assert info.value.field == "name"
    with pytest.raises(ValidationError):
        m.User.where(m.User.id > 0).update_bulk({"age": "old"})
    with pytest.raises(InvalidQueryError):
        m.User.where(m.User.id > 0).update_bulk({})
    assert names(m)["u1@x.io"] == "user 1"


def test_hook_failure_midway_through_10000_rows_leaves_table_unchanged(m: Models) -> None:
    m.User.create_bulk(users(10_000), batch_size=2_000)
    before = names(m)
    victim = m.User.where(m.User.email == "u6000@x.io").one()
    new_name = case((m.User.id == victim.id, "invalid"), else_=m.User.name + "!")
    with pytest.raises(ValidationError):
        m.User.where(m.User.id > 0).update_bulk({"name": new_name}, with_hooks=True)
    assert names(m) == before  # the 5,999 rows before it were rolled back too


@pytest.mark.anyio
async def test_hook_failure_inside_a_transaction_rolls_back_only_the_bulk_async(
    am: Models,
) -> None:
    await am.User.create_bulk(users(20))
    async with am.db.transaction():
        await am.User.create(email="kept@x.io", name="kept")
        with pytest.raises(ValidationError):
            await am.User.where(am.User.age > 5).update_bulk(
                {"name": case((am.User.age == 15, "invalid"), else_="changed")},
                with_hooks=True,
                batch_size=4,
            )
        assert await am.User.where(am.User.name == "changed").count() == 0
    assert "kept@x.io" in user_emails(am)  # the enclosing transaction went on and committed


def ages_and_names(models: Models) -> dict[str, tuple[int | None, str]]:
    with models.db.sync_standalone_session() as session:
        from sqlalchemy import select

        rows = session.execute(select(models.User.email, models.User.age, models.User.name))
        return {email: (age, name) for email, age, name in rows}


def test_hooked_update_with_an_expression_over_two_columns(m: Models) -> None:
    m.User.create_bulk(users(20))
    ids = {u.email: u.id for u in m.User.all()}
    n = m.User.where(m.User.id > 0).update_bulk(
        {"age": m.User.age * 2 + m.User.id, "name": m.User.name + "/" + m.User.email},
        with_hooks=True,
        batch_size=6,
    )
    assert n == 20
    after = ages_and_names(m)
    for i in range(20):
        email = f"u{i}@x.io"
        assert after[email] == (2 * i + ids[email], f"user {i}/{email}")


def test_hooked_update_checks_computed_values_before_writing(m: Models) -> None:
    rows = users(20)
    rows[15]["email"] = "x" * 45 + "@x.io"  # name + email: over String(50) for this row only
    m.User.create_bulk(rows)
    before = ages_and_names(m)
    with pytest.raises(ValidationError) as info:
        m.User.where(m.User.id > 0).update_bulk(
            {"name": m.User.name + m.User.email}, with_hooks=True, batch_size=4
        )
    assert info.value.field == "name"
    assert ages_and_names(m) == before  # the three batches flushed before it rolled back too


@pytest.mark.anyio
async def test_hooked_update_expression_yielding_null_async(am: Models) -> None:
    created = await am.User.create_bulk(users(5), return_models=True)
    nulled = func.nullif(am.User.age, am.User.age)
    assert await am.User.where(am.User.id > 0).update_bulk({"age": nulled}, with_hooks=True) == 5
    loaded = await am.User.order_by("id").all()
    assert [u.age for u in loaded] == [None] * 5  # into a nullable column: written
    assert all(u.updated_at > c.updated_at for u, c in zip(loaded, created, strict=True))
    with pytest.raises(ValidationError) as info:  # into NOT NULL: refused before the database
        await am.User.where(am.User.id > 0).update_bulk(
            {"name": func.nullif(am.User.name, am.User.name)}, with_hooks=True, batch_size=2
        )
    assert info.value.field == "name"
    assert [u.name for u in await am.User.order_by("id").all()] == [f"user {i}" for i in range(5)]


def test_hooked_update_skips_rows_whose_values_do_not_change(m: Models) -> None:
    m.User.create_bulk(users(6))
    m.User.where(m.User.age < 3).update_bulk({"name": "same"})
    m.User.where(m.User.age == 0).update_bulk({"name": "invalid"})  # no hooks: validate() skipped
    stamps = {u.email: u.updated_at for u in m.User.all()}
    engine = m.db.sync_engine
    with counting_writes(m.db, engine) as writes:
        same = m.User.where(m.User.age.in_([1, 2])).update_bulk({"name": "same"}, with_hooks=True)
        plus_zero = m.User.where(m.User.id > 0).update_bulk(
            {"age": m.User.age + 0}, with_hooks=True
        )
        unchanged_invalid = m.User.where(m.User.age == 0).update_bulk(
            {"name": "invalid"}, with_hooks=True
        )  # not a change, so validate() is not asked about it
    assert (same, plus_zero, unchanged_invalid) == (2, 6, 1)
    assert writes == []
    assert {u.email: u.updated_at for u in m.User.all()} == stamps
    assert m.User.where(m.User.id > 0).update_bulk({"name": "same"}, with_hooks=True) == 6
    after = {u.email: u.updated_at for u in m.User.all()}
    assert [after[e] > stamps[e] for e in sorted(stamps)] == [
        True,  # u0: "invalid" -> "same"
        False,
        False,
        True,
        True,
        True,
    ]


def test_hooked_update_inside_a_transaction_updates_loaded_objects(m: Models) -> None:
    m.User.create_bulk(users(7))
    with m.db.transaction():
        loaded = m.User.order_by("id").all()
        loaded[0].age = 100  # pending: flushed before the batches are read
        m.User.where(m.User.id > 0).update_bulk(
            {"name": m.User.name + "!", "age": m.User.age + 1}, with_hooks=True, batch_size=3
        )
        assert [(u.name, u.age) for u in loaded[:2]] == [("user 0!", 101), ("user 1!", 2)]
        with pytest.raises(ValidationError):
            m.User.where(m.User.id > 0).update_bulk(
                {"name": case((m.User.age == 5, "invalid"), else_="x")}, with_hooks=True
            )
        assert loaded[1].name == "user 1!"  # rolled back to before the failed bulk
        loaded[1].update(name="after")
    after = ages_and_names(m)
    assert after["u0@x.io"] == (101, "user 0!")
    assert after["u1@x.io"] == (2, "after")
    assert after["u2@x.io"] == (3, "user 2!")


def test_objects_expired_by_a_failed_hooked_update_are_still_validated(m: Models) -> None:
    m.User.create_bulk(users(4))
    with pytest.raises(ValidationError) as info, m.db.transaction():
        loaded = m.User.order_by("id").all()
        with pytest.raises(ValidationError):
            m.User.where(m.User.id > 0).update_bulk(
                {"name": case((m.User.age == 3, "invalid"), else_="x")}, with_hooks=True
            )
        loaded[1].name = "invalid"  # its loaded values were expired by the rollback
    assert info.value.field == "name"  # refused at commit: the change counted
    assert ages_and_names(m)["u1@x.io"] == (1, "user 1")


def define_stock(db: Database) -> Any:
    class Stock(db.Model):
        __tablename__ = "stock"
        warehouse: Mapped[str] = mapped_column(String(10), primary_key=True)
        sku: Mapped[str] = mapped_column(String(10), primary_key=True)
        qty: Mapped[int]

        def validate(self) -> None:
            if self.qty < 0:
                raise ValidationError("qty must be >= 0", field="qty")

    return Stock


def test_hooked_update_walks_a_composite_primary_key(url: str) -> None:
    db = Database(url)
    Stock = define_stock(db)
    db.create_all()
    try:
        Stock.create_bulk(
            {"warehouse": w, "sku": s, "qty": q}
            for q, (w, s) in enumerate((w, s) for w in "cab" for s in "zxy")
        )
        before = {(s.warehouse, s.sku): s.qty for s in Stock.all()}
        changed = Stock.where(Stock.qty > 0).update_bulk(
            {"qty": Stock.qty - 1}, with_hooks=True, batch_size=2
        )
        assert changed == 8  # each row once, though batches split keys sharing a warehouse
        after = {(s.warehouse, s.sku): s.qty for s in Stock.all()}
        assert after == {k: q - 1 if q > 0 else 0 for k, q in before.items()}
        with pytest.raises(ValidationError) as info:  # fails in the last batch ("c", ...)
            Stock.where(Stock.warehouse != "").update_bulk(
                {"qty": Stock.qty - 1}, with_hooks=True, batch_size=2
            )
        assert info.value.field == "qty"
        assert {(s.warehouse, s.sku): s.qty for s in Stock.all()} == after
    finally:
        db.disconnect()


def ids_by_email(models: Models) -> dict[str, int]:
    with models.db.sync_standalone_session() as session:
        from sqlalchemy import select

        rows = session.execute(select(models.User.email, models.User.id))
        return {email: id_ for email, id_ in rows}


def test_hooked_update_refuses_to_set_the_primary_key(m: Models) -> None:
    m.User.create_bulk(users(6))
    before = ids_by_email(m)
    with pytest.raises(InvalidQueryError, match="cannot set id: it is part of User's primary key"):
        m.User.where(m.User.id > 0).update_bulk(id=m.User.id + 100, with_hooks=True)
    with pytest.raises(InvalidQueryError, match="skipped or visited twice"):
        m.User.where(m.User.id == 1).update_bulk({"age": 1}, id=500, with_hooks=True)
    assert ids_by_email(m) == before
    assert ages_and_names(m)["u0@x.io"] == (0, "user 0")


def test_update_without_hooks_moves_primary_keys_in_one_statement(m: Models) -> None:
    m.User.create_bulk(users(6))
    before = ids_by_email(m)
    engine = m.db.sync_engine
    with counting_writes(m.db, engine) as writes:
        n = m.User.where(m.User.id > 2).update_bulk(id=m.User.id + 100, batch_size=2)
    assert n == 4 and len(writes) == 1
    assert ids_by_email(m) == {e: i + 100 if i > 2 else i for e, i in before.items()}


def test_key_change_inside_a_transaction_moves_loaded_instances(m: Models) -> None:
    m.User.create_bulk(users(6))
    with m.db.transaction():
        first, second, third = m.User.order_by("id").limit(3).all()  # ids 1-3; 4-6 not loaded
        n = m.User.where(m.User.id.in_([2, 3, 4])).update_bulk(
            {"name": m.User.name + "!"}, id=m.User.id + 1000
        )
        assert n == 3
        assert m.User.get(2) is None and m.User.get(1002) is second  # one instance per row
        assert (second.id, second.name, third.id) == (1002, "user 1!", 1003)
        assert m.User.get(1) is first and first.name == "user 0"
        assert m.User.get(1004).name == "user 3!"
        second.update(age=50)  # written to the moved row
    after = ages_and_names(m)
    assert after["u1@x.io"] == (50, "user 1!")
    assert sorted(ids_by_email(m).values()) == [1, 5, 6, 1002, 1003, 1004]


@pytest.mark.anyio
async def test_composite_key_change_hooked_and_not_async(url: str) -> None:
    db = Database(url)
    async with async_tables(db, define_stock) as Stock:
        await Stock.create_bulk({"warehouse": w, "sku": s, "qty": 1} for w in "ab" for s in "xy")
        with pytest.raises(InvalidQueryError, match="cannot set warehouse"):
            await Stock.where(Stock.warehouse == "a").update_bulk(warehouse="z", with_hooks=True)
        async with db.transaction():
            moved = await Stock.get("a", "x")
            kept = await Stock.get("b", "x")
            n = await Stock.where(Stock.warehouse == "a").update_bulk(
                warehouse="z", qty=Stock.qty + 1
            )
            assert n == 2
            assert (moved.warehouse, moved.sku, moved.qty) == ("z", "x", 2)  # no reload needed
            assert await Stock.get("a", "x") is None
            assert await Stock.get("z", "x") is moved
            assert await Stock.get("b", "x") is kept and kept.qty == 1
            await moved.update(qty=7)
        rows = {(s.warehouse, s.sku): s.qty for s in await Stock.all()}
        assert rows == {("z", "x"): 7, ("z", "y"): 2, ("b", "x"): 1, ("b", "y"): 1}


def test_bulk_requires_a_filter_unless_told(m: Models) -> None:
    m.User.create_bulk(users(3))
    with pytest.raises(InvalidQueryError, match="require_filter=False"):
        m.User.update_bulk({"name": "all"})
    with pytest.raises(InvalidQueryError, match="require_filter=False"):
        m.User.query().delete_bulk()
    assert m.User.update_bulk({"age": 1}, require_filter=False) == 3
    with pytest.raises(InvalidQueryError):
        m.User.order_by("id").limit(1).update_bulk({"age": 2}, require_filter=False)
    with pytest.raises(InvalidQueryError):
        m.User.where(m.User.id > 0).update_bulk({"age": 2}, batch_size=0)
    assert m.User.delete_bulk(require_filter=False) == 3
    assert count_rows(m, "users") == 0


def test_delete_bulk_set_based_and_hooked_sync(m: Models) -> None:
    m.User.create_bulk(users(20))
    engine = m.db.sync_engine
    with counting_writes(m.db, engine) as writes:
        assert m.User.where(m.User.age < 5).delete_bulk() == 5
    assert len(writes) == 1
    assert m.User.where(m.User.age < 12).delete_bulk(with_hooks=True, batch_size=3) == 7
    assert count_rows(m, "users") == 8


@pytest.mark.parametrize("with_hooks", [False, True])
def test_delete_bulk_refused_by_a_foreign_key_deletes_nothing(m: Models, with_hooks: bool) -> None:
    first = m.Customer.create(name="a")
    second = m.Customer.create(name="b")
    m.Order.create(total=1, customer_id=second.id)
    with pytest.raises(IntegrityError) as info:
        m.Customer.where(m.Customer.id > 0).delete_bulk(with_hooks=with_hooks, batch_size=1)
    assert info.value.kind in ("foreign_key", "not_null")  # hooks: the ORM nulls the child
    assert count_rows(m, "customers") == 2 and m.Customer.get(first.id) is not None


@pytest.mark.anyio
async def test_delete_bulk_async_inside_transaction_keeps_identity_map_in_step(
    am: Models,
) -> None:
    await am.User.create_bulk(users(6))
    async with am.db.transaction():
        loaded = await am.User.order_by("id").all()
        assert await am.User.where(am.User.age >= 3).update_bulk({"name": "renamed"}) == 3
        assert [u.name for u in loaded[3:]] == ["renamed"] * 3  # same objects, updated
        assert await am.User.where(am.User.age >= 3).delete_bulk() == 3
        assert await am.User.count() == 3
    assert user_emails(am) == ["u0@x.io", "u1@x.io", "u2@x.io"]


# -- iterate ---------------------------------------------------------------------


def define_items(db: Database) -> Any:
    class Item(db.Model):
        __tablename__ = "items"
        id: Mapped[int] = mapped_column(primary_key=True)
        n: Mapped[int]

    return Item


def test_iterate_rows_and_batches_sync(m: Models) -> None:
    m.User.create_bulk(users(25))
    ages = [u.age for u in m.User.where(m.User.age >= 5).iterate(batch_size=4)]
    assert ages == list(range(5, 25))
    batches = list(m.User.order_by("-age").iterate(batch_size=10, batch=True))
    assert [len(b) for b in batches] == [10, 10, 5]
    assert batches[0][0].age == 24
    with pytest.raises(InvalidQueryError):
        m.User.iterate(batch_size=0)


@pytest.mark.anyio
async def test_iterate_async_and_inside_a_transaction(am: Models) -> None:
    await am.User.create_bulk(users(12))
    seen = [u.age async for u in am.User.iterate(batch_size=5)]
    assert seen == list(range(12))
    async with am.db.transaction():
        async for group in am.User.where(am.User.age < 6).iterate(batch_size=4, batch=True):
            for user in group:  # the loop body may write on the same transaction
                await user.update(name="seen")
    assert await am.User.where(am.User.name == "seen").count() == 6


def test_iterate_closes_its_session_when_abandoned(m: Models) -> None:
    m.User.create_bulk(users(10))
    engine = m.db.sync_engine
    stream = m.User.iterate(batch_size=2)
    next(stream)
    assert engine.pool.checkedout() == 1
    stream.close()
    assert engine.pool.checkedout() == 0


ROWS = 100_000


def live_peak_while(iterating: Iterator[Any]) -> tuple[int, int, int]:
    """(rows seen, most model instances alive at once, peak bytes traced)."""
    alive: weakref.WeakSet[Any] = weakref.WeakSet()
    most = seen = 0
    gc.collect()
    tracemalloc.start()
    try:
        for row in iterating:
            seen += 1
            alive.add(row)
            if seen % 1000 == 0:
                most = max(most, len(alive))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return seen, most, peak


def test_iterate_100000_rows_in_constant_memory(url: str) -> None:
    db = Database(url)
    Item = define_items(db)
    db.create_all()
    try:
        Item.create_bulk(({"n": i} for i in range(ROWS)), batch_size=10_000)
        seen, most_alive, iterate_peak = live_peak_while(Item.iterate(batch_size=500))
        assert seen == ROWS
        assert most_alive <= 1_000  # about one batch, never the whole table
        tracemalloc.start()
        everything = Item.all()
        _, all_peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        assert len(everything) == ROWS
        del everything
        assert iterate_peak * 10 < all_peak  # loading it all needs >10x the memory
    finally:
        db.disconnect()
