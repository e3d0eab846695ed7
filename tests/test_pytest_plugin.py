"""The pytest plugin, run the way a user runs it: a small project tested with pytester.

Each case writes a user's project (a Database, a model, an app on one of the three
frameworks, ``[tool.pytest.ini_options]`` naming them) and runs its tests in a
fresh pytest process on one of this suite's backends, in file order, reversed
and shuffled with two seeds. Every test there that expects an empty table follows one that
committed rows through the app, the ORM or a transaction block, so a single
leak fails the run.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

DB_MODULE = """
from duo_orm import Database, Mapped, String, mapped_column

db = Database("sqlite:///never-used-by-the-tests.db")


class User(db.Model):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(255), unique=True)
    name: Mapped[str] = mapped_column(String(100))
"""

APPS = {
    "fastapi": """
from fastapi import FastAPI
from pydantic import BaseModel

from duo_orm_fastapi import DuoORM

from .db import User, db

app = FastAPI()
DuoORM(app, db)


class UserIn(BaseModel):
    email: str
    name: str


@app.post("/users/", status_code=201)
async def signup(data: UserIn) -> dict[str, int]:
    user = await User.create(email=data.email, name=data.name)
    return {"id": user.id}


@app.post("/users/sync/", status_code=201)
def signup_in_a_thread(data: UserIn) -> dict[str, int]:
    user = User.create(email=data.email, name=data.name)
    return {"id": user.id}


@app.post("/users/pair/", status_code=201)
async def pair(data: UserIn) -> dict[str, int]:
    await User.create(email=data.email, name=data.name)
    try:
        async with db.transaction():  # a SAVEPOINT inside the request's transaction
            await User.create(email="b-" + data.email, name="B")
            raise RuntimeError("undo the inner block")
    except RuntimeError:
        pass
    return {"count": await User.count()}


@app.get("/users/count")
async def count() -> dict[str, int]:
    return {"count": await User.count()}


@app.get("/driver")
async def driver() -> dict[str, bool]:
    async with db.transaction() as session:
        return {"async": await session.run_sync(lambda s: s.connection().dialect.is_async)}
""",
    "starlette": """
import anyio.from_thread
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from duo_orm_starlette import DuoORMMiddleware, duo_exception_handlers, duo_lifespan, json_body

from .db import User, db


async def signup(request: Request) -> JSONResponse:
    data = await json_body(request)
    user = await User.create(email=data["email"], name=data["name"])
    return JSONResponse({"id": user.id}, status_code=201)


def signup_in_a_thread(request: Request) -> JSONResponse:
    # Starlette runs a plain def endpoint in a worker thread; the body is read on the loop
    data = anyio.from_thread.run(json_body, request)
    user = User.create(email=data["email"], name=data["name"])
    return JSONResponse({"id": user.id}, status_code=201)


async def pair(request: Request) -> JSONResponse:
    data = await json_body(request)
    await User.create(email=data["email"], name=data["name"])
    try:
        async with db.transaction():
            await User.create(email="b-" + data["email"], name="B")
            raise RuntimeError("undo the inner block")
    except RuntimeError:
        pass
    return JSONResponse({"count": await User.count()}, status_code=201)


async def count(request: Request) -> JSONResponse:
    return JSONResponse({"count": await User.count()})


async def driver(request: Request) -> JSONResponse:
    async with db.transaction() as session:
        return JSONResponse({"async": await session.run_sync(lambda s: s.connection().dialect.is_async)})


app = Starlette(
    routes=[
        Route("/users/", signup, methods=["POST"]),
        Route("/users/sync/", signup_in_a_thread, methods=["POST"]),
        Route("/users/pair/", pair, methods=["POST"]),
        Route("/users/count", count),
        Route("/driver", driver),
    ],
    middleware=[Middleware(DuoORMMiddleware, db=db)],
    lifespan=duo_lifespan(db),
    exception_handlers=duo_exception_handlers(),
)
""",
    "litestar": """
from typing import Any

from litestar import Litestar, get, post

from duo_orm_litestar import DuoORMPlugin

from .db import User, db


@post("/users/", status_code=201)
async def signup(data: dict[str, Any]) -> dict[str, int]:
    user = await User.create(email=data["email"], name=data["name"])
    return {"id": user.id}


@post("/users/sync/", status_code=201, sync_to_thread=True)
def signup_in_a_thread(data: dict[str, Any]) -> dict[str, int]:
    user = User.create(email=data["email"], name=data["name"])
    return {"id": user.id}


@post("/users/pair/", status_code=201)
async def pair(data: dict[str, Any]) -> dict[str, int]:
    await User.create(email=data["email"], name=data["name"])
    try:
        async with db.transaction():
            await User.create(email="b-" + data["email"], name="B")
            raise RuntimeError("undo the inner block")
    except RuntimeError:
        pass
    return {"count": await User.count()}


@get("/users/count")
async def count() -> dict[str, int]:
    return {"count": await User.count()}


