"""``json()`` and ``array()``: conditions on JSON and ARRAY columns, on each database
that can answer them, and a typed error on the ones that cannot."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from duo_orm import (
    JSON,
    PG_ARRAY,
    Database,
    InvalidQueryError,
    Mapped,
    String,
    UnsupportedOperationError,
    array,
    json,
    mapped_column,
)

from .conftest import async_tables, tables


@dataclass
class Fleet:
    db: Database
    Device: Any


def define_fleet(db: Database) -> Fleet:
    class Device(db.Model):
        __tablename__ = "devices"
        id: Mapped[int] = mapped_column(primary_key=True)
        meta: Mapped[dict[str, Any]] = mapped_column(JSON)

    return Fleet(db, Device)


DEVICES = [
    {"id": 1, "meta": {"status": "active", "flags": {"beta": True}, "retries": 7, "gone": None}},
    {"id": 2, "meta": {"status": "archived", "flags": {"beta": False}, "retries": 2}},
    {"id": 3, "meta": {"status": "active", "flags": {}, "retries": 0, "tags": ["a", "b"]}},
]


@pytest.fixture
def fleet(url: str) -> Iterator[Fleet]:
    with tables(Database(url), define_fleet) as f:
        f.Device.create_bulk([f.Device(**row) for row in DEVICES])
        yield f


@pytest.fixture
async def afleet(url: str) -> AsyncIterator[Fleet]:
    async with async_tables(Database(url), define_fleet) as f:
        await f.Device.create_bulk([f.Device(**row) for row in DEVICES])
        yield f


def ids(rows: list[Any]) -> list[int]:
    return sorted(row.id for row in rows)


def test_json_paths_compare_as_their_python_type_sync(fleet: Fleet) -> None:
    D = fleet.Device
    meta = json(D.meta)
    assert ids(D.where(meta["status"] == "active").all()) == [1, 3]
    assert ids(D.where(meta["status"] != "active").all()) == [2]
    assert ids(D.where(meta["flags"]["beta"].is_true()).all()) == [1]
    assert ids(D.where(meta["flags"]["beta"].is_false()).all()) == [2]
    assert ids(D.where(meta["flags"]["beta"].is_null()).all()) == [3]  # missing
    assert ids(D.where(meta["gone"].is_null()).all()) == [1, 2, 3]  # JSON null or missing
    assert ids(D.where(meta["gone"].is_not_null()).all()) == []
    assert ids(D.where(meta["retries"].as_integer() > 5).all()) == [1]
    assert ids(D.where(meta["retries"] == 2).all()) == [2]  # compared as a number
    assert ids(D.where(meta["flags"]["beta"] == True).all()) == [1]  # noqa: E712
    assert ids(D.where(meta["tags"][1].as_text() == "b").all()) == [3]
    assert ids(D.where(meta["retries"].as_float() < 1.5, meta.is_not_null()).all()) == [3]
    assert ids(D.where(meta["status"].equals("archived")).all()) == [2]
    assert ids(D.where(meta["retries"].not_equals(0)).all()) == [1, 2]
    assert ids(D.where(meta["flags"]["beta"].as_boolean() == False).all()) == [2]  # noqa: E712
    assert ids(D.where(meta["gone"] == None).all()) == [1, 2, 3]  # noqa: E711


@pytest.mark.anyio
async def test_json_paths_async(afleet: Fleet) -> None:
    D = afleet.Device
    meta = json(D.meta)
    found = await D.where((meta["status"] == "active") & (meta["retries"].as_integer() >= 1)).all()
    assert ids(found) == [1]
    assert await D.where(meta["flags"]["beta"].is_true()).count() == 1


@pytest.mark.postgres
def test_json_documents_on_postgresql_sync(fleet: Fleet) -> None:
    D = fleet.Device
    meta = json(D.meta)
    assert ids(D.where(meta.contains({"flags": {"beta": True}})).all()) == [1]
    assert ids(D.where(meta["flags"].has_key("beta")).all()) == [1, 2]
    assert ids(D.where(meta["flags"] == {}).all()) == [3]
    assert ids(D.where(meta["tags"] != ["a", "b"]).all()) == []  # missing is not "different"
    assert ids(D.where(meta["tags"] == ["a", "b"]).all()) == [3]


@pytest.mark.postgres
@pytest.mark.anyio
async def test_json_documents_on_postgresql_async(afleet: Fleet) -> None:
    meta = json(afleet.Device.meta)
    assert await afleet.Device.where(meta["flags"].contains({"beta": False})).count() == 1


def test_json_refuses_what_sqlite_cannot_answer_and_bad_input() -> None:
    D = define_fleet(Database("sqlite:///:memory:")).Device
    meta = json(D.meta)
    for unsupported in (
        lambda: meta.contains({"a": 1}),
        lambda: meta["flags"].has_key("beta"),
        lambda: meta["flags"] == {"beta": True},
    ):
        with pytest.raises(UnsupportedOperationError, match="PostgreSQL"):
            unsupported()
    for mistake in (
        lambda: json(D.id),  # not a JSON column
        lambda: json("meta"),
        lambda: meta[1.5],
        lambda: meta["a"] == object(),
        lambda: meta.as_integer(),  # the whole document is no number
        lambda: meta["flags"].has_key(1),
    ):
        with pytest.raises(InvalidQueryError):
            mistake()


@dataclass
class Library:
    db: Database
    Article: Any


def define_library(db: Database) -> Library:
    class Article(db.Model):
        __tablename__ = "articles"
        id: Mapped[int] = mapped_column(primary_key=True)
        tags: Mapped[list[str]] = mapped_column(PG_ARRAY(String(20)))

    return Library(db, Article)


ARTICLES = [
    {"id": 1, "tags": ["python", "async"]},
    {"id": 2, "tags": ["python"]},
    {"id": 3, "tags": ["guide", "go", "rust"]},
    {"id": 4, "tags": []},
]


@pytest.mark.postgres
def test_array_membership_and_length_sync(url: str) -> None:
    with tables(Database(url), define_library) as lib:
        A = lib.Article
        A.create_bulk([A(**row) for row in ARTICLES])
        tags = array(A.tags)
        assert ids(A.where(tags.includes("python")).all()) == [1, 2]
        assert ids(A.where(tags.includes_all(["python", "async"])).all()) == [1]
        assert ids(A.where(tags.includes_any(("guide", "tutorial"))).all()) == [3]
        assert ids(A.where(tags.length() > 2).all()) == [3]
        assert ids(A.where(tags.length() == 0).all()) == [4]
        assert ids(A.where(tags.equals(["python"])).all()) == [2]
        assert ids(A.where(tags.not_equals(["python"])).all()) == [1, 3, 4]


@pytest.mark.postgres
@pytest.mark.anyio
async def test_array_membership_async(url: str) -> None:
    async with async_tables(Database(url), define_library) as lib:
        await lib.Article.create_bulk([lib.Article(**row) for row in ARTICLES])
        tags = array(lib.Article.tags)
        assert ids(await lib.Article.where(tags.includes_any(["go", "async"])).all()) == [1, 3]


def test_array_is_postgresql_only_and_takes_lists() -> None:
    A = define_library(Database("sqlite:///:memory:")).Article
    with pytest.raises(UnsupportedOperationError, match="only on PostgreSQL"):
        array(A.tags)
    with pytest.raises(InvalidQueryError):
        array(A.id)  # not an ARRAY column
    A = define_library(Database("postgresql://u@127.0.0.1/unused")).Article
    with pytest.raises(InvalidQueryError, match="includes\\(\\) for one value"):
        array(A.tags).includes_all("python")  # a string is not a list of tags
