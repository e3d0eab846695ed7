"""CRUD on models: create, bulk create, get, save, update, delete, refresh — sync and async."""

from __future__ import annotations

import datetime as dt
import decimal
import enum
from typing import Any

import pytest
from pydantic import BaseModel, ConfigDict
from sqlalchemy import inspect, text

from duo_orm import (
    JSON,
    ConfigurationError,
    Database,
    DateTime,
    IntegrityError,
    InvalidQueryError,
    Mapped,
    ObjectNotFoundError,
    String,
    ValidationError,
    mapped_column,
)

from .conftest import async_tables, count_rows
from .models import Models


class UserCreate(BaseModel):
    email: str
    name: str
    age: int | None = None


class UserUpdate(BaseModel):
    email: str | None = None
    name: str | None = None
    age: int | None = None


class UserRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    email: str
    name: str
    age: int | None


def user(n: int, **extra: object) -> dict[str, object]:
    return {"email": f"u{n}@x.io", "name": f"user {n}", **extra}


# -- create ------------------------------------------------------------------


def test_create_sync_from_dict_kwargs_and_schema(m: Models) -> None:
    a = m.User.create({"email": "a@x.io", "name": "A"})
    b = m.User.create(email="b@x.io", name="B", age=3)
    c = m.User.create(UserCreate(email="c@x.io", name="C"))
    assert [a.id, b.id, c.id] == [1, 2, 3]
    assert (b.name, b.age, b.active) == ("B", 3, True)  # column default filled in
    assert m.User.get(3).email == "c@x.io"
    assert count_rows(m, "users") == 3


@pytest.mark.anyio
async def test_create_async_from_dict_kwargs_and_schema(am: Models) -> None:
    pending = am.User.create(UserCreate(email="a@x.io", name="A"))
    assert hasattr(pending, "__await__")  # async code gets an awaitable
    a = await pending
    b = await am.User.create(email="b@x.io", name="B")
    assert (a.id, b.id, a.name) == (1, 2, "A")
    assert (await am.User.get(2)).email == "b@x.io"


def test_created_instance_is_detached_but_loaded(m: Models) -> None:
    from sqlalchemy import inspect

    created = m.User.create(user(1))
    assert inspect(created).detached
    assert (created.id, created.email, created.active) == (1, "u1@x.io", True)


def test_create_refuses_unknown_field_and_writes_nothing(m: Models) -> None:
    with pytest.raises(ValidationError) as info:
        m.User.create({"email": "a@x.io", "name": "A", "is_admin": True})
    assert info.value.field == "is_admin"
    assert "is_admin" in str(info.value)
    assert count_rows(m, "users") == 0


@pytest.mark.anyio
async def test_create_refuses_unknown_field_async(am: Models) -> None:
    with pytest.raises(ValidationError) as info:
        await am.User.create(email="a@x.io", name="A", nmae="typo")
    assert info.value.field == "nmae"
    assert await am.User.get(1) is None


@pytest.mark.parametrize(
    ("values", "field"),
    [
        ({"email": "a@x.io", "name": 42}, "name"),  # wrong type
        ({"email": "a@x.io", "name": "A", "age": "3"}, "age"),  # str for int
        ({"email": "a@x.io", "name": "A", "age": True}, "age"),  # bool for int
        ({"email": "a@x.io", "name": "x" * 51}, "name"),  # longer than String(50)
        ({"email": "a@x.io"}, "name"),  # required column missing
        ({"email": "a@x.io", "name": None}, "name"),  # NOT NULL given None
    ],
)
def test_create_refuses_bad_values(m: Models, values: dict[str, object], field: str) -> None:
    with pytest.raises(ValidationError) as info:
        m.User.create(values)
    assert info.value.field == field
    assert count_rows(m, "users") == 0


def test_create_runs_validate_and_writes_nothing_on_failure(m: Models) -> None:
    with pytest.raises(ValidationError) as info:
        m.User.create(email="no-at-sign", name="A")
    assert info.value.field == "email"
    assert count_rows(m, "users") == 0


