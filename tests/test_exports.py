"""The public surface API.md promises, the exception hierarchy, and the rule that no
driver or SQLAlchemy error escapes an ORM call unwrapped.

Complements ``test_public_api.py`` (names and a few hierarchy facts) and
``test_errors.py`` (constraint classification on writes).
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable
from typing import Any, get_args

import anyio
import anyio.to_thread
import pytest
import sqlalchemy
from sqlalchemy import exc as sa_exc
from sqlalchemy import orm as sa_orm
from sqlalchemy import text
from sqlalchemy.dialects import postgresql

import duo_orm
from duo_orm import exceptions
from duo_orm.exceptions import (
    ConfigurationError,
    DatabaseBusyError,
    DatabaseError,
    DatabaseUnavailableError,
    DuoOrmError,
    IntegrityError,
    InvalidQueryError,
    MultipleObjectsFoundError,
    ObjectNotFoundError,
    TransactionConflictError,
    UnsupportedOperationError,
    ValidationError,
)

from .conftest import count_rows
from .models import Models

# API.md, "Database" and "Models": what `from duo_orm import ...` must offer.
API_CORE = ["Database", "Model", "NAMING_CONVENTION", "Query", "Page", "ValidationError"]
API_SQLALCHEMY = {  # re-exported as-is from SQLAlchemy
    "Mapped": sa_orm.Mapped,
    "mapped_column": sa_orm.mapped_column,
    "relationship": sa_orm.relationship,
    "ForeignKey": sqlalchemy.ForeignKey,
    "String": sqlalchemy.String,
    "Integer": sqlalchemy.Integer,
    "BigInteger": sqlalchemy.BigInteger,
    "SmallInteger": sqlalchemy.SmallInteger,
    "Float": sqlalchemy.Float,
    "Numeric": sqlalchemy.Numeric,
    "Boolean": sqlalchemy.Boolean,
    "Date": sqlalchemy.Date,
    "Time": sqlalchemy.Time,
    "Interval": sqlalchemy.Interval,
    "Text": sqlalchemy.Text,
    "LargeBinary": sqlalchemy.LargeBinary,
    "Enum": sqlalchemy.Enum,
    "Uuid": sqlalchemy.Uuid,
    "JSON": sqlalchemy.JSON,
    "PG_JSONB": postgresql.JSONB,
    "PG_ARRAY": postgresql.ARRAY,
    "PG_UUID": postgresql.UUID,
    "func": sqlalchemy.func,
    "text": sqlalchemy.text,
    "select": sqlalchemy.select,
    "and_": sqlalchemy.and_,
    "or_": sqlalchemy.or_,
    "not_": sqlalchemy.not_,
    # duo-orm 0.1's names (docs/upstream.md, "Top-level names")
    "Table": sqlalchemy.Table,
    "UniqueConstraint": sqlalchemy.UniqueConstraint,
    "CheckConstraint": sqlalchemy.CheckConstraint,
    "Index": sqlalchemy.Index,
    "Identity": sqlalchemy.Identity,
    "event": sqlalchemy.event,
    "ARRAY": sqlalchemy.ARRAY,
    "UUID": sqlalchemy.UUID,
}
# API.md, "Exceptions": the classes of duo_orm.exceptions (plus the three the code adds).
API_EXCEPTIONS = [
    "DuoOrmError",
    "ConfigurationError",
    "ObjectNotFoundError",
    "MultipleObjectsFoundError",
    "InvalidQueryError",
    "UnsupportedOperationError",
    "IntegrityError",
    "ValidationError",
    "DatabaseError",
    "TransactionConflictError",
    "DatabaseUnavailableError",
    "DatabaseBusyError",
]


# -- names ----------------------------------------------------------------------------


@pytest.mark.parametrize("name", [*API_CORE, *API_SQLALCHEMY, "DateTime", *API_EXCEPTIONS])
def test_api_names_import_from_duo_orm(name: str) -> None:
    namespace: dict[str, Any] = {}
    exec(f"from duo_orm import {name}", namespace)
    assert namespace[name] is getattr(duo_orm, name)
    assert name in duo_orm.__all__


@pytest.mark.parametrize("name", sorted(API_SQLALCHEMY))
def test_reexports_are_the_sqlalchemy_objects(name: str) -> None:
    assert getattr(duo_orm, name) is API_SQLALCHEMY[name]


def test_datetime_is_a_drop_in_sqlalchemy_type() -> None:
    column_type = duo_orm.DateTime(timezone=True)
    assert isinstance(column_type, sqlalchemy.types.TypeEngine)
    assert column_type.timezone is True and column_type.python_type.__name__ == "datetime"


def test_star_import_gives_exactly_all() -> None:
    namespace: dict[str, Any] = {}
    exec("from duo_orm import *", namespace)
    exported = {key for key in namespace if not key.startswith("__")}
    assert exported == set(duo_orm.__all__)
    assert len(duo_orm.__all__) == len(set(duo_orm.__all__))  # no duplicates
    assert isinstance(duo_orm.__version__, str) and duo_orm.__version__


@pytest.mark.parametrize("name", API_EXCEPTIONS)
def test_api_exceptions_import_from_duo_orm_exceptions(name: str) -> None:
    namespace: dict[str, Any] = {}
    exec(f"from duo_orm.exceptions import {name}", namespace)
    error = namespace[name]
    assert isinstance(error, type) and issubclass(error, Exception)
    assert error is getattr(duo_orm, name)  # one class, reachable from both places
    assert name in exceptions.__all__


def test_exceptions_all_resolves_and_has_the_integrity_kind() -> None:
    for name in exceptions.__all__:
        assert hasattr(exceptions, name), name
    assert set(get_args(exceptions.IntegrityKind)) == {
        "unique",
        "foreign_key",
        "not_null",
        "check",
        "other",
    }


# -- hierarchy ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "ancestors"),
    [
        (ConfigurationError, [DuoOrmError]),
        (ObjectNotFoundError, [DuoOrmError, LookupError]),
        (MultipleObjectsFoundError, [DuoOrmError, LookupError]),
        (InvalidQueryError, [DuoOrmError]),
        (UnsupportedOperationError, [InvalidQueryError, DuoOrmError]),
        (IntegrityError, [DuoOrmError]),
        (ValidationError, [DuoOrmError, ValueError]),
        (DatabaseError, [DuoOrmError]),
        (TransactionConflictError, [DatabaseError, DuoOrmError]),
        (DatabaseUnavailableError, [DatabaseError, DuoOrmError]),
        (
            DatabaseBusyError,
            [TransactionConflictError, DatabaseUnavailableError, DatabaseError, DuoOrmError],
        ),
    ],
)
def test_hierarchy(error: type[Exception], ancestors: list[type[Exception]]) -> None:
    for ancestor in ancestors:
        assert issubclass(error, ancestor), (error, ancestor)
    assert issubclass(DuoOrmError, Exception) and not issubclass(DuoOrmError, LookupError)


def test_http_mapped_classes_never_overlap() -> None:
    # 422 / 404 / 409 / 400 must be decidable from the class alone
    mapped = [ValidationError, ObjectNotFoundError, IntegrityError, InvalidQueryError]
    for first, second in itertools.permutations(mapped, 2):
        assert not issubclass(first, second), (first, second)
    for unmapped in (
        ConfigurationError,
        DatabaseError,
        TransactionConflictError,
        DatabaseUnavailableError,
        DatabaseBusyError,
    ):
        assert not any(issubclass(unmapped, cls) for cls in mapped), unmapped  # 500


def test_validation_error_carries_message_field_detail() -> None:
    bare = ValidationError("required")
    assert (bare.message, bare.field, bare.detail) == ("required", None, None)
    assert str(bare) == "required"
    full = ValidationError("too short", "name", {"min": 3})
    assert (full.message, full.field, full.detail) == ("too short", "name", {"min": 3})
    assert "name" in repr(full) and "too short" in repr(full)
    with pytest.raises(ValueError):  # catchable as the builtin too
        raise full


def test_integrity_error_carries_kind_and_constraint() -> None:
    default = IntegrityError("violated")
    assert (default.kind, default.constraint, default.message) == ("other", None, "violated")
    named = IntegrityError("dup", kind="unique", constraint="users_email_key")
    assert (named.kind, named.constraint, str(named)) == ("unique", "users_email_key", "dup")


def test_only_conflicts_and_unavailability_are_retryable() -> None:
    assert TransactionConflictError.retryable is True
    assert TransactionConflictError("lost a race").retryable is True
    assert DatabaseUnavailableError("server is down").retryable is True
    assert DatabaseBusyError("database is locked").retryable is True
    for other in (DatabaseError, IntegrityError, DuoOrmError):
        assert getattr(other("x"), "retryable", False) is False


# -- no unwrapped driver / SQLAlchemy error from an ORM call --------------------------

BAD_SQL = text("no_such_column = 1")  # a condition the database itself refuses

QUERY_CALLS: dict[str, Callable[[Any], Any]] = {
    "all": lambda q: q.all(),
    "first": lambda q: q.first(),
    "one": lambda q: q.one(),
    "one_or_none": lambda q: q.one_or_none(),
    "count": lambda q: q.count(),
    "exists": lambda q: q.exists(),
    "page": lambda q: q.page(1, 10),
    "update_bulk": lambda q: q.update_bulk({"name": "x"}),
    "update_bulk_hooks": lambda q: q.update_bulk({"name": "x"}, with_hooks=True),
    "delete_bulk": lambda q: q.delete_bulk(),
    "delete_bulk_hooks": lambda q: q.delete_bulk(with_hooks=True),
}


def assert_wrapped(error: BaseException) -> None:
    """A duo-orm error, with the driver's error kept as its cause."""
    assert isinstance(error, DatabaseError) and not isinstance(error, sa_exc.SQLAlchemyError)
    assert isinstance(error.__cause__, sa_exc.DBAPIError)


