"""duo-orm 0.1's documented model and Database API, as docs/upstream.md lists it.

Payload guards (primary keys, ``__guarded__``), model instances given to
``create``/``create_bulk``, the ``auto_now``/``auto_now_add`` flags,
``engine_kwargs=`` and ``dialect=``, ``Model._db`` and ``to_schema`` with a class
that is not a pydantic model; sync and async, on every backend.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from pydantic import BaseModel
from sqlalchemy import select, text

from duo_orm import (
    ConfigurationError,
    Database,
    DateTime,
    Mapped,
    String,
    UnsupportedOperationError,
    ValidationError,
    mapped_column,
)

from .conftest import async_tables, count_rows, tables, user_emails
from .models import Models


def user(n: int, **extra: object) -> dict[str, object]:
    return {"email": f"u{n}@x.io", "name": f"user {n}", **extra}


class UserWithId(BaseModel):
    id: int | None = None
    email: str | None = None
    name: str | None = None


# -- primary keys are guarded from payloads ------------------------------------------


def test_a_payload_cannot_set_a_generated_primary_key(m: Models) -> None:
    for payload in (user(1, id=50), UserWithId(id=50, **user(1))):
        with pytest.raises(ValidationError, match="cannot be set from a payload") as info:
            m.User.create(payload)
        assert info.value.field == "id"
    with pytest.raises(ValidationError, match="primary key") as info:
        m.User.create_bulk([user(1), user(2, id=50)])
    assert info.value.field == "id"
    with pytest.raises(ValidationError):
        m.User.from_schema(user(1, id=50))
    assert count_rows(m, "users") == 0

    chosen = m.User.create(user(1), id=50)  # a keyword is the code saying it means it
    assert chosen.id == 50 and m.User.get(50).email == "u1@x.io"


def test_a_payload_cannot_change_a_primary_key(m: Models) -> None:
    ada = m.User.create(user(1))
    for payload in ({"id": ada.id + 1, "name": "moved"}, UserWithId(id=ada.id + 1)):
        with pytest.raises(ValidationError, match="part of User's primary key") as info:
            ada.update(payload)
        assert info.value.field == "id"
        with pytest.raises(ValidationError):
            ada.apply_schema(payload)
        with pytest.raises(ValidationError):
            m.User.where(m.User.id == ada.id).update_bulk(payload)
    assert (ada.id, ada.name) == (1, "user 1")
    assert [(u.id, u.name) for u in m.User.all()] == [(1, "user 1")]


def test_natural_keys_come_from_the_payload_on_create_only(m: Models) -> None:
    ada = m.User.create(user(1))
    member = m.Membership.create({"user_id": ada.id, "group": "admins"})
    m.Membership.create_bulk([{"user_id": ada.id, "group": "staff"}])
    with pytest.raises(ValidationError, match="primary key") as info:
        member.update({"group": "root"})
    assert info.value.field == "group"
    assert sorted(g.group for g in m.Membership.all()) == ["admins", "staff"]


@pytest.mark.anyio
async def test_primary_keys_are_guarded_async(am: Models) -> None:
    with pytest.raises(ValidationError):
        await am.User.create(user(1, id=50))
    with pytest.raises(ValidationError):
        await am.User.create_bulk([user(1, id=50)])
    ada = await am.User.create(user(1))
    with pytest.raises(ValidationError):
        await ada.update({"id": 7})
    assert [u.id for u in await am.User.all()] == [ada.id]


# -- __guarded__ -----------------------------------------------------------------------


def define_accounts(db: Database) -> Any:
    class Account(db.Model):
        __tablename__ = "accounts"
        __guarded__ = ("role",)
        id: Mapped[int] = mapped_column(primary_key=True)
        email: Mapped[str] = mapped_column(String(100))
        role: Mapped[str] = mapped_column(String(20), default="member")

    return Account


def test_guarded_fields_are_refused_in_payloads_and_set_by_keywords(url: str) -> None:
    with tables(Database(url), define_accounts) as Account:
        with pytest.raises(ValidationError, match=r"Account\.__guarded__") as info:
            Account.create({"email": "a@x.io", "role": "admin"})
        assert info.value.field == "role"
        alice = Account.create({"email": "a@x.io"})
        assert alice.role == "member"
        with pytest.raises(ValidationError, match="__guarded__"):
            alice.update({"role": "admin"})
        with pytest.raises(ValidationError, match="__guarded__"):
            Account.create_bulk([{"email": "b@x.io", "role": "admin"}])
        alice.update({"email": "alice@x.io"}, role="admin")  # the code grants it
        assert Account.get(alice.id).role == "admin"
        assert Account.count() == 1


@pytest.mark.anyio
async def test_guarded_fields_async(url: str) -> None:
    async with async_tables(Database(url), define_accounts) as Account:
        with pytest.raises(ValidationError):
            await Account.create({"email": "a@x.io", "role": "admin"})
        bob = await Account.create({"email": "b@x.io"}, role="admin")
        with pytest.raises(ValidationError):
            await bob.update({"role": "member"})
        assert (await Account.get(bob.id)).role == "admin"


@pytest.mark.parametrize("guarded", [("nope",), "role"])
def test_a_bad_guarded_declaration_fails_at_class_definition(guarded: object) -> None:
    db = Database("sqlite:///:memory:")
    with pytest.raises(ConfigurationError, match="__guarded__"):

        class Bad(db.Model):
            __tablename__ = "bad"
            __guarded__ = guarded
            id: Mapped[int] = mapped_column(primary_key=True)
            role: Mapped[str]


# -- create() and create_bulk() take model instances -----------------------------------


def test_create_takes_a_new_instance(m: Models) -> None:
    given = m.User(id=40, **user(1))  # built by the code: its key is taken as it is
    created = m.User.create(given, age=30)
    assert created is given and (given.id, given.age) == (40, 30)
    assert m.User.get(40).age == 30
    with pytest.raises(UnsupportedOperationError, match="already stored"):
        m.User.create(given)
    with pytest.raises(TypeError, match="not from a Customer instance"):
        m.User.create(m.Customer(name="c"))
    assert count_rows(m, "users") == 1


def test_create_bulk_takes_instances_among_payloads(m: Models) -> None:
    first, second = m.User(**user(1)), m.User(id=70, **user(2))
    created = m.User.create_bulk([first, user(3), second], return_models=True)
    assert created[0] is first and created[2] is second
    assert first.id is not None and second.id == 70 and created[1].email == "u3@x.io"
    assert user_emails(m) == ["u1@x.io", "u2@x.io", "u3@x.io"]
    with pytest.raises(ValidationError):  # validate() runs for each: all or nothing
        m.User.create_bulk([m.User(**user(4)), m.User(email="bad", name="x")])
    assert m.User.create_bulk([m.User(**user(5))]) == 1
    assert count_rows(m, "users") == 4


@pytest.mark.anyio
async def test_create_and_create_bulk_take_instances_async(am: Models) -> None:
    one = await am.User.create(am.User(**user(1)))
    two, three = await am.User.create_bulk([am.User(**user(2)), user(3)], return_models=True)
    assert one.id is not None and two.id is not None and three.id is not None
    assert sorted(u.email for u in await am.User.all()) == ["u1@x.io", "u2@x.io", "u3@x.io"]


# -- auto_now / auto_now_add (0.1's names for info={"set_on": ...}) --------------------


def define_notes(db: Database) -> Any:
    class Note(db.Model):
        __tablename__ = "notes"
        id: Mapped[int] = mapped_column(primary_key=True)
        body: Mapped[str] = mapped_column(String(50))
        created_at: Mapped[dt.datetime] = mapped_column(
            DateTime(timezone=True), info={"auto_now_add": True}
        )
        updated_at: Mapped[dt.datetime] = mapped_column(
            DateTime(timezone=True), info={"auto_now": True}
        )

    return Note


def test_auto_now_flags_stamp_like_set_on(url: str) -> None:
    with tables(Database(url), define_notes) as Note:
        note = Note.create(body="a")
        assert note.created_at is not None and note.created_at == note.updated_at
        created = note.created_at
        note.update(body="b")
        stored = Note.get(note.id)
        assert stored.created_at == created and stored.updated_at > created
        Note.create_bulk([{"body": "c"}])
        assert Note.where(Note.body == "c").one().created_at is not None


@pytest.mark.anyio
async def test_auto_now_flags_async(url: str) -> None:
    async with async_tables(Database(url), define_notes) as Note:
        note = await Note.create(body="a")
        created = note.created_at
        await note.update(body="b")
        assert note.created_at == created and note.updated_at > created


def test_a_bad_auto_now_flag_fails_at_class_definition() -> None:
    db = Database("sqlite:///:memory:")
    with pytest.raises(ConfigurationError, match="auto_now"):

        class Bad(db.Model):
            __tablename__ = "bad"
            id: Mapped[int] = mapped_column(primary_key=True)
            at: Mapped[dt.datetime] = mapped_column(DateTime(), info={"auto_now": "yes"})


# -- to_schema -------------------------------------------------------------------------


def test_to_schema_needs_a_pydantic_model_class(m: Models) -> None:
    ada = m.User.create(user(1))

    class NotPydantic:
        id: int

    for schema in (NotPydantic, dict, UserWithId(id=1)):
        with pytest.raises(TypeError, match="pydantic model class"):
            ada.to_schema(schema)


# -- Database: engine_kwargs=, dialect=, Model._db, engines and session factories ------


def test_engine_kwargs_is_engine_options_by_its_0_1_name(url: str) -> None:
    db = Database(url, engine_kwargs={"execution_options": {"marker": "0.1"}})
    try:
        assert db.sync_engine.get_execution_options()["marker"] == "0.1"
    finally:
        db.disconnect()
    with pytest.raises(ConfigurationError, match="not both"):
        Database(url, engine_kwargs={}, engine_options={})


@pytest.mark.anyio
async def test_engine_kwargs_reach_the_async_engine(url: str) -> None:
    db = Database(url, engine_kwargs={"execution_options": {"marker": "0.1"}})
    try:
        assert db.async_engine.get_execution_options()["marker"] == "0.1"
    finally:
        await db.disconnect()


def test_dialect_must_match_the_url(url: str) -> None:
    family = Database(url).dialect
    assert Database(url, dialect=family.upper()).dialect == family
    other = "sqlite" if family == "postgresql" else "postgres"
    with pytest.raises(ConfigurationError, match="was declared"):
        Database(url, dialect=other)
    with pytest.raises(ConfigurationError, match="Unknown dialect 'nosql'"):
        Database(url, dialect="nosql")


def test_model_db_and_the_session_factories_as_0_1_documents(m: Models) -> None:
    assert m.User._db is m.db
    m.User.create(user(1))
    with m.User._db.sync_session_factory() as session:
        assert session.execute(select(m.User.email)).scalar_one() == "u1@x.io"
    with m.db.sync_engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM users")).scalar_one() == 1


@pytest.mark.anyio
async def test_async_session_factory_as_0_1_documents(am: Models) -> None:
    await am.User.create(user(1))
    stmt = am.User.where(am.User.name == "user 1").alchemize()
    async with am.User._db.async_session_factory() as session:
        assert (await session.execute(stmt)).scalars().one().email == "u1@x.io"
    async with am.db.async_engine.connect() as connection:
        assert (await connection.execute(text("SELECT count(*) FROM users"))).scalar_one() == 1