@pytest.mark.anyio
async def test_create_runs_validate_async(am: Models) -> None:
    with pytest.raises(ValidationError) as info:
        await am.User.create(email="a@x.io", name="invalid")
    assert info.value.field == "name"
    assert await am.User.get(1) is None


def test_create_duplicate_is_a_unique_integrity_error(m: Models) -> None:
    m.User.create(user(1))
    with pytest.raises(IntegrityError) as info:
        m.User.create(user(1))
    assert info.value.kind == "unique"
    assert count_rows(m, "users") == 1


@pytest.mark.anyio
async def test_create_missing_foreign_row_is_a_foreign_key_error_async(am: Models) -> None:
    with pytest.raises(IntegrityError) as info:
        await am.Order.create(total=5, customer_id=999)
    assert info.value.kind == "foreign_key"
    assert await am.Order.get(1) is None


def test_payload_of_wrong_kind_is_a_type_error(m: Models) -> None:
    with pytest.raises(TypeError, match="payload must be a dict"):
        m.User.create(["email", "a@x.io"])


def test_timestamps_are_set_on_create_and_update(m: Models) -> None:
    before = dt.datetime.now(dt.UTC)
    created = m.User.create(user(1))
    assert created.created_at.tzinfo is not None
    assert created.created_at >= before
    assert created.updated_at == created.created_at
    first_update = created.updated_at
    created.update(name="renamed")
    assert created.updated_at > first_update
    assert created.created_at <= first_update


def test_explicit_created_at_is_kept(m: Models) -> None:
    when = dt.datetime(2020, 1, 2, tzinfo=dt.UTC)
    created = m.User.create(user(1, created_at=when))
    assert created.created_at == when


def test_bad_set_on_fails_at_class_definition(m: Models) -> None:
    with pytest.raises(ConfigurationError, match="set_on"):

        class Bad(m.db.Model):
            __tablename__ = "bad"
            id: Mapped[int] = mapped_column(primary_key=True)
            at: Mapped[dt.datetime] = mapped_column(DateTime, info={"set_on": "created"})


# -- bulk create ---------------------------------------------------------------


def test_create_bulk_returns_count_sync(m: Models) -> None:
    assert m.User.create_bulk([user(n) for n in range(500)], batch_size=64) == 500
    assert count_rows(m, "users") == 500
    assert m.User.get(500).created_at is not None  # timestamps set without hooks


@pytest.mark.anyio
async def test_create_bulk_returns_models_async(am: Models) -> None:
    created = await am.User.create_bulk([user(n) for n in range(3)], return_models=True)
    assert [u.email for u in created] == ["u0@x.io", "u1@x.io", "u2@x.io"]
    assert all(u.id is not None for u in created)


@pytest.mark.parametrize("with_hooks", [False, True])
def test_create_bulk_is_all_or_nothing(m: Models, with_hooks: bool) -> None:
    rows = [user(n) for n in range(300)]
    rows[250] = user(1)  # duplicate email -> unique violation in the second batch
    with pytest.raises(IntegrityError):
        m.User.create_bulk(rows, with_hooks=with_hooks, batch_size=100)
    assert count_rows(m, "users") == 0


@pytest.mark.anyio
async def test_create_bulk_with_hooks_runs_validate_async(am: Models) -> None:
    rows = [user(n) for n in range(10)]
    rows[7]["email"] = "no-at-sign"
    with pytest.raises(ValidationError) as info:
        await am.User.create_bulk(rows, with_hooks=True, batch_size=3)
    assert info.value.field == "email"
    assert await am.User.get(1) is None
    assert await am.User.create_bulk([user(n) for n in range(10)], with_hooks=True) == 10


