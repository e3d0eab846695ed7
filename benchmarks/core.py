"""Core ORM scenarios: duo-orm against hand-written SQLAlchemy (ORM and Core), sync and async.

Every implementation does the same work on the same table and engine, so the
ratio duo-orm / SQLAlchemy ORM is what the ORM layer costs. Statement mode is
measured (one call = one short transaction), which is how the calls are
normally used outside a request. The peer ORMs (``peers.py``) join a scenario by
its key through ``Additions``, so they run in the same rounds.
"""

from __future__ import annotations

import tracemalloc
from collections.abc import Callable
from typing import Any

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from duo_orm import Database, Integer, Mapped, String, ValidationError, mapped_column

from .harness import Additions, Scenario

__all__ = ["Additions", "PeerFactory", "Scenario", "async_scenarios", "define", "sync_scenarios"]

SINGLE = 200  # operations per timed call for single-row scenarios
BULK = 10_000
STREAM = 100_000


def define(db: Database) -> Any:
    class BenchUser(db.Model):
        __tablename__ = "bench_users"
        id: Mapped[int] = mapped_column(primary_key=True)
        email: Mapped[str] = mapped_column(String(100), unique=True)
        name: Mapped[str] = mapped_column(String(100))
        n: Mapped[int] = mapped_column(Integer, default=0)

        def validate(self) -> None:
            if self.n is not None and self.n < 0:
                raise ValidationError("n must be >= 0", field="n")

    return BenchUser


class Counter:
    """Unique emails across rounds and implementations."""

    def __init__(self) -> None:
        self.value = 0

    def next(self) -> int:
        self.value += 1
        return self.value


def rows(count: int, counter: Counter) -> list[dict[str, Any]]:
    return [{"email": f"u{counter.next()}@x.io", "name": "bench", "n": 0} for _ in range(count)]


# (engine, fresh rows with emails unique across every implementation, bulk size) -> additions
PeerFactory = Callable[[Any, Callable[[int], list[dict[str, Any]]], int], Additions]


def _additions(peers: PeerFactory | None, engine: Any, counter: Counter, bulk: int) -> Additions:
    if peers is None:
        return Additions()
    return peers(engine, lambda count: rows(count, counter), bulk)