@get("/driver")
async def driver() -> dict[str, bool]:
    async with db.transaction() as session:
        return {"async": await session.run_sync(lambda s: s.connection().dialect.is_async)}


app = Litestar(
    route_handlers=[signup, signup_in_a_thread, pair, count, driver], plugins=[DuoORMPlugin(db)]
)
""",
}

CONFTEST = """
import os
import random

import pytest


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    order = os.environ.get("TEST_ORDER", "")
    if order == "reversed":
        items.reverse()
    elif order.startswith("seed="):  # pytest-randomly style shuffling, reproducible
        random.Random(order).shuffle(items)
"""

TESTS = """
import asyncio
import threading

import anyio
import pytest

from duo_orm import UnsupportedOperationError
from app.db import User, db

EMAIL = {"email": "a@x.io", "name": "A"}


def test_signup(client):
    r = client.post("/users/", json=EMAIL)
    assert r.status_code == 201, r.text
    assert User.count() == 1  # the test sees what the request committed


def test_empty_after_signup(client):
    assert User.count() == 0
    assert client.get("/users/count").json() == {"count": 0}


def test_signup_in_a_worker_thread(client):
    assert client.post("/users/sync/", json=EMAIL).status_code == 201
    assert client.post("/users/sync/", json=EMAIL).status_code == 409  # the unique email
    assert User.count() == 1


def test_empty_after_thread(client):
    assert User.count() == 0


def test_nested_savepoint_in_request(client):
    r = client.post("/users/pair/", json=EMAIL)
    assert r.status_code == 201, r.text
    assert r.json() == {"count": 1}  # the inner block rolled back, the outer row stays
    assert User.where(User.email == "a@x.io").count() == 1


def test_statement_mode_and_blocks():
    User.create(email="s@x.io", name="S")  # commits on its own
    with db.transaction():
        User.create(email="t@x.io", name="T")
        with pytest.raises(RuntimeError):
            with db.transaction():  # SAVEPOINT, rolled back
                User.create(email="u@x.io", name="U")
                raise RuntimeError
    assert sorted(u.email for u in User.all()) == ["s@x.io", "t@x.io"]


def test_empty_after_blocks():
    assert User.count() == 0


def test_sync_test_runs_on_the_sync_driver(client):
    assert client.get("/driver").json() == {"async": False}
    with db.transaction() as session:
        assert not session.connection().dialect.is_async


@pytest.mark.anyio
async def test_signup_async(async_client):
    r = await async_client.post("/users/", json=EMAIL)
    assert r.status_code == 201, r.text
    assert await User.count() == 1
    async with db.transaction():
        await User.create(email="c@x.io", name="C")
    r = await async_client.post("/users/sync/", json={"email": "d@x.io", "name": "D"})
    assert r.status_code == 201, r.text  # a def handler, in a worker thread
    assert await anyio.to_thread.run_sync(User.count) == 3  # sync code in a thread
    assert (await async_client.get("/users/count")).json() == {"count": 3}


@pytest.mark.anyio
async def test_empty_after_async(async_client):
    assert await User.count() == 0
    assert (await async_client.get("/users/count")).json() == {"count": 0}


@pytest.mark.anyio
async def test_async_test_runs_on_the_async_driver(async_client):
    assert (await async_client.get("/driver")).json() == {"async": True}
    async with db.transaction() as session:
        assert await session.run_sync(lambda s: s.connection().dialect.is_async)


@pytest.mark.anyio
async def test_overlapping_tasks_are_refused():
    first_in, second_in = anyio.Event(), anyio.Event()

    async def first():
        async with db.transaction():
            await User.create(email="f@x.io", name="F")
            first_in.set()
            await second_in.wait()
        # leaves while the second task's savepoint is still open

    async def second():
        await first_in.wait()
        async with db.transaction():
            await User.create(email="g@x.io", name="G")
            second_in.set()
            await asyncio.sleep(0)

    results = await asyncio.gather(first(), second(), return_exceptions=True)
    assert isinstance(results[0], UnsupportedOperationError), results
    assert "overlapped" in str(results[0])


def test_overlapping_threads_are_refused():
    first_in, second_in, first_out = threading.Event(), threading.Event(), threading.Event()
    errors = []

    def first():
        try:
            with db.transaction():
                User.create(email="f@x.io", name="F")
                first_in.set()
                second_in.wait(60)
        except Exception as exc:
            errors.append(exc)
        finally:
            first_out.set()

    def second():
        first_in.wait(60)
        with db.transaction():
            User.create(email="g@x.io", name="G")
            second_in.set()
            first_out.wait(60)

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(errors) == 1 and isinstance(errors[0], UnsupportedOperationError), errors


def test_empty_after_overlaps():
    assert User.count() == 0


@pytest.mark.duo_orm_commits
def test_real_commit_is_seen_by_another_connection():
    User.create(email="real@x.io", name="R")
    with db.standalone_session() as other:  # its own pooled connection
        assert other.query(User).count() == 1