def test_create_bulk_refuses_bad_rows_before_writing(m: Models) -> None:
    with pytest.raises(ValidationError) as info:
        m.User.create_bulk([user(1), {**user(2), "bogus": 1}])
    assert info.value.field == "bogus"
    with pytest.raises(ValidationError) as info:
        m.User.create_bulk([user(1), user(2, age="old")])
    assert info.value.field == "age"
    with pytest.raises(InvalidQueryError):
        m.User.create_bulk([user(1)], batch_size=0)
    assert count_rows(m, "users") == 0


BAD_VALUES = [
    ({"email": "a@x.io", "name": 42}, "name"),  # wrong type
    ({"email": "a@x.io", "name": "A", "age": "3"}, "age"),  # str for int
    ({"email": "a@x.io", "name": "A", "age": True}, "age"),  # bool for int
    ({"email": "a@x.io", "name": "x" * 51}, "name"),  # longer than String(50)
    ({"email": "a@x.io"}, "name"),  # required column missing
    ({"email": "a@x.io", "name": None}, "name"),  # NOT NULL given None
    ({"email": "a@x.io", "name": "A", "bogus": 1}, "bogus"),  # not a field
]


@pytest.mark.parametrize(("values", "field"), BAD_VALUES)
def test_create_bulk_refuses_a_bad_5000th_row(
    m: Models, values: dict[str, object], field: str
) -> None:
    rows = [user(n) for n in range(6_000)]
    rows[4_999] = values
    with pytest.raises(ValidationError) as info:
        m.User.create_bulk(rows, batch_size=1_000)
    assert info.value.field == field
    assert count_rows(m, "users") == 0


def test_create_bulk_names_the_first_bad_row(m: Models) -> None:
    rows = [user(n) for n in range(30)]
    rows[10]["age"] = "ten"
    rows[20]["name"] = "x" * 51
    with pytest.raises(ValidationError) as info:
        m.User.create_bulk(rows)
    assert info.value.field == "age"  # row 10's, though name comes before age in the table
    rows[10]["age"], rows[5]["name"] = 10, None
    with pytest.raises(ValidationError) as info:
        m.User.create_bulk(rows)
    assert info.value.field == "name" and "null" in info.value.message
    assert count_rows(m, "users") == 0


WHEN = dt.datetime(2020, 1, 2, tzinfo=dt.UTC)


def shaped(n: int) -> dict[str, object]:
    """Rows of four different sets of fields, in turn."""
    return {**user(n), **[{}, {"age": n}, {"active": False}, {"created_at": WHEN}][n % 4]}


@pytest.mark.anyio
async def test_create_bulk_rows_with_different_fields_async(am: Models) -> None:
    rows: list[Any] = [shaped(n) for n in range(40)]
    rows[8] = UserCreate(email="u8@x.io", name="user 8", age=8)  # payload kinds mix too
    assert await am.User.create_bulk(rows, batch_size=7) == 40
    loaded = {u.email: u for u in await am.User.all()}
    for n in range(40):
        got = loaded[f"u{n}@x.io"]
        assert got.name == f"user {n}"
        assert got.age == (n if n % 4 == 1 or n == 8 else None)
        assert got.active is (n % 4 != 2)  # the column default where a row has no value
        assert (got.created_at == WHEN) is (n % 4 == 3)  # else stamped at insert
        assert got.created_at is not None and got.updated_at is not None
    bad = [shaped(n) for n in range(100, 140)]
    bad[33]["active"] = "yes"
    with pytest.raises(ValidationError) as info:
        await am.User.create_bulk(bad)
    assert info.value.field == "active"
    assert await am.User.count() == 40


class Color(enum.Enum):
    RED = "red"
    GREEN = "green"


def define_sample(db: Database) -> Any:
    class Sample(db.Model):
        __tablename__ = "samples"
        id: Mapped[int] = mapped_column(primary_key=True)
        color: Mapped[Color]
        quantity: Mapped[int]
        ratio: Mapped[float]
        amount: Mapped[decimal.Decimal]
        flag: Mapped[bool]
        label: Mapped[str | None] = mapped_column(String(5))
        at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
        data: Mapped[dict[str, Any]] = mapped_column(JSON)

    return Sample


class Text(str):
    """A str subclass: not the exact type the fast path knows."""


