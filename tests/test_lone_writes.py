"""A lone ``create`` without the ORM session (duo_orm.lone_writes), sync and async.

In statement mode a ``create`` of a plainly mapped model on SQLite or PostgreSQL
(psycopg, psycopg2) is one autocommitted INSERT ... RETURNING. What a user relies on: the
instance comes back as the ORM would leave it (values, defaults the database
filled in, key, detached and unmodified), the row is really there, errors are the
same, and anything that would notice the difference (a ``validate()`` that
queries, session or mapper listeners, engine listeners, SQL logging, defaults
computed at INSERT time, SQL expressions as values) still gets the ORM.
"""

from __future__ import annotations

import datetime as dt
import decimal
import logging
import uuid
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import anyio
import pytest
from sqlalchemy import event, func, inspect, select, text
from sqlalchemy.orm import Session

from duo_orm import (
    JSON,
    Database,
    DatabaseUnavailableError,
    DateTime,
    IntegrityError,
    Mapped,
    Numeric,
    ObjectNotFoundError,
    String,
    ValidationError,
    mapped_column,
)

from .conftest import async_tables, tables
from .test_lone_reads import ROW, Colour


def define(db: Database) -> Any:
    class Item(db.Model):
        __tablename__ = "items"
        id: Mapped[int] = mapped_column(primary_key=True)
        name: Mapped[str] = mapped_column("item_name", String(50), unique=True)
        price: Mapped[decimal.Decimal] = mapped_column(Numeric(10, 2))
        seen_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
        on: Mapped[dt.date]
        active: Mapped[bool]
        colour: Mapped[Colour]
        token: Mapped[uuid.UUID]
        data: Mapped[dict[str, Any] | None] = mapped_column(JSON)
        hidden: Mapped[bool] = mapped_column(default=False)
        note: Mapped[str | None] = mapped_column(String(50))
        status: Mapped[str] = mapped_column(String(10), server_default=text("'new'"))
        created_at: Mapped[dt.datetime | None] = mapped_column(
            DateTime(timezone=True), info={"set_on": "create"}
        )
        updated_at: Mapped[dt.datetime | None] = mapped_column(
            DateTime(timezone=True), info={"set_on": "update"}
        )

    class Pair(db.Model):
        __tablename__ = "pairs"
        left: Mapped[int] = mapped_column(primary_key=True)
        right: Mapped[str] = mapped_column(String(10), primary_key=True)
        note: Mapped[str | None] = mapped_column(String(50))

    class Ticket(db.Model):  # a key made in Python at INSERT time
        __tablename__ = "tickets"
        id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
        title: Mapped[str] = mapped_column(String(50))

    class Checked(db.Model):  # a validate() that reads, inside its write's transaction
        __tablename__ = "checked"
        id: Mapped[int] = mapped_column(primary_key=True)
        title: Mapped[str] = mapped_column(String(50))

        def validate(self) -> None:
            if Checked.where(Checked.title == self.title).exists():
                raise ValidationError("title taken", field="title")

    class Rated(db.Model):  # a validate() that only looks at the values
        __tablename__ = "rated"
        id: Mapped[int] = mapped_column(primary_key=True)
        stars: Mapped[int]

        def validate(self) -> None:
            if not 1 <= self.stars <= 5:
                raise ValidationError("stars must be 1 to 5", field="stars")

    class Counted(db.Model):  # a value the ORM computes at UPDATE time
        __tablename__ = "counted"
        id: Mapped[int] = mapped_column(primary_key=True)
        title: Mapped[str] = mapped_column(String(50))
        revision: Mapped[int] = mapped_column(default=1, onupdate=text("revision + 1"))

    return SimpleNamespace(
        db=db,
        Item=Item,
        Pair=Pair,
        Ticket=Ticket,
        Checked=Checked,
        Rated=Rated,
        Counted=Counted,
    )


@pytest.fixture
def s(url: str) -> Iterator[Any]:
    with tables(Database(url), define) as models:
        yield models


