"""A request whose first writes are lone creates runs them without a session
(duo_orm.lone_transaction) and keeps the request contract all the same.

On PostgreSQL with psycopg the INSERTs go straight to the driver in the request's
transaction, and the session appears only when a call needs it. Whatever the path,
a user relies on the same outcome, checked here on every backend and framework
through the real test clients: a 2xx means everything committed, anything else
means nothing did; a read after a create sees it (the very instance); a change
made to a created instance is saved with it; a later ORM call, a nested
``db.transaction()`` and ``db.on_commit()`` all join the one transaction.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import anyio
import httpx
import pytest
from fastapi import FastAPI
from fastapi import HTTPException as FastAPIHTTPException
from litestar import Litestar, post
from litestar.exceptions import HTTPException as LitestarHTTPException
from litestar.params import FromPath
from sqlalchemy import String, event, select
from starlette.applications import Starlette
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from duo_orm import Database, IntegrityError, Mapped, mapped_column
from duo_orm_fastapi import DuoORM
from duo_orm_litestar import DuoORMPlugin
from duo_orm_starlette import DuoORMMiddleware, duo_exception_handlers, duo_lifespan

from ..conftest import sqlite_write_lock
from .conftest import FRAMEWORKS
from .scenario import lifespan_running

pytestmark = pytest.mark.anyio


def define(db: Database) -> Any:
    class Thing(db.Model):
        __tablename__ = "things"
        id: Mapped[int] = mapped_column(primary_key=True)
        name: Mapped[str] = mapped_column(String(50), unique=True)
        note: Mapped[str | None] = mapped_column(String(50))

    return SimpleNamespace(db=db, Thing=Thing, committed_calls=[])


Refuse = Callable[[], Exception]


async def scenario(models: Any, name: str, refuse: Refuse) -> dict[str, Any]:
    """What one request does; ``refuse()`` is the framework's 400."""
    Thing, db = models.Thing, models.db
    if name.startswith("new-"):
        await Thing.create(name=name)
        await anyio.sleep(0.01)  # hold the transaction while others queue up
        return {}
    if name == "one":
        return {"id": (await Thing.create(name="one")).id}
    if name == "two":
        first, second = await Thing.create(name="a"), await Thing.create(name="b")
        return {"ids": [first.id, second.id]}
    if name in {"refuse", "crash"}:
        await Thing.create(name=name)
        if name == "refuse":
            raise refuse()
        raise RuntimeError("the handler broke after writing")
    if name == "changed":
        thing = await Thing.create(name="changed")
        thing.note = "set after create"  # no save(): the commit flushes it
        return {"id": thing.id}
    if name == "read_back":
        thing = await Thing.create(name="read")
        again = await Thing.get_one(thing.id)
        return {"same": again is thing, "count": await Thing.count()}
    if name == "mixed":
        first = await Thing.create(name="m1")
        await first.update(note="updated")
        second = await Thing.create(name="m2")
        async with db.transaction():  # a savepoint in the request's transaction
            inner = await Thing.count()
        return {"ids": [first.id, second.id], "inner": inner}
    if name == "conflict":
        await Thing.create(name="c1")
        await Thing.create(name="existing")  # taken before the request
        return {}
    if name == "conflict_caught":
        await Thing.create(name="c2")
        with contextlib.suppress(IntegrityError):  # the transaction is lost all the same:
            await Thing.create(name="existing")  # no 2xx may follow
        return {}
    if name == "slow":  # the client gives up while the transaction is open
        await Thing.create(name="slow")
        await anyio.sleep(30)
        return {}
    if name in {"patch", "patch_refuse"}:  # a lone read, then a lone update
        existing = await Thing.where(Thing.name == "existing").one()
        await existing.update(note="patched")
        if name == "patch_refuse":
            raise refuse()
        again = await Thing.get_one(existing.id)
        return {"same": again is existing}
    if name == "save_then_change":  # a save with nothing to send, then a change
        existing = await Thing.where(Thing.name == "existing").one()
        await existing.save()
        existing.note = "set after save"  # no second save(): the commit flushes it
        return {}
    if name == "on_commit":
        await Thing.create(name="hooked")
        db.on_commit(lambda: models.committed_calls.append("after commit"))
        return {}
    raise AssertionError(name)