SAMPLE = {
    "color": Color.RED,
    "quantity": 1,
    "ratio": 0.5,
    "amount": decimal.Decimal("1.50"),
    "flag": True,
    "label": "abc",
    "at": dt.datetime(2026, 1, 2, tzinfo=dt.UTC),
    "data": {"k": [1]},
}

SAMPLE_CASES: list[tuple[str, Any, str | None]] = [  # field, value, field refused (None: ok)
    ("color", "GREEN", None),
    ("color", Color.GREEN, None),
    ("color", 3, "color"),
    ("color", None, "color"),
    ("quantity", 2, None),
    ("quantity", True, "quantity"),
    ("quantity", 2.0, "quantity"),
    ("quantity", "2", "quantity"),
    ("ratio", 1, None),
    ("ratio", decimal.Decimal("0.25"), None),
    ("ratio", False, "ratio"),
    ("ratio", "0.5", "ratio"),
    ("amount", 2, None),
    ("amount", 2.5, None),
    ("amount", "2", "amount"),
    ("flag", False, None),
    ("flag", 0, "flag"),
    ("label", None, None),
    ("label", "abcde", None),
    ("label", "abcdef", "label"),
    ("label", Text("abcdef"), "label"),
    ("label", 5, "label"),
    ("at", None, "at"),
    ("data", ["any", {"json": None}], None),
    ("data", None, "data"),
]


def test_create_bulk_accepts_and_refuses_what_create_does(url: str) -> None:
    db = Database(url)
    Sample = define_sample(db)
    db.create_all()
    try:
        for field, value, refused in SAMPLE_CASES:
            odd = {**SAMPLE, field: value}
            rows = [dict(SAMPLE) for _ in range(300)]
            rows[200] = odd
            if refused is None:
                Sample.create(odd)
                assert Sample.create_bulk(rows) == 300, (field, value)
                assert Sample.where(Sample.id > 0).delete_bulk() == 301
                continue
            with pytest.raises(ValidationError) as one:
                Sample.create(odd)
            with pytest.raises(ValidationError) as bulk:
                Sample.create_bulk(rows)
            assert one.value.field == bulk.value.field == refused, (field, value)
            assert one.value.message == bulk.value.message
            assert Sample.count() == 0
    finally:
        db.disconnect()


# -- get -------------------------------------------------------------------------


def test_get_and_get_one_sync(m: Models) -> None:
    m.User.create(user(1))
    assert m.User.get(1).email == "u1@x.io"
    assert m.User.get(2) is None
    assert m.User.get(id=1).id == 1
    with pytest.raises(ObjectNotFoundError, match="User id=2 not found"):
        m.User.get_one(2)


@pytest.mark.anyio
async def test_get_and_get_one_async(am: Models) -> None:
    await am.User.create(user(1))
    assert (await am.User.get_one(1)).email == "u1@x.io"
    assert await am.User.get(2) is None
    with pytest.raises(ObjectNotFoundError):
        await am.User.get_one(2)


def test_get_composite_primary_key(m: Models) -> None:
    m.User.create(user(1))
    m.Membership.create(user_id=1, group="admins")
    assert m.Membership.get(1, "admins") is not None
    assert m.Membership.get(user_id=1, group="admins") is not None
    assert m.Membership.get(1, "users") is None


@pytest.mark.parametrize(
    ("args", "kwargs"),
    [((), {}), ((1, 2), {}), (("one",), {}), ((), {"pk": 1}), ((1,), {"id": 1})],
)
def test_get_refuses_malformed_keys(
    m: Models, args: tuple[object, ...], kwargs: dict[str, object]
) -> None:
    with pytest.raises(InvalidQueryError):
        m.User.get(*args, **kwargs)


# -- save / update / delete / refresh ----------------------------------------------


