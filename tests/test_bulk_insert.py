"""``create_bulk`` without hooks as Core executemany INSERTs (duo_orm.bulk_insert).

What a user relies on: the rows stored are the rows SQLAlchemy's own bulk INSERT
(``session.execute(insert(Model), rows)``) stores from the same input, a ``None``
where the column has a default included, in the order given; and whatever only the
ORM's bulk INSERT does (a version counter, ``do_orm_execute`` listeners) still happens.
"""

from __future__ import annotations

import datetime as dt
import decimal
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest
from sqlalchemy import event, insert, select, text
from sqlalchemy.orm import ORMExecuteState, Session

from duo_orm import (
    JSON,
    Database,
    DateTime,
    IntegrityError,
    Mapped,
    Numeric,
    String,
    mapped_column,
)

from .conftest import async_tables, tables


def define(db: Database) -> Any:
    class Entry(db.Model):
        __tablename__ = "entries"
        id: Mapped[int] = mapped_column(primary_key=True)
        side: Mapped[str] = mapped_column(String(5))
        name: Mapped[str] = mapped_column("entry_name", String(50))  # attribute != column
        n: Mapped[int | None] = mapped_column(default=7)
        status: Mapped[str | None] = mapped_column(String(10), server_default=text("'new'"))
        note: Mapped[str | None] = mapped_column(String(50))
        data: Mapped[dict[str, Any] | None] = mapped_column(JSON)
        price: Mapped[decimal.Decimal | None] = mapped_column(Numeric(10, 2))
        code: Mapped[str | None] = mapped_column(String(10), unique=True)
        created_at: Mapped[dt.datetime | None] = mapped_column(
            DateTime(timezone=True), info={"set_on": "create"}
        )

    class Versioned(db.Model):
        __tablename__ = "versioned"
        id: Mapped[int] = mapped_column(primary_key=True)
        title: Mapped[str] = mapped_column(String(50))
        version: Mapped[int] = mapped_column(nullable=False)
        __mapper_args__ = {"version_id_col": version}  # noqa: RUF012 - SQLAlchemy's own

    return SimpleNamespace(db=db, Entry=Entry, Versioned=Versioned)


@pytest.fixture
def s(url: str) -> Iterator[Any]:
    with tables(Database(url), define) as models:
        yield models


def payloads(side: str) -> list[dict[str, Any]]:
    """Rows that give different columns, and None where a default, a server default,
    JSON's null and a plain NULL would each apply."""
    return [
        {"side": side, "name": "full", "n": 1, "status": "done", "note": "x", "data": {"a": 1}},
        {"side": side, "name": "no n", "n": None, "price": decimal.Decimal("2.50")},
        {"side": side, "name": "no status", "status": None, "data": None},
        {"side": side, "name": "bare"},
        {"side": side, "name": "no note", "note": None, "n": 3},
        {"side": side, "name": "bare again"},
    ]


def stored(session: Session, side: str) -> list[tuple[Any, ...]]:
    """What each row holds, in insertion order; ``data IS NULL`` tells SQL NULL from
    JSON's null."""
    return [
        tuple(row)
        for row in session.execute(
            text(
                "SELECT entry_name, n, status, note, data IS NULL, price FROM entries "
                "WHERE side = :side ORDER BY id"
            ),
            {"side": side},
        )
    ]


def test_create_bulk_stores_what_sqlalchemys_bulk_insert_stores(s: Any) -> None:
    engine = s.db.sync_engine
    with Session(engine) as session, session.begin():
        session.execute(insert(s.Entry), payloads("orm"))
    assert s.Entry.create_bulk(payloads("duo"), batch_size=4) == 6

    with Session(engine) as session:
        ours, theirs = stored(session, "duo"), stored(session, "orm")
        data = {
            name: value
            for name, value in session.execute(
                select(s.Entry.name, s.Entry.data).where(s.Entry.side == "duo")
            )
        }
    assert ours == theirs
    assert [row[0] for row in ours] == [p["name"] for p in payloads("duo")]  # order kept
    assert ours[1][1] == 7  # None where the column has a default: the default
    assert ours[2][2] == "new"  # and where the database has one: the database's
    assert not ours[2][4] and data["no status"] is None  # JSON's null, not SQL NULL
    assert ours[3][3] is None and ours[3][4]  # nothing given: NULL
    assert ours[4][3] is None and ours[4][1] == 3
    created = s.Entry.where(s.Entry.side == "duo").all()
    assert all(entry.created_at is not None for entry in created)


@pytest.mark.anyio
async def test_async_create_bulk_stores_the_same_rows(url: str) -> None:
    async with async_tables(Database(url), define) as models:
        await models.Entry.create_bulk(payloads("duo"))
        async with models.db.transaction() as session:
            await session.execute(insert(models.Entry), payloads("orm"))
            ours = await session.run_sync(stored, "duo")
            theirs = await session.run_sync(stored, "orm")
    assert ours == theirs
    assert [row[0] for row in ours] == [p["name"] for p in payloads("duo")]


def test_rows_that_all_give_the_same_columns_go_in_as_given(s: Any) -> None:
    rows = [{"side": "duo", "name": f"r{i}", "n": i, "note": None} for i in range(25)]
    assert s.Entry.create_bulk(rows, batch_size=10) == 25
    found = s.Entry.where(s.Entry.side == "duo").order_by("id").all()
    assert [(e.name, e.n, e.note) for e in found] == [(f"r{i}", i, None) for i in range(25)]
    assert rows[0] == {"side": "duo", "name": "r0", "n": 0, "note": None}  # not changed


def test_a_version_counter_starts_at_one(s: Any) -> None:
    # the ORM fills it in: no value is required for it
    s.Versioned.create_bulk([{"title": "a"}, {"title": "b"}])
    assert s.Versioned.create(title="c").version == 1
    assert [v.version for v in s.Versioned.order_by("id").all()] == [1, 1, 1]


def test_do_orm_execute_listeners_still_see_the_orm_statement(s: Any) -> None:
    seen: list[Any] = []

    def record(state: ORMExecuteState) -> None:
        if state.is_insert:
            seen.append(state.bind_mapper)

    event.listen(Session, "do_orm_execute", record)
    try:
        s.Entry.create_bulk([{"side": "duo", "name": "a"}, {"side": "duo", "name": "b"}])
    finally:
        event.remove(Session, "do_orm_execute", record)
    assert seen == [s.Entry.__mapper__]
    assert s.Entry.where(s.Entry.side == "duo").count() == 2


def test_a_batch_the_database_refuses_keeps_none_of_the_rows(s: Any) -> None:
    rows = [{"side": "duo", "name": f"r{i}", "code": f"c{i}"} for i in range(5)]
    rows.append({"side": "duo", "name": "again", "code": "c0"})  # in the third batch
    with pytest.raises(IntegrityError) as caught:
        s.Entry.create_bulk(rows, batch_size=2)
    assert caught.value.kind == "unique"
    assert s.Entry.count() == 0