def created_state(instance: Any) -> dict[str, Any]:
    state = inspect(instance)
    values = {key: value for key, value in state.dict.items() if not key.startswith("_")}
    values.pop("created_at", None)  # clock readings: compared on their own
    values.pop("updated_at", None)
    return {
        "values": values,
        "types": {key: type(value) for key, value in values.items()},
        "model": state.key[0],
        "detached": state.detached,
        "modified": state.modified,
        "committed": dict(state.committed_state),
        "expired": set(state.expired_attributes),
        "unloaded": set(state.unloaded),
    }


def orm_created(models: Any, model: Any, **values: Any) -> Any:
    """The instance as the ORM path leaves it: created in a transaction, then closed."""
    with models.db.transaction():
        return model.create(**values)


def inserts_sent_directly(model: Any) -> int:
    tables = model.__dict__.get("__duo_lone_writes__") or {}
    return sum(len(table._plans) for table in tables.values() if table is not None)


def updates_sent_directly(model: Any) -> int:
    tables = model.__dict__.get("__duo_lone_writes__") or {}
    return sum(len(table._update_plans) for table in tables.values() if table is not None)


def direct_on(backend: str) -> bool:
    return True  # pysqlite or psycopg: asyncpg URLs get a psycopg sync engine


def test_create_leaves_the_instance_the_orm_would(s: Any, backend: str) -> None:
    item = s.Item.create(**ROW)
    pair = s.Pair.create(left=1, right="x")
    assert bool(inserts_sent_directly(s.Item)) is direct_on(backend)
    expected = orm_created(s, s.Item, **{**ROW, "name": "second", "token": uuid.uuid4()})
    expected_pair = orm_created(s, s.Pair, left=2, right="y")
    mine, theirs = created_state(item), created_state(expected)
    assert mine["values"].pop("id") == 1 and theirs["values"].pop("id") == 2
    assert mine["values"].pop("name") == "lamp" and theirs["values"].pop("name") == "second"
    assert mine["values"].pop("token") == ROW["token"]
    theirs["values"].pop("token")
    assert mine == theirs
    assert {"status", "hidden"} <= mine["values"].keys()
    assert mine["unloaded"] == {"note", "updated_at"}
    assert item.status == "new" and item.hidden is False and item.note is None
    assert item.created_at is not None and item.created_at.tzinfo is not None
    assert created_state(pair)["values"] == {"left": 1, "right": "x"}
    assert {k: v for k, v in created_state(pair).items() if k != "values"} == {
        k: v for k, v in created_state(expected_pair).items() if k != "values"
    }
    assert inspect(pair).key[:2] == (s.Pair, (1, "x")) and inspect(item).key[1] == (1,)
    stored = s.Item.get_one(1)
    assert {key: getattr(stored, key) for key in ROW} == ROW
    assert stored.created_at == item.created_at


@pytest.mark.anyio
async def test_create_leaves_the_instance_the_orm_would_async(url: str) -> None:
    async with async_tables(Database(url), define) as models:
        item = await models.Item.create(**ROW)
        # async SQLite runs the sync call in a worker thread
        assert inserts_sent_directly(models.Item)
        async with models.db.transaction():
            expected = await models.Item.create(**{**ROW, "name": "second", "token": uuid.uuid4()})
        mine, theirs = created_state(item), created_state(expected)
        for state in (mine, theirs):
            for key in ("id", "name", "token"):
                state["values"].pop(key)
        assert mine == theirs
        assert item.id == 1 and item.status == "new"
        stored = await models.Item.get_one(1)
        assert {key: getattr(stored, key) for key in ROW} == ROW


def test_a_created_instance_saves_updates_and_deletes(s: Any) -> None:
    item = s.Item.create(**ROW)
    item.name = "desk"
    item.save()
    assert s.Item.get_one(1).name == "desk"
    item.update(price=decimal.Decimal("3.00"))
    assert s.Item.get_one(1).price == decimal.Decimal("3.00")
    item.delete()
    assert s.Item.count() == 0