def test_save_inserts_new_and_updates_loaded_sync(m: Models) -> None:
    fresh = m.User.from_schema(UserCreate(email="a@x.io", name="A"))
    assert fresh.id is None
    fresh.save()
    assert fresh.id == 1
    loaded = m.User.get(1)
    loaded.name = "B"
    loaded.save()
    assert m.User.get(1).name == "B"


@pytest.mark.anyio
async def test_save_and_update_async(am: Models) -> None:
    created = await am.User.create(user(1))
    loaded = await am.User.get(created.id)
    loaded.name = "C"
    await loaded.save()
    assert (await am.User.get(1)).name == "C"
    await loaded.update({"name": "D"})
    assert (await am.User.get(1)).name == "D"
    await loaded.delete()
    assert await am.User.get(1) is None


def test_update_with_schema_uses_only_fields_the_client_set(m: Models) -> None:
    created = m.User.create(user(1, age=30))
    created.update(UserUpdate(name="renamed"))  # email and age not sent: untouched
    fresh = m.User.get(1)
    assert (fresh.name, fresh.email, fresh.age) == ("renamed", "u1@x.io", 30)
    created.update({"age": None})  # a dict's explicit None is kept
    assert m.User.get(1).age is None


def test_failed_update_keeps_old_values_and_writes_nothing(m: Models) -> None:
    created = m.User.create(user(1))
    with pytest.raises(ValidationError):
        created.update(name="invalid")
    assert created.name == "user 1"
    with pytest.raises(ValidationError) as info:
        created.update(name="ok", emial="typo@x.io")
    assert info.value.field == "emial"
    assert created.name == "user 1"
    assert m.User.get(1).name == "user 1"


@pytest.mark.anyio
async def test_failed_update_on_unique_conflict_keeps_instance_usable_async(am: Models) -> None:
    await am.User.create(user(1))
    second = await am.User.create(user(2))
    with pytest.raises(IntegrityError) as info:
        await second.update(email="u1@x.io")
    assert info.value.kind == "unique"
    assert second.email == "u2@x.io"
    assert second.name == "user 2"
    await second.update(name="still works")
    assert (await am.User.get(2)).name == "still works"


def column_state(instance: Any) -> tuple[dict[str, Any], dict[str, Any], set[str], bool]:
    """What a refused update must leave as it was: values, pending changes, expiry, dirtiness."""
    state = inspect(instance)
    values = {key: state.dict[key] for key in instance.fields() if key in state.dict}
    return values, dict(state.committed_state), set(state.expired_attributes), state.modified


def test_refused_update_leaves_the_instance_as_it_was(m: Models) -> None:
    created = m.User.create(user(1))
    before = column_state(created)
    with pytest.raises(ValidationError):
        created.update(name="invalid")  # validate() refuses it after updated_at was stamped
    assert column_state(created) == before
    assert inspect(created).detached
    created.update(age=3)
    fresh = m.User.get(1)
    assert (fresh.name, fresh.age) == ("user 1", 3)


def test_refused_update_of_an_expired_attribute_leaves_it_expired(m: Models) -> None:
    m.User.create(user(1))
    with m.db.transaction() as session:
        loaded = m.User.get(1)
        session.expire(loaded, ["name"])
    before = column_state(loaded)
    assert "name" not in before[0] and "name" in before[2]
    for refused in ("invalid", None):  # refused by validate(), then by the column check
        with pytest.raises(ValidationError) as info:
            loaded.update(name=refused)
        assert info.value.field == "name"
        assert column_state(loaded) == before
    loaded.update(age=3)  # a left-over change would write name as NULL here
    fresh = m.User.get(1)
    assert (fresh.name, fresh.age) == ("user 1", 3)


def define_note(db: Database) -> Any:
    class Note(db.Model):
        __tablename__ = "notes"
        id: Mapped[int] = mapped_column(primary_key=True)
        title: Mapped[str] = mapped_column(String(20))
        body: Mapped[str] = mapped_column(String(20), deferred=True)

        def validate(self) -> None:
            if self.body == "invalid":
                raise ValidationError("body may not be 'invalid'", field="body")

    return Note