@pytest.mark.parametrize("call", sorted(QUERY_CALLS))
def test_database_refusal_is_wrapped_sync(m: Models, call: str) -> None:
    m.User.create(email="a@x.io", name="a")
    with pytest.raises(DuoOrmError) as info:
        QUERY_CALLS[call](m.User.where(BAD_SQL))
    assert_wrapped(info.value)
    assert count_rows(m, "users") == 1


@pytest.mark.parametrize("call", sorted(QUERY_CALLS))
@pytest.mark.anyio
async def test_database_refusal_is_wrapped_async(am: Models, call: str) -> None:
    await am.User.create(email="a@x.io", name="a")
    with pytest.raises(DuoOrmError) as info:
        await QUERY_CALLS[call](am.User.where(BAD_SQL))
    assert_wrapped(info.value)
    assert count_rows(am, "users") == 1


def test_iterate_refusal_is_wrapped(m: Models) -> None:
    with pytest.raises(DuoOrmError) as info:
        list(m.User.where(BAD_SQL).iterate())
    assert_wrapped(info.value)

    async def stream() -> None:
        async for _ in m.User.where(BAD_SQL).iterate():
            pass

    with pytest.raises(DuoOrmError) as async_info:
        asyncio.run(stream())
    assert_wrapped(async_info.value)