def test_json_null_and_explicit_none_are_stored_as_the_orm_stores_them(s: Any) -> None:
    item = s.Item.create(**{**ROW, "data": None}, note=None, status=None)
    orm = orm_created(s, s.Item, **{**ROW, "name": "orm", "token": uuid.uuid4(), "data": None})
    stored = s.Item.get_one(item.id)
    assert (item.data, item.note) == (None, None) and stored.data is None
    assert item.status == stored.status  # None left out: the server default fills it
    with s.db.sync_standalone_session() as session:  # JSON's null, not SQL's NULL, both
        is_sql_null = dict(session.execute(select(s.Item.id, s.Item.data.is_(None))).all())
    assert is_sql_null[item.id] == is_sql_null[orm.id]


def test_a_conflict_is_the_same_error_either_way(s: Any, backend: str) -> None:
    s.Item.create(**ROW)
    with pytest.raises(IntegrityError) as direct:
        s.Item.create(**{**ROW, "token": uuid.uuid4()})
    engine = s.db.sync_engine
    event.listen(engine, "before_cursor_execute", ignore)  # the ORM path, then
    try:
        with pytest.raises(IntegrityError) as orm:
            s.Item.create(**{**ROW, "token": uuid.uuid4()})
    finally:
        event.remove(engine, "before_cursor_execute", ignore)
    assert str(direct.value) == str(orm.value)
    assert (direct.value.kind, direct.value.constraint) == (orm.value.kind, orm.value.constraint)
    assert s.Item.count() == 1


def ignore(*args: Any) -> None:
    pass


def test_what_could_tell_the_difference_gets_the_orm(
    s: Any, backend: str, caplog: pytest.LogCaptureFixture
) -> None:
    ticket = s.Ticket.create(title="made in Python")  # default=uuid4 filled at INSERT
    assert isinstance(ticket.id, uuid.UUID) and s.Ticket.get_one(ticket.id).title
    assert inserts_sent_directly(s.Ticket) == 0
    given = s.Ticket.create(id=uuid.uuid4(), title="key given")
    assert s.Ticket.get_one(given.id) is not None
    assert bool(inserts_sent_directly(s.Ticket)) is direct_on(backend)

    checked = s.Checked.create(title="a")  # validate() queries: the ORM path, both times
    with pytest.raises(ValidationError, match="title taken"):
        s.Checked.create(title="a")
    s.Checked.create(title="b")
    with pytest.raises(ValidationError, match="title taken"):
        checked.update(title="b")
    assert s.Checked.count() == 2 and checked.title == "a"
    assert inserts_sent_directly(s.Checked) == 0 and updates_sent_directly(s.Checked) == 0

    lowered = s.Item.create(**{**ROW, "name": func.lower("LOUD")})
    assert s.Item.get_one(lowered.id).name == "loud"

    seen: list[str] = []
    committed: list[Any] = []
    inserted: list[Any] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        seen.append(statement.split()[0])

    def after_commit(session: Any) -> None:
        committed.append(session)

    def before_insert(mapper: Any, connection: Any, target: Any) -> None:
        inserted.append(target)

    engine = s.db.sync_engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        s.Pair.create(left=10, right="a")
    finally:
        event.remove(engine, "before_cursor_execute", record)
    assert "INSERT" in seen
    event.listen(Session, "after_commit", after_commit)
    try:
        s.Pair.create(left=11, right="a")
    finally:
        event.remove(Session, "after_commit", after_commit)
    assert len(committed) == 1
    event.listen(s.Pair, "before_insert", before_insert)
    try:
        s.Pair.create(left=12, right="a")
    finally:
        event.remove(s.Pair, "before_insert", before_insert)
    assert [pair.left for pair in inserted] == [12]
    with caplog.at_level(logging.INFO, logger="sqlalchemy.engine"):
        s.Pair.create(left=13, right="a")
    assert any("INSERT INTO pairs" in record.getMessage() for record in caplog.records)
    assert s.Pair.count() == 4