@pytest.mark.anyio
async def test_refused_update_of_a_deferred_attribute_leaves_it_unloaded_async(url: str) -> None:
    db = Database(url)
    async with async_tables(db, define_note) as Note:
        await Note.create(title="t", body="b")
        note = await Note.get(1)
        before = column_state(note)
        assert "body" not in before[0] and not before[2]  # never loaded, not expired
        with pytest.raises(ValidationError):
            await note.update(body="invalid")
        assert column_state(note) == before
        await note.update(title="t2")  # a left-over change would write body as NULL here
        with db.sync_standalone_session() as session:
            assert session.execute(text("SELECT title, body FROM notes")).all() == [("t2", "b")]


@pytest.mark.anyio
async def test_refused_update_of_a_new_instance_leaves_it_new_async(am: Models) -> None:
    fresh = am.User.from_schema(user(1))
    before = column_state(fresh)
    with pytest.raises(ValidationError):
        await fresh.update(name="invalid")
    assert column_state(fresh) == before  # no timestamps or defaults left from the attempt
    assert inspect(fresh).transient
    await fresh.update(name="valid")
    assert (await am.User.get(1)).name == "valid"


def test_save_without_changes_writes_nothing(m: Models) -> None:
    created = m.User.create(user(1))
    stamp = created.updated_at
    created.save()
    assert created.updated_at == stamp
    assert m.User.get(1).updated_at.replace(tzinfo=None) == stamp.replace(tzinfo=None)


def test_delete_twice_is_not_found(m: Models) -> None:
    created = m.User.create(user(1))
    created.delete()
    assert m.User.get(1) is None
    again = m.User.from_schema(user(2))
    again.save()
    stale = m.User.get(again.id)
    m.User.get(again.id).delete()
    with pytest.raises(ObjectNotFoundError):
        stale.delete()


def test_refresh_reloads_and_reports_deleted_rows(m: Models) -> None:
    created = m.User.create(user(1))
    m.User.get(1).update(name="changed elsewhere")
    assert created.name == "user 1"
    created.refresh()
    assert created.name == "changed elsewhere"
    m.User.get(1).delete()
    with pytest.raises(ObjectNotFoundError):
        created.refresh()


@pytest.mark.anyio
async def test_refresh_async(am: Models) -> None:
    created = await am.User.create(user(1))
    other = await am.User.get(1)
    await other.update(name="changed")
    assert (await created.refresh()).name == "changed"


# -- schemas and dicts ----------------------------------------------------------------


def test_to_schema_to_dict_fields_apply_schema(m: Models) -> None:
    created = m.User.create(user(1, age=5))
    assert created.to_schema(UserRead) == UserRead(id=1, email="u1@x.io", name="user 1", age=5)
    assert created.to_dict(include=["id", "name"]) == {"id": 1, "name": "user 1"}
    assert set(created.to_dict(exclude=["created_at", "updated_at"])) == {
        "id",
        "email",
        "name",
        "age",
        "active",
    }
    assert m.User.fields() == ["id", "email", "name", "age", "active", "created_at", "updated_at"]
    created.apply_schema(UserUpdate(age=6))
    assert (created.age, created.name) == (6, "user 1")
    assert m.User.get(1).age == 5  # apply_schema writes nothing


def test_schema_and_dict_misuse_is_refused(m: Models) -> None:
    class NoAttributes(BaseModel):
        id: int

    created = m.User.create(user(1))
    with pytest.raises(ValidationError, match="from_attributes"):
        created.to_schema(NoAttributes)
    with pytest.raises(ValidationError) as info:
        created.to_dict(include=["password"])
    assert info.value.field == "password"
    with pytest.raises(ValidationError):
        m.User.from_schema({"email": "a@x.io", "role": "admin"})


def test_validate_sees_python_column_defaults(m: Models) -> None:
    seen: list[object] = []
    m.User.validate = lambda self: seen.append(self.active)
    created = m.User.create(email="d@x.io", name="D")  # `active` has default=True
    assert seen == [True] and created.active is True
