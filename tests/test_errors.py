"""Driver errors become typed duo-orm errors, classified the same way on every database."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import CheckConstraint, text
from sqlalchemy import exc as sa_exc

from duo_orm import Database, ForeignKey, IntegrityError, Mapped, String, mapped_column
from duo_orm.errors import translate

from .conftest import async_tables, count_rows, tables


@dataclass
class Shop:
    db: Database
    Owner: Any
    Item: Any


def define_shop(db: Database) -> Shop:
    class Owner(db.Model):
        __tablename__ = "owners"
        id: Mapped[int] = mapped_column(primary_key=True)
        email: Mapped[str] = mapped_column(String(100), unique=True)

    class Item(db.Model):
        __tablename__ = "items"
        __table_args__ = (CheckConstraint("price >= 0", name="items_price_not_negative"),)
        id: Mapped[int] = mapped_column(primary_key=True)
        owner_id: Mapped[int] = mapped_column(ForeignKey("owners.id"))
        price: Mapped[int]

    return Shop(db, Owner, Item)


@pytest.fixture
def shop(url: str) -> Iterator[Shop]:
    with tables(Database(url), define_shop) as models:
        yield models


@pytest.fixture
async def ashop(url: str) -> AsyncIterator[Shop]:
    async with async_tables(Database(url), define_shop) as models:
        yield models


rows = count_rows


def test_unique_violation_sync(shop: Shop) -> None:
    shop.Owner.create(email="a@x.io")
    with pytest.raises(IntegrityError) as info:
        shop.Owner.create(email="a@x.io")
    assert info.value.kind == "unique"
    assert rows(shop, "owners") == 1


@pytest.mark.anyio
async def test_unique_violation_async(ashop: Shop) -> None:
    await ashop.Owner.create(email="a@x.io")
    with pytest.raises(IntegrityError) as info:
        await ashop.Owner.create(email="a@x.io")
    assert info.value.kind == "unique"
    assert rows(ashop, "owners") == 1


def test_foreign_key_violation_sync(shop: Shop) -> None:
    with pytest.raises(IntegrityError) as info:
        shop.Item.create(owner_id=42, price=1)
    assert info.value.kind == "foreign_key"
    assert rows(shop, "items") == 0


@pytest.mark.anyio
async def test_foreign_key_violation_async(ashop: Shop) -> None:
    with pytest.raises(IntegrityError) as info:
        await ashop.Item.create(owner_id=42, price=1)
    assert info.value.kind == "foreign_key"
    assert rows(ashop, "items") == 0


def test_check_violation_sync(shop: Shop) -> None:
    owner = shop.Owner.create(email="a@x.io")
    with pytest.raises(IntegrityError) as info:
        shop.Item.create(owner_id=owner.id, price=-1)
    assert info.value.kind == "check"
    assert rows(shop, "items") == 0


@pytest.mark.anyio
async def test_check_violation_async(ashop: Shop) -> None:
    owner = await ashop.Owner.create(email="a@x.io")
    with pytest.raises(IntegrityError) as info:
        await ashop.Item.create(owner_id=owner.id, price=-1)
    assert info.value.kind == "check"
    assert rows(ashop, "items") == 0


def test_not_null_violation_from_raw_sql_sync(shop: Shop) -> None:
    # The ORM refuses a missing required field itself; only raw SQL reaches the
    # database's NOT NULL check. Raw sessions raise SQLAlchemy's own errors, which
    # the adapters classify with the same translate().
    with pytest.raises(sa_exc.IntegrityError) as info, shop.db.transaction() as session:
        session.execute(text("INSERT INTO owners (id, email) VALUES (1, NULL)"))
    translated = translate(info.value)
    assert isinstance(translated, IntegrityError) and translated.kind == "not_null"
    assert rows(shop, "owners") == 0


@pytest.mark.anyio
async def test_not_null_violation_from_raw_sql_async(ashop: Shop) -> None:
    with pytest.raises(sa_exc.IntegrityError) as info:
        async with ashop.db.transaction() as session:
            await session.execute(text("INSERT INTO owners (id, email) VALUES (1, NULL)"))
    translated = translate(info.value)
    assert isinstance(translated, IntegrityError) and translated.kind == "not_null"
    assert rows(ashop, "owners") == 0


def test_unique_violation_names_the_constraint_on_postgresql(shop: Shop) -> None:
    shop.Owner.create(email="a@x.io")
    with pytest.raises(IntegrityError) as info:
        shop.Owner.create(email="a@x.io")
    if shop.db.dialect == "postgresql":
        assert info.value.constraint == "uq_owners_email"  # the naming convention
    assert "owners" in str(info.value)


def test_a_hooks_own_network_error_is_not_database_unavailable(tmp_path: Any) -> None:
    """A ``validate()`` that calls another service and fails must not blame the database
    (a 503 and an ERROR that send the operator to the wrong server)."""
    db = Database(f"sqlite:///{tmp_path / 'hooks.db'}")

    class Signup(db.Model):
        __tablename__ = "signups"
        id: Mapped[int] = mapped_column(primary_key=True)

        def validate(self) -> None:
            raise ConnectionRefusedError("the e-mail checker is down")

    db.create_all()
    with pytest.raises(ConnectionRefusedError, match="e-mail checker"):
        Signup.create({})
    db.disconnect()