@pytest.mark.postgres
def test_a_create_leaves_no_transaction_open(s: Any) -> None:
    for number in range(3):
        s.Pair.create(left=number, right="x")
    # autocommit is switched back: a transaction after the create still rolls back
    with pytest.raises(RuntimeError), s.db.transaction():
        s.Pair.create(left=99, right="x")
        raise RuntimeError("roll back")
    with s.db.sync_standalone_session() as session:
        assert session.scalar(select(func.count()).select_from(text("pairs"))) == 3
        idle = session.scalar(
            text(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND state = 'idle in transaction' AND pid <> pg_backend_pid()"
            )
        )
    assert idle == 0


@pytest.mark.postgres
@pytest.mark.anyio
async def test_a_cancelled_async_create_writes_all_or_nothing(url: str, backend: str) -> None:
    # asyncpg: the checkout's ping is left out, as in test_lone_reads' cancelled read
    options = {"pool_pre_ping": False} if backend == "postgresql-asyncpg" else {}
    async with async_tables(Database(url, engine_options=options), define) as models:
        returned = []
        for number in range(40):
            with anyio.move_on_after(0 if number % 2 else 0.0003):
                returned.append(await models.Pair.create(left=number, right="x"))
        stored = {pair.left for pair in await models.Pair.all()}
        assert {pair.left for pair in returned} <= stored
        for pair in await models.Pair.all():
            assert pair.right == "x"
        assert models.db.async_engine.sync_engine.pool.checkedout() == 0
        with pytest.raises(RuntimeError):
            async with models.db.transaction():
                await models.Pair.create(left=100, right="x")
                raise RuntimeError("roll back")
        assert await models.Pair.count() == len(stored)


def assert_alike(mine: Any, theirs: Any) -> None:
    """Two rows' instances are in the same state, keys and unique values aside."""
    states = [created_state(mine), created_state(theirs)]
    for state in states:
        for key in ("id", "name", "token"):
            state["values"].pop(key)
    assert states[0] == states[1]


def test_update_leaves_the_instance_the_orm_would(s: Any, backend: str) -> None:
    mine = s.Item.create(**ROW)
    theirs = s.Item.create(**{**ROW, "name": "second", "token": uuid.uuid4()})
    mine.update(price=decimal.Decimal("7.25"), note="noted")
    with s.db.transaction():  # the ORM path
        theirs.update(price=decimal.Decimal("7.25"), note="noted")
    assert bool(updates_sent_directly(s.Item)) is direct_on(backend)
    assert_alike(mine, theirs)
    assert mine.updated_at is not None and mine.updated_at.tzinfo is not None
    stored = s.Item.get_one(mine.id)
    assert (stored.price, stored.note, stored.updated_at) == (
        decimal.Decimal("7.25"),
        "noted",
        mine.updated_at,
    )
    assert s.Item.get_one(theirs.id).price == decimal.Decimal("7.25")


def test_an_update_that_changes_nothing_sends_nothing(s: Any) -> None:
    item = s.Item.create(**ROW)
    item.update(name="lamp", price=ROW["price"])
    assert updates_sent_directly(s.Item) == 0 and item.updated_at is None
    assert not inspect(item).modified and s.Item.get_one(item.id).updated_at is None


def test_a_failed_update_leaves_the_instance_as_it_was(s: Any, backend: str) -> None:
    item = s.Item.create(**ROW)
    other = s.Item.create(**{**ROW, "name": "taken", "token": uuid.uuid4()})
    before = created_state(item)
    with pytest.raises(IntegrityError):
        item.update(name="taken", note="lost")
    assert created_state(item) == before and item.name == "lamp"
    assert bool(updates_sent_directly(s.Item)) is direct_on(backend)
    other.delete()
    gone = s.Item.create(**{**ROW, "name": "gone", "token": uuid.uuid4()})
    s.Item.get_one(gone.id).delete()
    with pytest.raises(ObjectNotFoundError) as direct:
        gone.update(note="too late")
    engine = s.db.sync_engine
    event.listen(engine, "before_cursor_execute", ignore)  # the ORM path, then
    try:
        with pytest.raises(ObjectNotFoundError) as orm:
            gone.update(note="too late")
    finally:
        event.remove(engine, "before_cursor_execute", ignore)
    assert str(direct.value) == str(orm.value)
    assert gone.note is None and not inspect(gone).modified
    item.update(note="and now it saves")  # the instance is usable as before
    assert s.Item.get_one(item.id).note == "and now it saves"


