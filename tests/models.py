"""The models the core tests use, defined afresh for each test's Database."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from duo_orm import (
    Database,
    DateTime,
    ForeignKey,
    Mapped,
    String,
    ValidationError,
    mapped_column,
    relationship,
)


@dataclass
class Models:
    db: Database
    User: Any
    Customer: Any
    Order: Any
    Membership: Any


def define_models(db: Database) -> Models:
    class User(db.Model):
        __tablename__ = "users"
        id: Mapped[int] = mapped_column(primary_key=True)
        email: Mapped[str] = mapped_column(String(255), unique=True)
        name: Mapped[str] = mapped_column(String(50))
        age: Mapped[int | None]
        active: Mapped[bool] = mapped_column(default=True)
        created_at: Mapped[dt.datetime] = mapped_column(
            DateTime(timezone=True), info={"set_on": "create"}
        )
        updated_at: Mapped[dt.datetime] = mapped_column(
            DateTime(timezone=True), info={"set_on": {"create", "update"}}
        )

        def validate(self) -> None:
            if "@" not in self.email:
                raise ValidationError("email must contain @", field="email")
            if self.name == "invalid":
                raise ValidationError("name may not be 'invalid'", field="name")

    class Customer(db.Model):
        __tablename__ = "customers"
        id: Mapped[int] = mapped_column(primary_key=True)
        name: Mapped[str] = mapped_column(String(50))
        orders: Mapped[list[Order]] = relationship(back_populates="customer")

    class Order(db.Model):
        __tablename__ = "orders"
        id: Mapped[int] = mapped_column(primary_key=True)
        total: Mapped[int]
        customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"))
        customer: Mapped[Customer] = relationship(back_populates="orders")

        def validate(self) -> None:
            if self.total < 0:
                raise ValidationError("total must be >= 0", field="total")

    class Membership(db.Model):
        __tablename__ = "memberships"
        user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), primary_key=True)
        group: Mapped[str] = mapped_column(String(20), primary_key=True)

    return Models(db, User, Customer, Order, Membership)