def test_empty_after_real_commit():
    assert User.count() == 0
"""
TEST_COUNT = 16


def write_project(pytester: pytest.Pytester, framework: str) -> None:
    pytester.makepyfile(
        **{
            "app/__init__.py": "",
            "app/db.py": textwrap.dedent(DB_MODULE),
            "app/main.py": textwrap.dedent(APPS[framework]),
            "conftest.py": textwrap.dedent(CONFTEST),
            "test_users.py": textwrap.dedent(TESTS),
        }
    )
    pytester.makepyprojecttoml(
        textwrap.dedent(
            """
            [tool.pytest.ini_options]
            duo_orm_database = ["app.db:db"]
            duo_orm_app = "app.main:app"
            """
        )
    )


@pytest.mark.parametrize("framework", sorted(APPS))
def test_user_project_is_isolated_in_any_order(
    pytester: pytest.Pytester, framework: str, url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_project(pytester, framework)
    for order in ("", "reversed", "seed=1", "seed=2"):
        monkeypatch.setenv("TEST_ORDER", order)
        result = pytester.runpytest_subprocess(f"--duo-orm-url={url}", "-p", "no:randomly")
        result.assert_outcomes(passed=TEST_COUNT)


MIGRATED_MODEL = """
from duo_orm import Mapped, String, mapped_column

from ..database import db


class User(db.Model):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(255), unique=True)
"""

MIGRATED_TESTS = """
from sqlalchemy import text

from db.database import db
from db.models import User


def test_schema_came_from_the_migrations():
    with db.transaction() as session:
        assert session.execute(text("SELECT version_num FROM alembic_version")).scalar()


def test_create():
    User.create(email="a@x.io")
    assert User.count() == 1


def test_clean():
    assert User.count() == 0
"""


@pytest.mark.persistent  # the migrations run in a child process
def test_schema_from_migrations(
    pytester: pytest.Pytester, url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``duo_orm_schema = "migrations"`` runs the project's own migrations on the test URL."""
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{pytester.path / 'scratch.db'}")

    def duo_orm(*args: str) -> None:
        command = [sys.executable, "-m", "duo_orm", *args]
        done = subprocess.run(command, cwd=pytester.path, capture_output=True, text=True)
        assert done.returncode == 0, done.stdout + done.stderr

    duo_orm("init")
    (pytester.path / "db/models/user.py").write_text(textwrap.dedent(MIGRATED_MODEL))
    (pytester.path / "db/models/__init__.py").write_text("from .user import User\n")
    duo_orm("migration", "create", "users")
    pytester.makeconftest(textwrap.dedent(CONFTEST))
    pytester.makepyfile(test_migrated=textwrap.dedent(MIGRATED_TESTS))
    pytester.makepyprojecttoml(
        '[tool.pytest.ini_options]\nduo_orm_database = ["db.database:db"]\n'
        'duo_orm_schema = "migrations"\n'
    )
    for order in ("", "reversed"):
        monkeypatch.setenv("TEST_ORDER", order)
        result = pytester.runpytest_subprocess(f"--duo-orm-url={url}", "-p", "no:randomly")
        result.assert_outcomes(passed=3)


@pytest.mark.postgres
def test_throwaway_postgresql_server(pytester: pytest.Pytester) -> None:
    write_project(pytester, "fastapi")
    result = pytester.runpytest_subprocess("--duo-orm-url=throwaway-postgresql")
    result.assert_outcomes(passed=TEST_COUNT)


def test_plugin_is_inert_without_configuration(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_plain="""
        def test_plain(request):
            assert "duo_orm_isolation" in request.fixturenames  # loaded, and idle
        """
    )
    pytester.runpytest_subprocess().assert_outcomes(passed=1)


def test_client_fixture_without_an_app_says_how_to_name_it(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        **{"app/__init__.py": "", "app/db.py": textwrap.dedent(DB_MODULE)},
        test_client=(
            "from app.db import User\n\n"
            "def test_isolated_without_an_app():\n    User.create(email='a@x.io', name='A')\n\n"
            "def test_clean():\n    assert User.count() == 0\n\n"
            "def test_uses_client(client):\n    pass\n"
        ),
    )
    # the single-string form of the key, as most projects will write it
    pytester.makepyprojecttoml('[tool.pytest.ini_options]\nduo_orm_database = "app.db:db"\n')
    result = pytester.runpytest_subprocess()
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(["*set `duo_orm_app = *"])


def test_plugin_imports_no_web_framework() -> None:
    """Loading the plugin (every pytest run does) imports none of the frameworks."""
    check = (
        "import sys, duo_orm_pytest.plugin\n"
        "loaded = {'fastapi', 'starlette', 'litestar', 'httpx'} & set(sys.modules)\n"
        "assert not loaded, loaded\n"
    )
    done = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