def test_updates_the_orm_must_make_still_get_it(s: Any, backend: str) -> None:
    counted = s.Counted.create(title="a")
    counted.update(title="b")  # onupdate: the ORM computes revision at UPDATE time
    assert s.Counted.get_one(counted.id).revision == 2
    assert updates_sent_directly(s.Counted) == 0

    pair = s.Pair.create(left=1, right="x")
    pair.update(left=2)  # a new primary key
    assert s.Pair.get(1, "x") is None and s.Pair.get_one(2, "x").right == "x"
    assert updates_sent_directly(s.Pair) == 0

    changed: list[Any] = []

    def before_update(mapper: Any, connection: Any, target: Any) -> None:
        changed.append(target.note)

    event.listen(s.Pair, "before_update", before_update)
    try:
        pair.update(note="seen")
    finally:
        event.remove(s.Pair, "before_update", before_update)
    assert changed == ["seen"] and updates_sent_directly(s.Pair) == 0
    pair.update(note="direct again")
    assert bool(updates_sent_directly(s.Pair)) is direct_on(backend)
    assert s.Pair.get_one(2, "x").note == "direct again"


@pytest.mark.postgres
@pytest.mark.anyio
async def test_an_asyncpg_write_that_times_out_fails_as_on_the_orm_path(asyncpg_url: str) -> None:
    # asyncpg's own timeout raises TimeoutError, which neither path wraps
    options = {"connect_args": {"command_timeout": 0.2}}
    async with async_tables(Database(asyncpg_url, engine_options=options), define) as models:
        item = await models.Item.create(**ROW)
        async with models.db.async_engine.connect() as locker:
            await locker.execute(text("SELECT * FROM items FOR UPDATE"))  # held till the end
            with pytest.raises(DatabaseUnavailableError):
                await item.update(note="direct")
            assert updates_sent_directly(models.Item)
            with pytest.raises(DatabaseUnavailableError):
                async with models.db.transaction():
                    await item.update(note="in a session")
        assert (await models.Item.get_one(item.id)).note is None
        await item.update(note="after")  # and its connection still serves
        assert (await models.Item.get_one(item.id)).note == "after"


@pytest.mark.postgres
@pytest.mark.anyio
async def test_asyncpg_writes_after_the_tables_are_made_again(asyncpg_url: str) -> None:
    # the colour enum type gets a new OID: statements prepared before would name the
    # old one, and the server cannot look it up any more
    async with async_tables(Database(asyncpg_url), define) as models:
        await models.Item.create(**ROW)
        assert (await models.Item.where(models.Item.colour == Colour.blue).count()) == 1
        await models.db.drop_all()
        await models.db.create_all()
        for _ in range(2):
            item = await models.Item.create(**ROW)
            assert inserts_sent_directly(models.Item)
            assert (await models.Item.get_one(item.id)).colour is Colour.blue
            await item.delete()
        assert (await models.Item.where(models.Item.colour == Colour.blue).count()) == 0


@pytest.mark.anyio
async def test_an_async_update_is_stored(url: str) -> None:
    async with async_tables(Database(url), define) as models:
        item = await models.Item.create(**ROW)
        await item.update(note="async")
        assert updates_sent_directly(models.Item)
        assert (await models.Item.get_one(item.id)).note == "async"
        assert not inspect(item).modified
        await (await models.Item.get_one(item.id)).delete()
        with pytest.raises(ObjectNotFoundError):
            await item.update(note="gone")
        assert item.note == "async"