def make_app(framework: str, models: Any) -> Any:
    db = models.db
    if framework == "fastapi":
        app = FastAPI()
        DuoORM(app, db)

        @app.post("/run/{name}")
        async def route(name: str) -> dict[str, Any]:
            return await scenario(models, name, lambda: FastAPIHTTPException(400, "no"))

        return app
    if framework == "starlette":

        async def starlette_route(request: Request) -> Response:
            name = request.path_params["name"]
            done = await scenario(models, name, lambda: StarletteHTTPException(400, "no"))
            return JSONResponse(done)

        return Starlette(
            routes=[Route("/run/{name}", starlette_route, methods=["POST"])],
            middleware=[Middleware(DuoORMMiddleware, db=db)],
            lifespan=duo_lifespan(db),
            exception_handlers=duo_exception_handlers(),
        )

    @post("/run/{name:str}", status_code=200)
    async def litestar_route(name: FromPath[str]) -> dict[str, Any]:
        return await scenario(
            models, name, lambda: LitestarHTTPException(status_code=400, detail="no")
        )

    return Litestar(route_handlers=[litestar_route], plugins=[DuoORMPlugin(db)])


@dataclass
class Served:
    models: Any
    post: Callable[[str], Awaitable[httpx.Response]]
    lone: bool  # whether this backend runs lone creates without a session

    def stored(self) -> dict[str, str | None]:
        Thing = self.models.Thing
        with self.models.db.sync_standalone_session() as session:
            return {name: note for name, note in session.execute(select(Thing.name, Thing.note))}

    def lone_inserts(self) -> int:
        tables = self.models.Thing.__dict__.get("__duo_lone_writes__") or {}
        return sum(len(table._plans) for table in tables.values() if table is not None)


@pytest.fixture(params=FRAMEWORKS)
async def served(url: str, backend: str, request: pytest.FixtureRequest) -> AsyncIterator[Served]:
    db = Database(url)
    models = define(db)
    await db.create_all()
    with db.sync_standalone_session() as session:  # outside any request: the ORM path
        session.add(models.Thing(name="existing"))
        session.commit()
    app = make_app(request.param, models)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with (
        lifespan_running(app),
        httpx.AsyncClient(transport=transport, base_url="http://test") as http,
    ):

        async def post_to(name: str) -> httpx.Response:
            return await http.post(f"/run/{name}")

        yield Served(models, post_to, lone=backend != "postgresql-asyncpg")
    await db.disconnect()


async def test_creates_commit_with_the_response(served: Served) -> None:
    one = await served.post("one")
    assert one.status_code == 200
    assert (await served.post("two")).status_code == 200
    assert served.stored().keys() == {"existing", "one", "a", "b"}
    assert bool(served.lone_inserts()) is served.lone
    assert served.models.db.async_engine.sync_engine.pool.checkedout() == 0


async def test_an_error_answer_keeps_none_of_the_creates(served: Served) -> None:
    assert (await served.post("refuse")).status_code == 400
    assert (await served.post("crash")).status_code == 500
    conflict = await served.post("conflict")
    assert conflict.status_code == 409
    assert served.stored().keys() == {"existing"}


async def test_a_caught_failure_still_fails_the_request(served: Served) -> None:
    connects: list[object] = []
    pool = served.models.db.async_engine.sync_engine.pool
    event.listen(pool, "connect", lambda *_: connects.append(None))
    response = await served.post("conflict_caught")
    assert response.status_code == 500
    assert served.stored().keys() == {"existing"}
    opened = len(connects)
    assert (await served.post("one")).status_code == 200
    assert served.stored().keys() == {"existing", "one"}
    # The connection went back rolled back and clean: reused, not dropped for a new one.
    assert len(connects) == opened and pool.checkedout() == 0


async def test_a_created_instance_changed_afterwards_is_saved_with_it(served: Served) -> None:
    assert (await served.post("changed")).status_code == 200
    assert served.stored()["changed"] == "set after create"


async def test_an_instance_saved_with_nothing_to_send_joins_the_transaction(
    served: Served,
) -> None:
    assert (await served.post("save_then_change")).status_code == 200
    assert served.stored()["existing"] == "set after save"


