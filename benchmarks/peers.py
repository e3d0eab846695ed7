"""The peer ORMs in the core scenarios: SQLModel, advanced-alchemy's repository, Tortoise ORM.

Each peer does a scenario's work the way its own documentation does it, on the same
``bench_users`` table as duo-orm and the SQLAlchemy baseline, and joins the same
interleaved rounds (``core`` merges these ``Additions`` by scenario key). The
SQLAlchemy-based peers use the baseline's default engine (``create_engine(url)``, as
their docs write it); Tortoise opens its own connections with its own defaults, on
SQLite to a file of its own (``core.own_database``: Tortoise switches a file to WAL).
Nothing here creates or drops tables: ``core`` makes the one table everyone maps.

A peer that does not import (``pip install --group bench``) is left out of the run. A
scenario a peer has no way to do is left out for that peer rather than approximated;
docs/performance.md lists those and where a peer's call does more or less work.
"""

from __future__ import annotations

import importlib
import itertools
import sys
import types
from collections.abc import Awaitable, Callable
from functools import cache
from typing import Any
from urllib.parse import quote

from sqlalchemy import Integer, String
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from duo_orm import Database

from .core import SINGLE, define, own_database
from .harness import Additions

__all__ = ["LABELS", "AsyncPeers", "missing", "sync_additions"]

SQLMODEL, ADVANCED_ALCHEMY, TORTOISE = "sqlmodel", "advanced-alchemy", "tortoise-orm"
# Not a peer: duo-orm itself given a ``postgresql+asyncpg://`` URL (async, PostgreSQL),
# beside Tortoise's own driver.
DUO_ASYNCPG = "duo-orm-asyncpg"
LABELS = {
    DUO_ASYNCPG: "duo-orm on asyncpg",
    SQLMODEL: "SQLModel",
    ADVANCED_ALCHEMY: "advanced-alchemy",
    TORTOISE: "Tortoise ORM",
}
_MODULES = {
    DUO_ASYNCPG: "asyncpg",
    SQLMODEL: "sqlmodel",
    ADVANCED_ALCHEMY: "advanced_alchemy",
    TORTOISE: "tortoise",
}

Rows = Callable[[int], list[dict[str, Any]]]


@cache
def available(peer: str) -> bool:
    try:
        importlib.import_module(_MODULES[peer])
    except ImportError:
        return False
    return True


def missing() -> list[str]:
    """Labels of the peers that cannot be imported here (so are left out of the run)."""
    return [LABELS[peer] for peer in LABELS if not available(peer)]


def _register(more: Additions, peer: str, load: Callable[[list[int]], Any], **works: Any) -> None:
    """A peer's loader, and its implementation of each scenario it does (by key)."""
    more.loaders.append(load)
    for key, work in works.items():
        more.add(key, peer, work)


# -- models: one per peer, each mapping the existing table --------------------------------


class _RepositoryBase(DeclarativeBase):
    """Its own metadata, so advanced-alchemy's model never meets duo-orm's."""


class RepositoryUser(_RepositoryBase):
    """advanced-alchemy's repository works over plain SQLAlchemy models. Its own base
    classes add columns (an insert sentinel, audit times) that this table does not have."""

    __tablename__ = "bench_users"
    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(100), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    n: Mapped[int] = mapped_column(Integer, default=0)


@cache
def _sqlmodel_user() -> Any:
    from sqlalchemy.orm import registry
    from sqlmodel import Field, SQLModel

    class Base(SQLModel, registry=registry()):  # its own metadata, not SQLModel's shared one
        pass

    class SQLModelUser(Base, table=True):
        __tablename__ = "bench_users"
        id: int | None = Field(default=None, primary_key=True)
        email: str = Field(max_length=100, unique=True)
        name: str = Field(max_length=100)
        n: int = 0

    return SQLModelUser


def _fresh_tortoise_module() -> tuple[str, Any]:
    """A new module holding a new Tortoise model of the table, for one ``Tortoise.init``.

    Tortoise finds models by module path and keeps the SQL it built per connection name
    and table, for the whole process (SQLite's ``?`` placeholders would reach PostgreSQL
    in the next run): each database of a run gets its own class and connection name.
    """
    from tortoise import fields
    from tortoise.models import Model as TortoiseModel

    _tortoise_runs.append(None)
    name = f"{__name__}_tortoise_{len(_tortoise_runs)}"
    module = types.ModuleType(name)

    class TortoiseUser(TortoiseModel):
        id = fields.IntField(primary_key=True)
        email = fields.CharField(max_length=100, unique=True)
        name = fields.CharField(max_length=100)
        n = fields.IntField(default=0)

        class Meta:
            table = "bench_users"

    TortoiseUser.__module__ = name
    module.TortoiseUser = TortoiseUser  # type: ignore[attr-defined]
    module.__models__ = [TortoiseUser]  # type: ignore[attr-defined]
    sys.modules[name] = module
    return name, TortoiseUser


