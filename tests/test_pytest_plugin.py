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
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

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
        is_async = await session.run_sync(lambda s: s.connection().dialect.is_async)
        return JSONResponse({"async": is_async})


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

import pytest


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    if os.environ.get("TEST_ORDER") == "reversed":
        items.reverse()
"""

# The orders each project runs in: as written, reversed, and shuffled by pytest-randomly.
ORDERS = {
    "file order": ["-p", "no:randomly"],
    "reversed": ["-p", "no:randomly"],
    "shuffled": ["-p", "randomly", "--randomly-seed=1"],
    "shuffled again": ["-p", "randomly", "--randomly-seed=2"],
}

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


@pytest.mark.anyio
async def test_sync_block_in_a_thread_of_an_async_test_is_refused():
    def block():
        with db.transaction():
            User.create(email="h@x.io", name="H")

    with pytest.raises(UnsupportedOperationError, match="sync session from another thread"):
        await anyio.to_thread.run_sync(block)


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
TEST_COUNT = 17


def write_project(pytester: pytest.Pytester, framework: str, tests: str = TESTS) -> None:
    pytester.makepyfile(
        **{
            "app/__init__.py": "",
            "app/db.py": textwrap.dedent(DB_MODULE),
            "app/main.py": textwrap.dedent(APPS[framework]),
            "conftest.py": textwrap.dedent(CONFTEST),
            "test_users.py": textwrap.dedent(tests),
        }
    )
    pytester.makepyprojecttoml(
        textwrap.dedent(
            """
            [tool.pytest.ini_options]
            duo_orm_database = ["app.db:db"]
            duo_orm_app = "app.main:app"
            asyncio_default_fixture_loop_scope = "function"
            """
        )
    )


def run_in_orders(
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    orders: list[str],
    *args: str,
    passed: int = TEST_COUNT,
) -> None:
    for order in orders:
        monkeypatch.setenv("TEST_ORDER", order)
        result = pytester.runpytest_subprocess(*args, *ORDERS[order])
        result.assert_outcomes(passed=passed)


@pytest.mark.parametrize("framework", sorted(APPS))
def test_user_project_is_isolated_in_any_order(
    pytester: pytest.Pytester, framework: str, url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_project(pytester, framework)
    run_in_orders(pytester, monkeypatch, list(ORDERS), f"--duo-orm-url={url}")


@pytest.mark.parametrize("framework", sorted(APPS))
def test_user_project_on_pytest_asyncio(
    pytester: pytest.Pytester, framework: str, url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same tests run by pytest-asyncio: marked (strict mode) and unmarked (auto mode)."""
    strict = TESTS.replace("@pytest.mark.anyio", "@pytest.mark.asyncio")
    write_project(pytester, framework, strict)
    given = [f"--duo-orm-url={url}"]
    run_in_orders(pytester, monkeypatch, ["file order", "reversed", "shuffled"], *given)
    auto = TESTS.replace("@pytest.mark.anyio\n", "")
    write_project(pytester, framework, auto)
    given += ["-o", "asyncio_mode=auto"]
    run_in_orders(pytester, monkeypatch, ["file order", "shuffled again"], *given)


ASYNC_DRIVER_ONLY = """
import sys

sys.modules["psycopg"] = None  # as if only asyncpg were installed
"""

ASYNC_DRIVER_ONLY_TESTS = """
import pytest

from app.db import User


@pytest.mark.anyio
async def test_signup(async_client):
    assert (await async_client.post("/users/", json={"email": "a@x.io", "name": "A"})).is_success
    assert await User.count() == 1


@pytest.mark.anyio
async def test_clean(async_client):
    assert await User.count() == 0
    assert (await async_client.get("/users/count")).json() == {"count": 0}


def test_sync():
    pass
"""


@pytest.mark.postgres
def test_project_with_only_the_async_driver(
    pytester: pytest.Pytester, url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without psycopg, async tests run on asyncpg; a sync test is told what to install."""
    write_project(pytester, "fastapi", ASYNC_DRIVER_ONLY_TESTS)
    pytester.makeconftest(textwrap.dedent(CONFTEST + ASYNC_DRIVER_ONLY))
    asyncpg_url = make_url(url).set(drivername="postgresql+asyncpg")
    given = f"--duo-orm-url={asyncpg_url.render_as_string(hide_password=False)}"
    for order in ("file order", "reversed"):
        monkeypatch.setenv("TEST_ORDER", order)
        result = pytester.runpytest_subprocess(given, *ORDERS[order])
        result.assert_outcomes(passed=2, errors=1)
        result.stdout.fnmatch_lines(["*sync driver of 'postgresql+psycopg'*not installed*"])


XDIST_CONFTEST = """
import os
from pathlib import Path

import pytest

from app.db import db


@pytest.fixture(autouse=True)
def record_database(worker_id):
    Path(os.environ["SEEN"], worker_id).write_text(db.url)
"""


@pytest.mark.persistent  # in-memory SQLite is per process anyway: nothing to show there
def test_each_xdist_worker_gets_its_own_database(
    pytester: pytest.Pytester, url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    write_project(pytester, "starlette")
    pytester.makepyfile(conftest=textwrap.dedent(CONFTEST + XDIST_CONFTEST))
    seen = tmp_path / "seen"
    seen.mkdir()
    monkeypatch.setenv("SEEN", str(seen))
    result = pytester.runpytest_subprocess(f"--duo-orm-url={url}", "-n", "2", "-p", "no:randomly")
    result.assert_outcomes(passed=TEST_COUNT)
    used = {path.name: path.read_text() for path in seen.iterdir()}
    assert sorted(used) == ["gw0", "gw1"]
    assert len(set(used.values())) == 2
    for worker, worker_url in used.items():
        assert make_url(worker_url).database.endswith(  # type: ignore[union-attr]
            (f"-{worker}.db", f"_{worker}")
        )
    if make_url(url).get_backend_name() == "postgresql":  # the workers' databases are gone
        engine = create_engine(make_url(url).set(drivername="postgresql+psycopg"))
        with engine.connect() as connection:
            names = connection.execute(text("SELECT datname FROM pg_database")).scalars()
            assert not [name for name in names if name.endswith(("_gw0", "_gw1"))]
        engine.dispose()


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
    run_in_orders(
        pytester, monkeypatch, ["file order", "reversed"], f"--duo-orm-url={url}", passed=3
    )


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