async def test_later_calls_join_the_transaction_the_creates_began(served: Served) -> None:
    read = await served.post("read_back")
    assert read.json() == {"same": True, "count": 2}
    assert "read" in served.stored()  # committed, though the session sent nothing
    mixed = await served.post("mixed")
    assert mixed.status_code == 200 and mixed.json()["inner"] == 4
    stored = served.stored()
    assert stored["m1"] == "updated" and "m2" in stored
    assert (await served.post("on_commit")).status_code == 200
    assert served.models.committed_calls == ["after commit"]
    assert bool(served.lone_inserts()) is served.lone


async def test_a_request_cancelled_after_a_create_keeps_nothing(served: Served) -> None:
    for _ in range(3):
        with anyio.move_on_after(0.3):
            await served.post("slow")
    assert served.stored().keys() == {"existing"}
    assert served.models.db.async_engine.sync_engine.pool.checkedout() == 0
    assert (await served.post("one")).status_code == 200
    assert served.stored().keys() == {"existing", "one"}


@pytest.mark.parametrize("framework", FRAMEWORKS)
async def test_a_write_cancelled_while_it_waits_for_the_sqlite_lock_leaves_nothing_open(
    framework: str, tmp_path: Path
) -> None:
    path = tmp_path / "locked.db"
    models = define(Database(f"sqlite:///{path}"))
    await models.db.create_all()
    app = make_app(framework, models)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with (
        lifespan_running(app),
        httpx.AsyncClient(transport=transport, base_url="http://test") as http,
    ):
        with sqlite_write_lock(path) as release:  # another process writes
            threading.Timer(0.6, release.set).start()
            with anyio.move_on_after(0.3):  # the client gives up while the INSERT waits
                await http.post("/run/one")
        # The INSERT ran once the lock was free, and was rolled back after it: the
        # connection went back to the pool holding no transaction and no lock.
        assert (await http.post("/run/two")).status_code == 200
        assert models.db.async_engine.sync_engine.pool.checkedout() == 0
        other = sqlite3.connect(path, isolation_level=None, timeout=1)
        other.execute("BEGIN IMMEDIATE")
        other.execute("ROLLBACK")
        other.close()
    names = {name for (name,) in sqlite3.connect(path).execute("SELECT name FROM things")}
    assert names == {"a", "b"}
    await models.db.disconnect()


async def test_concurrent_requests_each_commit_their_creates(served: Served) -> None:
    statuses: list[int] = []

    async def one(number: int) -> None:
        statuses.append((await served.post(f"new-{number}")).status_code)

    async with anyio.create_task_group() as group:
        for number in range(30):
            group.start_soon(one, number)
    assert statuses == [200] * 30
    assert len(served.stored()) == 31
    assert served.models.db.async_engine.sync_engine.pool.checkedout() == 0


async def test_read_only_and_excluded_paths_keep_their_meaning(url: str, backend: str) -> None:
    models = define(Database(url))
    await models.db.create_all()
    app = FastAPI()
    DuoORM(app, models.db, read_only_paths=["/read-only"], exclude_paths=["/excluded"])

    @app.post("/read-only/{name}")
    async def read_only(name: str) -> dict[str, Any]:
        await models.Thing.create(name=name)
        return {}

    @app.post("/excluded/{name}")
    async def excluded(name: str) -> dict[str, Any]:
        await models.Thing.create(name=name)  # committed on its own, at once
        raise FastAPIHTTPException(400, "refused after the create")

    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with (
        lifespan_running(app),
        httpx.AsyncClient(transport=transport, base_url="http://test") as http,
    ):
        assert (await http.post("/read-only/kept-out")).status_code == 200
        assert (await http.post("/excluded/kept")).status_code == 400
    assert [thing.name for thing in await models.Thing.all()] == ["kept"]
    await models.db.disconnect()


async def test_an_update_joins_the_request_transaction(served: Served) -> None:
    assert (await served.post("patch_refuse")).status_code == 400
    assert served.stored()["existing"] is None
    patched = await served.post("patch")
    assert patched.json() == {"same": True}
    assert served.stored()["existing"] == "patched"
    tables = served.models.Thing.__dict__.get("__duo_lone_writes__") or {}
    updates = sum(len(table._update_plans) for table in tables.values() if table is not None)
    assert bool(updates) is served.lone