def test_a_validate_that_only_checks_values_runs_on_the_lone_path(s: Any, backend: str) -> None:
    rated = s.Rated.create(stars=4)
    with pytest.raises(ValidationError, match="stars must be 1 to 5") as refused:
        s.Rated.create(stars=9)
    assert refused.value.field == "stars"
    with pytest.raises(ValidationError):
        rated.update(stars=0)
    assert rated.stars == 4 and not inspect(rated).modified
    rated.update(stars=5)
    assert [row.stars for row in s.Rated.all()] == [5]
    assert bool(inserts_sent_directly(s.Rated)) is direct_on(backend)
    assert bool(updates_sent_directly(s.Rated)) is direct_on(backend)


def test_save_of_changed_columns_is_the_update_the_orm_would_make(s: Any, backend: str) -> None:
    mine = s.Item.create(**ROW)
    theirs = s.Item.create(**{**ROW, "name": "second", "token": uuid.uuid4()})
    for item in (mine, theirs):
        item.price, item.note = decimal.Decimal("3.50"), "saved"
    assert mine.save() is mine
    with s.db.transaction():  # the ORM path
        theirs.save()
    assert bool(updates_sent_directly(s.Item)) is direct_on(backend)
    assert_alike(mine, theirs)
    stored = s.Item.get_one(mine.id)
    assert (stored.price, stored.note) == (decimal.Decimal("3.50"), "saved")
    assert mine.updated_at is not None and stored.updated_at == mine.updated_at


def test_a_failed_save_keeps_its_changes_on_either_path(s: Any) -> None:
    s.Item.create(**{**ROW, "name": "taken", "token": uuid.uuid4()})
    lone = s.Item.create(**ROW)
    orm = s.Item.create(**{**ROW, "name": "other", "token": uuid.uuid4()})
    engine = s.db.sync_engine
    for item, watched in ((lone, False), (orm, True)):
        item.name, item.note = "taken", "lost"
        if watched:
            event.listen(engine, "before_cursor_execute", ignore)  # the ORM path
        try:
            with pytest.raises(IntegrityError):
                item.save()
        finally:
            if watched:
                event.remove(engine, "before_cursor_execute", ignore)
    for item in (lone, orm):  # the changes are still pending: fixed, they all save
        assert (item.name, item.note) == ("taken", "lost") and inspect(item).modified
        assert s.Item.get_one(item.id).note is None
        item.name = f"fixed {item.id}"
        item.save()
        assert (s.Item.get_one(item.id).name, s.Item.get_one(item.id).note) == (item.name, "lost")


def test_related_rows_and_sql_values_are_saved_by_the_orm(m: Any) -> None:
    customer = m.Customer.create(name="c")
    order = m.Order.create(total=5, customer_id=customer.id)
    loaded = m.Customer.where(m.Customer.id == customer.id).related("orders").first()
    loaded.orders[0].total = 9  # saved with its parent, by the ORM's cascade
    loaded.save()
    assert m.Order.get_one(order.id).total == 9
    with_parent = m.Order.where(m.Order.id == order.id).related("customer").first()
    with_parent.customer.name = "via the order"
    with_parent.update(total=6)
    assert m.Order.get_one(order.id).total == 6
    assert m.Customer.get_one(customer.id).name == "via the order"
    plain = m.Customer.get_one(customer.id)
    plain.name = func.upper(m.Customer.name)  # SQL, run in the UPDATE
    plain.save()
    assert m.Customer.get_one(customer.id).name == "VIA THE ORDER"


def test_a_new_key_or_a_related_row_is_saved_by_the_orm(m: Any) -> None:
    pair_of_keys = m.Membership
    user = m.User.create(email="a@x.io", name="a")
    member = pair_of_keys.create(user_id=user.id, group="old")
    member.group = "new"
    member.save()
    assert pair_of_keys.get(user.id, "old") is None
    assert pair_of_keys.get_one(user.id, "new").group == "new"
    customer = m.Customer.create(name="c")
    loaded = m.Customer.where(m.Customer.id == customer.id).related("orders").first()
    loaded.orders.append(m.Order(total=5))
    loaded.save()
    loaded.orders.append(m.Order(total=7))
    loaded.update(name="renamed")
    assert sorted(order.total for order in m.Order.all()) == [5, 7]
    assert m.Customer.get_one(customer.id).name == "renamed"
