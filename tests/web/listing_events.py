"""The model and listing behind the listing tests: 23 events with ties in every column."""

from __future__ import annotations

import datetime as dt
from typing import Any

from duo_orm import Database, Mapped, String, mapped_column
from duo_orm.datetime_type import DateTime
from duo_orm.web.listing import Listing

START = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
NAMES = ["ann", "bob", "cy", "dee", "ann", "bob", "50%_off", "Anna"]


def define(db: Database) -> Any:
    class Event(db.Model):
        __tablename__ = "events"
        id: Mapped[int] = mapped_column(primary_key=True)
        name: Mapped[str] = mapped_column(String(40))
        score: Mapped[int]
        day: Mapped[dt.date]
        at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
        active: Mapped[bool]
        note: Mapped[str | None] = mapped_column(String(40))
        secret: Mapped[str] = mapped_column(String(40), default="hidden")

    return Event


def rows() -> list[dict[str, Any]]:
    return [
        {
            "name": NAMES[i % len(NAMES)],
            "score": i % 3,
            "day": dt.date(2026, 1, 1 + i % 5),
            "at": START + dt.timedelta(hours=i),
            "active": i % 2 == 0,
            "note": None if i % 4 == 0 else f"n{i}",
        }
        for i in range(23)
    ]


def listing(model: Any, **options: Any) -> Listing:
    return Listing(
        model,
        sort=("id", "name", "score", "at", "day"),
        filters={
            "name": ("eq", "ne", "in", "icontains", "istartswith"),
            "score": ("lt", "le", "gt", "ge", "in"),
            "day": ("ge", "lt"),
            "at": ("ge", "lt"),
            "active": ("eq",),
            "note": ("is_null",),
        },
        default_size=4,
        max_size=50,
        **options,
    )