def test_missing_table_is_wrapped_for_every_instance_and_class_call(m: Models) -> None:
    created = m.User.create(email="a@x.io", name="a")
    m.db.drop_all()
    calls: list[Callable[[], Any]] = [
        lambda: m.User.create(email="b@x.io", name="b"),
        lambda: m.User.create_bulk([{"email": "c@x.io", "name": "c"}]),
        lambda: m.User.get(1),
        lambda: m.User.get_one(1),
        lambda: created.update(name="renamed"),
        lambda: created.refresh(),
        lambda: created.delete(),
        lambda: m.User.from_schema(email="d@x.io", name="d").save(),
    ]
    for call in calls:
        with pytest.raises(DuoOrmError) as info:
            call()
        assert_wrapped(info.value)


def test_errors_inside_a_transaction_are_wrapped_and_roll_it_back_sync(m: Models) -> None:
    with pytest.raises(DatabaseError) as info, m.db.transaction():
        m.User.create(email="a@x.io", name="a")
        m.User.where(BAD_SQL).count()
    assert_wrapped(info.value)
    assert count_rows(m, "users") == 0


@pytest.mark.anyio
async def test_errors_inside_a_transaction_are_wrapped_async_and_from_worker_threads(
    am: Models,
) -> None:
    with pytest.raises(DatabaseError) as info:
        async with am.db.transaction():
            await am.User.create(email="a@x.io", name="a")
            await anyio.to_thread.run_sync(lambda: am.User.where(BAD_SQL).count())
    assert_wrapped(info.value)
    assert count_rows(am, "users") == 0


def test_failure_at_commit_is_wrapped_sync(m: Models) -> None:
    m.User.create(email="a@x.io", name="a")
    m.User.create(email="b@x.io", name="b")
    with pytest.raises(IntegrityError) as info, m.db.transaction():
        second = m.User.get_one(2)
        second.email = "a@x.io"  # no ORM call: flushed only by the commit at block exit
    assert info.value.kind == "unique"
    assert isinstance(info.value.__cause__, sa_exc.IntegrityError)
    with pytest.raises(ValidationError) as invalid, m.db.transaction():
        m.User.get_one(2).email = "no-at-sign"  # validate() runs at the commit's flush
    assert invalid.value.field == "email"
    assert sorted(u.email for u in m.User.all()) == ["a@x.io", "b@x.io"]


@pytest.mark.anyio
async def test_failure_at_commit_is_wrapped_async(am: Models) -> None:
    await am.User.create(email="a@x.io", name="a")
    await am.User.create(email="b@x.io", name="b")
    with pytest.raises(IntegrityError) as info:
        async with am.db.transaction():
            (await am.User.get_one(2)).email = "a@x.io"
    assert info.value.kind == "unique"
    assert not isinstance(info.value, sa_exc.SQLAlchemyError)
    assert sorted(u.email for u in await am.User.all()) == ["a@x.io", "b@x.io"]


def test_stale_write_is_object_not_found(m: Models) -> None:
    created = m.User.create(email="a@x.io", name="a")
    stale = m.User.get_one(created.id)
    created.delete()
    with pytest.raises(ObjectNotFoundError) as info:
        stale.update(name="too late")  # UPDATE matches no row
    assert isinstance(info.value, LookupError)
    assert not isinstance(info.value, sa_exc.SQLAlchemyError)
    assert count_rows(m, "users") == 0


def test_one_distinguishes_none_from_many(m: Models) -> None:
    with pytest.raises(ObjectNotFoundError):
        m.User.where(m.User.name == "nobody").one()
    m.User.create(email="a@x.io", name="same")
    m.User.create(email="b@x.io", name="same")
    with pytest.raises(MultipleObjectsFoundError) as info:
        m.User.where(m.User.name == "same").one()
    assert isinstance(info.value, LookupError)
