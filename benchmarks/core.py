"""Core ORM scenarios: duo-orm against hand-written SQLAlchemy (ORM and Core), sync and async.

Every implementation does the same work on the same table. The hand-written code runs
on engines configured the way SQLAlchemy's docs write them, ``create_engine(url)`` and
``create_async_engine(url)`` with nothing else (the same drivers duo-orm picks), so the
ratio duo-orm / SQLAlchemy ORM is what a user pays against the code they would write.
The ORM code runs a second time on duo-orm's own engine: the gap between the two is what
duo-orm's engine settings cost. Statement mode is measured (one call = one short
transaction), which is how the calls are normally used outside a request. The peer ORMs
(``peers.py``) join a scenario by its key through ``Additions``, so they run in the same
rounds.

On SQLite each side has its own database file, filled with the same rows before each
scenario: the journal mode belongs to the file (WAL stays set once a connection sets it),
so sharing one would hand one side's settings to the other. On PostgreSQL everyone shares
the one database.
"""

from __future__ import annotations

import tracemalloc
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, delete, func, insert, select, update
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, create_async_engine
from sqlalchemy.orm import Session

from duo_orm import Database, Integer, Mapped, String, ValidationError, mapped_column

from .harness import Additions, Scenario, Work

__all__ = [
    "SAME_ENGINE",
    "Additions",
    "PeerFactory",
    "Scenario",
    "async_scenarios",
    "define",
    "own_database",
    "sync_scenarios",
]

SAME_ENGINE = "sqlalchemy-orm (duo-orm's engine)"

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


# (default engine, fresh rows with emails unique across every implementation, bulk size)
PeerFactory = Callable[[Any, Callable[[int], list[dict[str, Any]]], int], Additions]


def _additions(peers: PeerFactory | None, engine: Any, counter: Counter, bulk: int) -> Additions:
    if peers is None:
        return Additions()
    return peers(engine, lambda count: rows(count, counter), bulk)


