"""Portable column types behave the same on every database."""

from __future__ import annotations

import datetime as dt
import decimal
import uuid
from typing import Any

import pytest

from duo_orm import JSON, Database, DateTime, Mapped, Numeric, String, Uuid, mapped_column


def define_record(db: Database) -> Any:
    class Record(db.Model):
        __tablename__ = "records"
        id: Mapped[int] = mapped_column(primary_key=True)
        key: Mapped[uuid.UUID] = mapped_column(Uuid, default=uuid.uuid4)
        data: Mapped[dict[str, Any]] = mapped_column(JSON)
        amount: Mapped[decimal.Decimal] = mapped_column(Numeric(10, 2))
        at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
        label: Mapped[str | None] = mapped_column(String(10))

    return Record


VALUES: dict[str, Any] = {
    "data": {"nested": {"list": [1, "two", None], "flag": True}, "unicode": "żółw"},
    "amount": decimal.Decimal("12.34"),
    # an offset other than UTC: every database must hand back the same instant, aware
    "at": dt.datetime(2026, 1, 2, 5, 4, 5, tzinfo=dt.timezone(dt.timedelta(hours=2))),
}


def check(record: Any) -> None:
    assert record.data == VALUES["data"]
    assert record.amount == decimal.Decimal("12.34")
    assert record.at == VALUES["at"] and record.at.utcoffset() == dt.timedelta(0)
    assert isinstance(record.key, uuid.UUID)


def test_json_uuid_numeric_datetime_round_trip_sync(url: str) -> None:
    db = Database(url)
    Record = define_record(db)
    db.create_all()
    try:
        created = Record.create(VALUES)
        check(Record.get_one(created.id))
        assert Record.get_one(created.id).key == created.key
    finally:
        db.disconnect()


@pytest.mark.anyio
async def test_json_uuid_numeric_datetime_round_trip_async(url: str) -> None:
    db = Database(url)
    Record = define_record(db)
    await db.create_all()
    try:
        created = await Record.create(VALUES)
        loaded = await Record.get_one(created.id)
        check(loaded)
        await loaded.update(data={"replaced": [True]})
        assert (await Record.get_one(created.id)).data == {"replaced": [True]}
    finally:
        await db.disconnect()