def sync_scenarios(
    db: Database, User: Any, quick: bool, peers: PeerFactory | None = None
) -> list[Scenario]:
    engine = db.sync_engine
    table = User.__table__
    counter = Counter()
    bulk = 1_000 if quick else BULK
    stream = 10_000 if quick else STREAM
    more = _additions(peers, engine, counter, bulk)

    def reset(count: int) -> Callable[[], None]:
        def run() -> None:
            with engine.begin() as connection:
                connection.execute(delete(table))
                if count:
                    connection.execute(insert(table), rows(count, counter))

        return run

    def ids() -> list[int]:
        with engine.connect() as connection:
            return list(connection.execute(select(table.c.id).limit(SINGLE)).scalars())

    state: dict[str, Any] = {}

    def load_ids() -> None:
        reset(SINGLE)()
        state["ids"] = ids()
        with Session(engine, expire_on_commit=False) as session:
            state["objects"] = list(session.scalars(select(User).limit(SINGLE)))
        for load in more.loaders:
            load(state["ids"])

    def get_duo() -> None:
        for i in state["ids"]:
            User.get(i)

    def get_orm() -> None:
        for i in state["ids"]:
            with Session(engine) as session:
                session.get(User, i)

    def get_core() -> None:
        for i in state["ids"]:
            with engine.connect() as connection:
                connection.execute(select(table).where(table.c.id == i)).first()

    def create_duo() -> None:
        for row in rows(SINGLE, counter):
            User.create(row)

    def create_orm() -> None:
        for row in rows(SINGLE, counter):
            with Session(engine, expire_on_commit=False) as session, session.begin():
                session.add(User(**row))

    def create_core() -> None:
        for row in rows(SINGLE, counter):
            with engine.begin() as connection:
                connection.execute(insert(table).values(**row))

    def list_duo() -> None:
        for _ in range(SINGLE // 10):
            User.order_by("id").limit(100).all()

    def list_orm() -> None:
        for _ in range(SINGLE // 10):
            with Session(engine) as session:
                session.scalars(select(User).order_by(User.id).limit(100)).all()

    def list_core() -> None:
        for _ in range(SINGLE // 10):
            with engine.connect() as connection:
                connection.execute(select(table).order_by(table.c.id).limit(100)).all()

    def count_duo() -> None:
        for _ in range(SINGLE):
            User.count()

    def count_orm() -> None:
        for _ in range(SINGLE):
            with Session(engine) as session:
                session.scalar(select(func.count()).select_from(User))

    def count_core() -> None:
        for _ in range(SINGLE):
            with engine.connect() as connection:
                connection.execute(select(func.count()).select_from(table)).scalar()

    def update_duo() -> None:
        for user in state["objects"]:
            user.update(n=user.n + 1)

    def update_orm() -> None:
        for user in state["objects"]:
            with Session(engine, expire_on_commit=False) as session, session.begin():
                session.add(user)
                user.n = user.n + 1

    def update_core() -> None:
        for user in state["objects"]:
            with engine.begin() as connection:
                connection.execute(update(table).where(table.c.id == user.id).values(n=user.n + 1))
                user.n += 1

    def create_bulk_duo() -> None:
        User.create_bulk(rows(bulk, counter), batch_size=bulk)

    def create_bulk_orm() -> None:
        with Session(engine) as session, session.begin():
            session.execute(insert(User), rows(bulk, counter))

    def create_bulk_core() -> None:
        with engine.begin() as connection:
            connection.execute(insert(table), rows(bulk, counter))

    def update_bulk_duo() -> None:
        User.where(User.id > 0).update_bulk({"n": User.n + 1})

    def update_bulk_orm() -> None:
        with Session(engine) as session, session.begin():
            session.execute(
                update(User).where(User.id > 0).values(n=User.n + 1),
                execution_options={"synchronize_session": False},
            )

    def update_bulk_core() -> None:
        with engine.begin() as connection:
            connection.execute(update(table).where(table.c.id > 0).values(n=table.c.n + 1))

    def hooked_duo() -> None:
        User.where(User.id > 0).update_bulk({"n": User.n + 1}, with_hooks=True, batch_size=500)

    def hooked_orm() -> None:
        # the hand-written equivalent: load in key order, change, validate, flush per batch
        with Session(engine) as session, session.begin():
            last = 0
            while True:
                batch = session.scalars(
                    select(User).where(User.id > last).order_by(User.id).limit(500)
                ).all()
                if not batch:
                    break
                for user in batch:
                    user.n = user.n + 1
                    user.validate()
                session.flush()
                last = batch[-1].id

    def iterate_duo() -> None:
        for _ in User.iterate(batch_size=1000):
            pass

    def iterate_orm() -> None:
        with Session(engine) as session:
            for _ in session.scalars(
                select(User).order_by(User.id).execution_options(yield_per=1000)
            ):
                pass

    def iterate_core() -> None:
        with engine.connect() as connection:
            result = connection.execution_options(yield_per=1000).execute(
                select(table).order_by(table.c.id)
            )
            for _ in result:
                pass

    return [
        Scenario(
            "get by primary key",
            SINGLE,
            more.merged("get", impls(get_duo, get_orm, get_core)),
            setup=_once(load_ids),
        ),
        Scenario(
            "create one row",
            SINGLE,
            more.merged("create", impls(create_duo, create_orm, create_core)),
        ),
        Scenario(
            "list 100 rows ordered",
            SINGLE // 10,
            more.merged("list", impls(list_duo, list_orm, list_core)),
            setup=_once(reset(1000)),
        ),
        Scenario("count", SINGLE, more.merged("count", impls(count_duo, count_orm, count_core))),
        Scenario(
            "update one row",
            SINGLE,
            more.merged("update", impls(update_duo, update_orm, update_core)),
            setup=_once(load_ids),
        ),
        Scenario(
            f"create_bulk {bulk:,} rows",
            1,
            more.merged("create_bulk", impls(create_bulk_duo, create_bulk_orm, create_bulk_core)),
            setup=reset(0),
        ),
        Scenario(
            f"update_bulk {bulk:,} rows, no hooks",
            1,
            more.merged("update_bulk", impls(update_bulk_duo, update_bulk_orm, update_bulk_core)),
            setup=_once(reset(bulk)),
        ),
        Scenario(
            f"update_bulk {bulk:,} rows, with hooks",
            1,
            impls(hooked_duo, hooked_orm),
            setup=_once(reset(bulk)),
        ),
        Scenario(
            f"iterate {stream:,} rows",
            1,
            more.merged("iterate", impls(iterate_duo, iterate_orm, iterate_core)),
            setup=_once(reset(stream)),
        ),
    ]


def async_scenarios(
    db: Database, User: Any, quick: bool, peers: PeerFactory | None = None
) -> list[Scenario]:
    """The single-row and bulk scenarios again through the async engines."""
    engine = db.async_engine
    table = User.__table__
    counter = Counter()
    bulk = 1_000 if quick else BULK
    state: dict[str, Any] = {}
    more = _additions(peers, engine, counter, bulk)

    def reset(count: int) -> Callable[[], Any]:
        async def run() -> None:
            async with engine.begin() as connection:
                await connection.execute(delete(table))
                if count:
                    await connection.execute(insert(table), rows(count, counter))
            async with AsyncSession(engine, expire_on_commit=False) as session:
                state["objects"] = list(await session.scalars(select(User).limit(SINGLE)))
                state["ids"] = [user.id for user in state["objects"]]
            for load in more.loaders:
                await load(state["ids"])

        return run

    async def get_duo() -> None:
        for i in state["ids"]:
            await User.get(i)

    async def get_orm() -> None:
        for i in state["ids"]:
            async with AsyncSession(engine) as session:
                await session.get(User, i)

    async def create_duo() -> None:
        for row in rows(SINGLE, counter):
            await User.create(row)

    async def create_orm() -> None:
        for row in rows(SINGLE, counter):
            async with AsyncSession(engine, expire_on_commit=False) as session, session.begin():
                session.add(User(**row))

    async def list_duo() -> None:
        for _ in range(SINGLE // 10):
            await User.order_by("id").limit(100).all()

    async def list_orm() -> None:
        for _ in range(SINGLE // 10):
            async with AsyncSession(engine) as session:
                (await session.scalars(select(User).order_by(User.id).limit(100))).all()

    async def update_duo() -> None:
        for user in state["objects"]:
            await user.update(n=user.n + 1)

    async def update_orm() -> None:
        for user in state["objects"]:
            async with AsyncSession(engine, expire_on_commit=False) as session, session.begin():
                session.add(user)
                user.n = user.n + 1

    async def create_bulk_duo() -> None:
        await User.create_bulk(rows(bulk, counter), batch_size=bulk)

    async def create_bulk_orm() -> None:
        async with AsyncSession(engine) as session, session.begin():
            await session.execute(insert(User), rows(bulk, counter))

    async def update_bulk_duo() -> None:
        await User.where(User.id > 0).update_bulk({"n": User.n + 1})

    async def update_bulk_orm() -> None:
        async with AsyncSession(engine) as session, session.begin():
            await session.execute(
                update(User).where(User.id > 0).values(n=User.n + 1),
                execution_options={"synchronize_session": False},
            )

    return [
        Scenario(
            "get by primary key",
            SINGLE,
            more.merged("get", impls(get_duo, get_orm)),
            setup=_once(reset(SINGLE)),
        ),
        Scenario("create one row", SINGLE, more.merged("create", impls(create_duo, create_orm))),
        Scenario(
            "list 100 rows ordered",
            SINGLE // 10,
            more.merged("list", impls(list_duo, list_orm)),
            setup=_once(reset(1000)),
        ),
        Scenario(
            "update one row",
            SINGLE,
            more.merged("update", impls(update_duo, update_orm)),
            setup=_once(reset(SINGLE)),
        ),
        Scenario(
            f"create_bulk {bulk:,} rows",
            1,
            more.merged("create_bulk", impls(create_bulk_duo, create_bulk_orm)),
            setup=reset(0),
        ),
        Scenario(
            f"update_bulk {bulk:,} rows, no hooks",
            1,
            more.merged("update_bulk", impls(update_bulk_duo, update_bulk_orm)),
            setup=_once(reset(bulk)),
        ),
    ]


def peak_memory(work: Callable[[], None]) -> int:
    tracemalloc.start()
    try:
        work()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def impls(duo: Any, orm: Any, sql_core: Any = None) -> dict[str, Any]:
    chosen = {"duo-orm": duo, "sqlalchemy-orm": orm}
    if sql_core is not None:
        chosen["sqlalchemy-core"] = sql_core
    return chosen


def _once(setup: Callable[[], Any]) -> Callable[[], Any]:
    """Run ``setup`` before the first round only (the data stays for the others)."""
    done = False

    def run() -> Any:
        nonlocal done
        if done:
            return None
        done = True
        return setup()

    return run