def own_database(url: str, side: str) -> str:
    """``side``'s database: on SQLite a file of its own beside duo-orm's, else ``url``."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return url
    path = Path(parsed.database)
    return parsed.set(
        database=str(path.with_name(f"{path.stem}-{side}{path.suffix}"))
    ).render_as_string(hide_password=False)


def _url(engine: Engine | AsyncEngine) -> str:
    return engine.url.render_as_string(hide_password=False)


class Filler:
    """Writes the same rows into every database of a run (duo-orm's, the default engines',
    the peers'), so every implementation reads the same ids. Not timed."""

    def __init__(self, User: Any, urls: list[str], counter: Counter) -> None:
        self.table = User.__table__
        self.counter = counter
        chosen: dict[tuple[Any, ...], str] = {}  # one engine per database: the first URL's
        for url in urls:
            chosen.setdefault(_database_key(url), url)
        self.engines = [create_engine(url) for url in chosen.values()]
        for engine in self.engines:
            self.table.create(engine, checkfirst=True)

    def fill(self, count: int) -> list[int]:
        """Replace every row with ``count`` fresh ones; their ids (the same everywhere)."""
        found: list[list[int]] = []
        for engine in self.engines:
            with engine.begin() as connection:
                connection.execute(delete(self.table))
                if count:
                    connection.execute(insert(self.table), rows(count, self.counter))
                ids = select(self.table.c.id).order_by(self.table.c.id).limit(SINGLE)
                found.append(list(connection.execute(ids).scalars()))
        if any(ids != found[0] for ids in found):
            raise RuntimeError("the benchmark databases hold different ids after a refill")
        return found[0]

    def close(self) -> None:
        for engine in self.engines:
            engine.dispose()


def _database_key(url: str) -> tuple[Any, ...]:
    parsed = make_url(url)
    return (parsed.get_backend_name(), parsed.host, parsed.port, parsed.database)


def _engines(db: Database) -> tuple[Engine, Engine]:
    """duo-orm's sync engine, and a default one on the baseline's database (same driver)."""
    same = db._engines.sync_engine()
    return same, create_engine(own_database(_url(same), "sqlalchemy"))


def sync_scenarios(
    db: Database, User: Any, quick: bool, peers: PeerFactory | None = None
) -> list[Scenario]:
    same, default = _engines(db)
    table = User.__table__
    counter = Counter()
    bulk = 1_000 if quick else BULK
    stream = 10_000 if quick else STREAM
    more = _additions(peers, default, counter, bulk)
    filler = Filler(User, [_url(same), _url(default), *more.urls], counter)
    state: dict[str, Any] = {}

    def close() -> None:
        filler.close()
        default.dispose()

    def impls(duo: Work, orm: Callable[[Engine], Any], sql_core: Any = None) -> dict[str, Work]:
        return _implementations(duo, orm, sql_core, default, same)

    def reset(count: int) -> Callable[[], None]:
        def run() -> None:
            state["ids"] = filler.fill(count)

        return run

    def load_ids() -> None:
        reset(SINGLE)()
        with Session(default, expire_on_commit=False) as session:
            state["objects"] = list(session.scalars(select(User).where(User.id.in_(state["ids"]))))
        for load in more.loaders:
            load(state["ids"])

    def get_duo() -> None:
        for i in state["ids"]:
            User.get(i)

    def get_orm(engine: Engine) -> None:
        for i in state["ids"]:
            with Session(engine) as session:
                session.get(User, i)

    def get_core(engine: Engine) -> None:
        for i in state["ids"]:
            with engine.connect() as connection:
                connection.execute(select(table).where(table.c.id == i)).first()

    def create_duo() -> None:
        for row in rows(SINGLE, counter):
            User.create(row)

    def create_orm(engine: Engine) -> None:
        for row in rows(SINGLE, counter):
            with Session(engine, expire_on_commit=False) as session, session.begin():
                session.add(User(**row))

    def create_core(engine: Engine) -> None:
        for row in rows(SINGLE, counter):
            with engine.begin() as connection:
                connection.execute(insert(table).values(**row))

    def list_duo() -> None:
        for _ in range(SINGLE // 10):
            User.order_by("id").limit(100).all()

    def list_orm(engine: Engine) -> None:
        for _ in range(SINGLE // 10):
            with Session(engine) as session:
                session.scalars(select(User).order_by(User.id).limit(100)).all()

    def list_core(engine: Engine) -> None:
        for _ in range(SINGLE // 10):
            with engine.connect() as connection:
                connection.execute(select(table).order_by(table.c.id).limit(100)).all()

    def count_duo() -> None:
        for _ in range(SINGLE):
            User.count()

    def count_orm(engine: Engine) -> None:
        for _ in range(SINGLE):
            with Session(engine) as session:
                session.scalar(select(func.count()).select_from(User))

    def count_core(engine: Engine) -> None:
        for _ in range(SINGLE):
            with engine.connect() as connection:
                connection.execute(select(func.count()).select_from(table)).scalar()

    def update_duo() -> None:
        for user in state["objects"]:
            user.update(n=user.n + 1)

    def update_orm(engine: Engine) -> None:
        for user in state["objects"]:
            with Session(engine, expire_on_commit=False) as session, session.begin():
                session.add(user)
                user.n = user.n + 1

    def update_core(engine: Engine) -> None:
        for user in state["objects"]:
            with engine.begin() as connection:
                connection.execute(update(table).where(table.c.id == user.id).values(n=user.n + 1))
                user.n += 1

    def create_bulk_duo() -> None:
        User.create_bulk(rows(bulk, counter), batch_size=bulk)

    def create_bulk_orm(engine: Engine) -> None:
        with Session(engine) as session, session.begin():
            session.execute(insert(User), rows(bulk, counter))

    def create_bulk_core(engine: Engine) -> None:
        with engine.begin() as connection:
            connection.execute(insert(table), rows(bulk, counter))

    def update_bulk_duo() -> None:
        User.where(User.id > 0).update_bulk({"n": User.n + 1})

    def update_bulk_orm(engine: Engine) -> None:
        with Session(engine) as session, session.begin():
            session.execute(
                update(User).where(User.id > 0).values(n=User.n + 1),
                execution_options={"synchronize_session": False},
            )

    def update_bulk_core(engine: Engine) -> None:
        with engine.begin() as connection:
            connection.execute(update(table).where(table.c.id > 0).values(n=table.c.n + 1))

    def hooked_duo() -> None:
        User.where(User.id > 0).update_bulk({"n": User.n + 1}, with_hooks=True, batch_size=500)

    def hooked_orm(engine: Engine) -> None:
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

    def iterate_orm(engine: Engine) -> None:
        with Session(engine) as session:
            for _ in session.scalars(
                select(User).order_by(User.id).execution_options(yield_per=1000)
            ):
                pass

    def iterate_core(engine: Engine) -> None:
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
            teardown=close,
        ),
    ]


def async_scenarios(
    db: Database, User: Any, quick: bool, peers: PeerFactory | None = None
) -> list[Scenario]:
    """The single-row and bulk scenarios again through the async engines."""
    same = db._engines.async_engine()
    default = create_async_engine(own_database(_url(same), "sqlalchemy"))
    counter = Counter()
    bulk = 1_000 if quick else BULK
    state: dict[str, Any] = {}
    more = _additions(peers, default, counter, bulk)
    duo_sync = _url(db._engines.sync_engine())
    filler = Filler(User, [duo_sync, own_database(duo_sync, "sqlalchemy"), *more.urls], counter)

    def impls(duo: Work, orm: Callable[[AsyncEngine], Any]) -> dict[str, Work]:
        return _implementations(duo, orm, None, default, same)

    def reset(count: int) -> Callable[[], Any]:
        async def run() -> None:
            state["ids"] = filler.fill(count)
            async with AsyncSession(default, expire_on_commit=False) as session:
                statement = select(User).where(User.id.in_(state["ids"]))
                state["objects"] = list(await session.scalars(statement))
            for load in more.loaders:
                await load(state["ids"])

        return run

    async def close() -> None:
        filler.close()
        await default.dispose()

    async def get_duo() -> None:
        for i in state["ids"]:
            await User.get(i)

    async def get_orm(engine: AsyncEngine) -> None:
        for i in state["ids"]:
            async with AsyncSession(engine) as session:
                await session.get(User, i)

    async def create_duo() -> None:
        for row in rows(SINGLE, counter):
            await User.create(row)

    async def create_orm(engine: AsyncEngine) -> None:
        for row in rows(SINGLE, counter):
            async with AsyncSession(engine, expire_on_commit=False) as session, session.begin():
                session.add(User(**row))

    async def list_duo() -> None:
        for _ in range(SINGLE // 10):
            await User.order_by("id").limit(100).all()

    async def list_orm(engine: AsyncEngine) -> None:
        for _ in range(SINGLE // 10):
            async with AsyncSession(engine) as session:
                (await session.scalars(select(User).order_by(User.id).limit(100))).all()

    async def count_duo() -> None:
        for _ in range(SINGLE):
            await User.count()

    async def count_orm(engine: AsyncEngine) -> None:
        for _ in range(SINGLE):
            async with AsyncSession(engine) as session:
                await session.scalar(select(func.count()).select_from(User))

    async def update_duo() -> None:
        for user in state["objects"]:
            await user.update(n=user.n + 1)

    async def update_orm(engine: AsyncEngine) -> None:
        for user in state["objects"]:
            async with AsyncSession(engine, expire_on_commit=False) as session, session.begin():
                session.add(user)
                user.n = user.n + 1

    async def create_bulk_duo() -> None:
        await User.create_bulk(rows(bulk, counter), batch_size=bulk)

    async def create_bulk_orm(engine: AsyncEngine) -> None:
        async with AsyncSession(engine) as session, session.begin():
            await session.execute(insert(User), rows(bulk, counter))

    async def update_bulk_duo() -> None:
        await User.where(User.id > 0).update_bulk({"n": User.n + 1})

    async def update_bulk_orm(engine: AsyncEngine) -> None:
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
        Scenario("count", SINGLE, more.merged("count", impls(count_duo, count_orm))),
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
            teardown=close,
        ),
    ]


def peak_memory(work: Callable[[], None]) -> int:
    tracemalloc.start()
    try:
        work()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def _implementations(
    duo: Work, orm: Callable[[Any], Any], sql_core: Any, default: Any, same: Any
) -> dict[str, Work]:
    """duo-orm; the ORM code on a default engine (the baseline) and on duo-orm's own; Core."""
    chosen: dict[str, Work] = {
        "duo-orm": duo,
        "sqlalchemy-orm": partial(orm, default),
        SAME_ENGINE: partial(orm, same),
    }
    if sql_core is not None:
        chosen["sqlalchemy-core"] = partial(sql_core, default)
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