_tortoise_runs: list[None] = []


# advanced-alchemy's update() writes only the columns whose value differs from the row it
# reads first; the other implementations also bump ``n`` on the same rows, so its values
# come from a range nobody else writes, and every call really issues the UPDATE.
_REPOSITORY_N = itertools.count(1_000_000_000)


# -- sync: SQLModel and advanced-alchemy on the baseline's default engine ------------------


def sync_additions(engine: Any, rows: Rows, bulk: int) -> Additions:
    more = Additions()
    if available(SQLMODEL):
        _sqlmodel_sync(more, engine, rows, bulk)
    if available(ADVANCED_ALCHEMY):
        _repository_sync(more, engine, rows, bulk)
    return more


def _sqlmodel_sync(more: Additions, engine: Any, rows: Rows, bulk: int) -> None:
    from sqlmodel import Session as SQLModelSession
    from sqlmodel import func, select, update

    User = _sqlmodel_user()
    state: dict[str, list[Any]] = {"ids": [], "objects": []}

    def load(ids: list[int]) -> None:
        state["ids"] = ids
        with SQLModelSession(engine, expire_on_commit=False) as session:
            state["objects"] = list(session.exec(select(User).where(User.id.in_(ids))))

    def get() -> None:
        for i in state["ids"]:
            with SQLModelSession(engine) as session:
                session.get(User, i)

    def create() -> None:
        for row in rows(SINGLE):
            with SQLModelSession(engine) as session:
                session.add(User(**row))
                session.commit()

    def list_rows() -> None:
        for _ in range(SINGLE // 10):
            with SQLModelSession(engine) as session:
                session.exec(select(User).order_by(User.id).limit(100)).all()

    def count() -> None:
        for _ in range(SINGLE):
            with SQLModelSession(engine) as session:
                session.exec(select(func.count()).select_from(User)).one()

    def update_one() -> None:
        for user in state["objects"]:
            with SQLModelSession(engine, expire_on_commit=False) as session:
                session.add(user)
                user.n = user.n + 1
                session.commit()

    def create_bulk() -> None:
        with SQLModelSession(engine) as session:
            session.add_all([User(**row) for row in rows(bulk)])
            session.commit()

    def update_bulk() -> None:
        with SQLModelSession(engine) as session:
            session.exec(update(User).where(User.id > 0).values(n=User.n + 1))
            session.commit()

    def iterate() -> None:
        with SQLModelSession(engine) as session:
            statement = select(User).order_by(User.id).execution_options(yield_per=1000)
            for _ in session.exec(statement):
                pass

    _register(
        more,
        SQLMODEL,
        load,
        get=get,
        create=create,
        list=list_rows,
        count=count,
        update=update_one,
        create_bulk=create_bulk,
        update_bulk=update_bulk,
        iterate=iterate,
    )


def _repository_sync(more: Additions, engine: Any, rows: Rows, bulk: int) -> None:
    from advanced_alchemy.filters import LimitOffset
    from advanced_alchemy.repository import SQLAlchemySyncRepository

    class Repository(SQLAlchemySyncRepository[RepositoryUser]):
        model_type = RepositoryUser

    state: dict[str, list[Any]] = {"ids": [], "objects": []}

    def load(ids: list[int]) -> None:
        state["ids"] = ids
        with Session(engine, expire_on_commit=False) as session:
            state["objects"] = Repository(session=session).get_many(RepositoryUser.id.in_(ids))

    def get() -> None:
        for i in state["ids"]:
            with Session(engine) as session:
                Repository(session=session).get(i)

    def create() -> None:
        for row in rows(SINGLE):
            with Session(engine, expire_on_commit=False) as session, session.begin():
                Repository(session=session).add(RepositoryUser(**row))

    def list_rows() -> None:
        for _ in range(SINGLE // 10):
            with Session(engine) as session:
                Repository(session=session).get_many(
                    LimitOffset(limit=100, offset=0), order_by=(RepositoryUser.id, False)
                )

    def count() -> None:
        for _ in range(SINGLE):
            with Session(engine) as session:
                Repository(session=session).count()

    def update_one() -> None:
        for user in state["objects"]:
            user.n = next(_REPOSITORY_N)
            with Session(engine, expire_on_commit=False) as session, session.begin():
                Repository(session=session).update(user)

    def create_bulk() -> None:
        with Session(engine) as session, session.begin():
            Repository(session=session).add_many([RepositoryUser(**row) for row in rows(bulk)])

    # no update_bulk (the repository has no UPDATE with an SQL expression) and no iterate
    # (get_many returns a list): see docs/performance.md
    _register(
        more,
        ADVANCED_ALCHEMY,
        load,
        get=get,
        create=create,
        list=list_rows,
        count=count,
        update=update_one,
        create_bulk=create_bulk,
    )


# -- async: the same two on the async engine, and Tortoise ORM --------------------------------


class AsyncPeers:
    """The async peers for one database. ``start`` and ``close`` run on the benchmark's loop."""

    def __init__(self, url: str) -> None:
        self.database = own_database(url, "tortoise")  # SQLAlchemy's form of the URL
        self._tortoise: Any = None  # Tortoise's context, once initialised
        self._model: Any = None
        self._url = make_url(url)
        self._duo: Any = None  # duo-orm's Database on asyncpg (PostgreSQL only)

    async def start(self) -> None:
        if self._url.get_backend_name() == "postgresql" and available(DUO_ASYNCPG):
            url = self._url.set(drivername="postgresql+asyncpg")
            self._duo = Database(url.render_as_string(hide_password=False))
        if available(TORTOISE):
            from tortoise import Tortoise

            module, self._model = _fresh_tortoise_module()
            connection = module.rsplit(".", 1)[-1]  # Tortoise caches SQL per connection name
            self._tortoise = await Tortoise.init(
                config={
                    "connections": {connection: tortoise_url(self.database)},
                    "apps": {"bench": {"models": [module], "default_connection": connection}},
                }
            )

    async def close(self) -> None:
        if self._duo is not None:
            await self._duo.disconnect()
            self._duo = None
        if self._tortoise is not None:
            from tortoise import Tortoise

            with self._tortoise:
                await Tortoise.close_connections()
            self._tortoise = None

    def additions(self, engine: Any, rows: Rows, bulk: int) -> Additions:
        more = Additions()
        if self._duo is not None:
            _duo_asyncpg(more, self._duo, rows, bulk)
        if available(SQLMODEL):
            _sqlmodel_async(more, engine, rows, bulk)
        if available(ADVANCED_ALCHEMY):
            _repository_async(more, engine, rows, bulk)
        if self._tortoise is not None:
            more.urls.append(self.database)
            _tortoise_async(more, self._tortoise, self._model, rows, bulk)
        return more


def tortoise_url(url: str) -> str:
    """The SQLAlchemy URL of a benchmark database in Tortoise's form (its defaults kept)."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return f"sqlite://{parsed.database}"
    auth = parsed.username or ""
    if parsed.password:
        auth += ":" + quote(str(parsed.password), safe="")
    return f"postgres://{auth}@{parsed.host}:{parsed.port or 5432}/{parsed.database}"


def _sqlmodel_async(more: Additions, engine: Any, rows: Rows, bulk: int) -> None:
    from sqlmodel import func, select, update
    from sqlmodel.ext.asyncio.session import AsyncSession as SQLModelSession

    User = _sqlmodel_user()
    state: dict[str, list[Any]] = {"ids": [], "objects": []}

    async def load(ids: list[int]) -> None:
        state["ids"] = ids
        async with SQLModelSession(engine, expire_on_commit=False) as session:
            state["objects"] = list(await session.exec(select(User).where(User.id.in_(ids))))

    async def get() -> None:
        for i in state["ids"]:
            async with SQLModelSession(engine) as session:
                await session.get(User, i)

    async def create() -> None:
        for row in rows(SINGLE):
            async with SQLModelSession(engine) as session:
                session.add(User(**row))
                await session.commit()

    async def list_rows() -> None:
        for _ in range(SINGLE // 10):
            async with SQLModelSession(engine) as session:
                (await session.exec(select(User).order_by(User.id).limit(100))).all()

    async def count() -> None:
        for _ in range(SINGLE):
            async with SQLModelSession(engine) as session:
                (await session.exec(select(func.count()).select_from(User))).one()

    async def update_one() -> None:
        for user in state["objects"]:
            async with SQLModelSession(engine, expire_on_commit=False) as session:
                session.add(user)
                user.n = user.n + 1
                await session.commit()

    async def create_bulk() -> None:
        async with SQLModelSession(engine) as session:
            session.add_all([User(**row) for row in rows(bulk)])
            await session.commit()

    async def update_bulk() -> None:
        async with SQLModelSession(engine) as session:
            await session.exec(update(User).where(User.id > 0).values(n=User.n + 1))
            await session.commit()

    _register(
        more,
        SQLMODEL,
        load,
        get=get,
        create=create,
        list=list_rows,
        count=count,
        update=update_one,
        create_bulk=create_bulk,
        update_bulk=update_bulk,
    )


def _repository_async(more: Additions, engine: Any, rows: Rows, bulk: int) -> None:
    from advanced_alchemy.filters import LimitOffset
    from advanced_alchemy.repository import SQLAlchemyAsyncRepository

    class Repository(SQLAlchemyAsyncRepository[RepositoryUser]):
        model_type = RepositoryUser

    state: dict[str, list[Any]] = {"ids": [], "objects": []}

    async def load(ids: list[int]) -> None:
        state["ids"] = ids
        async with AsyncSession(engine, expire_on_commit=False) as session:
            repository = Repository(session=session)
            state["objects"] = await repository.get_many(RepositoryUser.id.in_(ids))

    async def get() -> None:
        for i in state["ids"]:
            async with AsyncSession(engine) as session:
                await Repository(session=session).get(i)

    async def create() -> None:
        for row in rows(SINGLE):
            async with AsyncSession(engine, expire_on_commit=False) as session, session.begin():
                await Repository(session=session).add(RepositoryUser(**row))

    async def list_rows() -> None:
        for _ in range(SINGLE // 10):
            async with AsyncSession(engine) as session:
                await Repository(session=session).get_many(
                    LimitOffset(limit=100, offset=0), order_by=(RepositoryUser.id, False)
                )

    async def count() -> None:
        for _ in range(SINGLE):
            async with AsyncSession(engine) as session:
                await Repository(session=session).count()

    async def update_one() -> None:
        for user in state["objects"]:
            user.n = next(_REPOSITORY_N)
            async with AsyncSession(engine, expire_on_commit=False) as session, session.begin():
                await Repository(session=session).update(user)

    async def create_bulk() -> None:
        async with AsyncSession(engine) as session, session.begin():
            await Repository(session=session).add_many(
                [RepositoryUser(**row) for row in rows(bulk)]
            )

    _register(
        more,
        ADVANCED_ALCHEMY,
        load,
        get=get,
        create=create,
        list=list_rows,
        count=count,
        update=update_one,
        create_bulk=create_bulk,
    )


def _duo_asyncpg(more: Additions, db: Database, rows: Rows, bulk: int) -> None:
    """The same calls as ``core``'s duo-orm column, on an asyncpg URL."""
    User = define(db)
    state: dict[str, list[Any]] = {"ids": [], "objects": []}

    async def load(ids: list[int]) -> None:
        state["ids"] = ids
        state["objects"] = list(await User.where(User.id.in_(ids)).all())

    async def get() -> None:
        for i in state["ids"]:
            await User.get(i)

    async def create() -> None:
        for row in rows(SINGLE):
            await User.create(row)

    async def list_rows() -> None:
        for _ in range(SINGLE // 10):
            await User.order_by("id").limit(100).all()

    async def count() -> None:
        for _ in range(SINGLE):
            await User.count()

    async def update_one() -> None:
        for user in state["objects"]:
            await user.update(n=user.n + 1)

    async def create_bulk() -> None:
        await User.create_bulk(rows(bulk), batch_size=bulk)

    async def update_bulk() -> None:
        await User.where(User.id > 0).update_bulk({"n": User.n + 1})

    _register(
        more,
        DUO_ASYNCPG,
        load,
        get=get,
        create=create,
        list=list_rows,
        count=count,
        update=update_one,
        create_bulk=create_bulk,
        update_bulk=update_bulk,
    )


def _tortoise_async(more: Additions, context: Any, User: Any, rows: Rows, bulk: int) -> None:
    from tortoise.expressions import F

    state: dict[str, list[Any]] = {"ids": [], "objects": []}

    def within(work: Callable[[], Awaitable[None]]) -> Callable[[], Awaitable[None]]:
        """Tortoise finds its connections through a context variable, and every timed call
        runs in a fresh task, so each call enters the context ``Tortoise.init`` returned."""

        async def run() -> None:
            with context:
                await work()

        return run

    async def load(ids: list[int]) -> None:
        state["ids"] = ids
        with context:
            state["objects"] = await User.filter(id__in=ids)

    async def get() -> None:
        for i in state["ids"]:
            await User.get(id=i)

    async def create() -> None:
        for row in rows(SINGLE):
            await User.create(**row)

    async def list_rows() -> None:
        for _ in range(SINGLE // 10):
            await User.all().order_by("id").limit(100)

    async def count() -> None:
        for _ in range(SINGLE):
            await User.all().count()

    async def update_one() -> None:
        for user in state["objects"]:
            user.n = user.n + 1
            await user.save(update_fields=["n"])

    async def create_bulk() -> None:
        await User.bulk_create([User(**row) for row in rows(bulk)])

    async def update_bulk() -> None:
        await User.filter(id__gt=0).update(n=F("n") + 1)

    _register(
        more,
        TORTOISE,
        load,
        get=within(get),
        create=within(create),
        list=within(list_rows),
        count=within(count),
        update=within(update_one),
        create_bulk=within(create_bulk),
        update_bulk=within(update_bulk),
    )
