"""Per-request overhead: the users routes through each framework, with the duo-orm adapter
and hand-written with a plain SQLAlchemy session, plus a route that never touches the DB.

Requests go through httpx's in-process ASGI transport (no sockets, no server), one at a
time, so the figures are the framework + adapter + ORM cost per request. Every app of a
framework runs in the same process and the rounds are interleaved. A second copy of the
hand-written app is measured as well: how far two identical apps differ is the noise.
"""

import itertools
import statistics
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Annotated, Any

import httpx
from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from duo_orm import Database

from .harness import rotated


class UserIn(BaseModel):
    email: str
    name: str


@dataclass
class HttpResult:
    framework: str
    route: str
    app: str
    p50: float
    p99: float
    per_second: float

    @classmethod
    def of(
        cls, framework: str, route: str, app: str, latencies: list[float], per_second: float
    ) -> "HttpResult":
        """Percentiles of one app's request latencies (seconds)."""
        ordered = sorted(latencies)
        return cls(
            framework,
            route,
            app,
            p50=statistics.median(ordered),
            p99=ordered[int(len(ordered) * 0.99) - 1],
            per_second=per_second,
        )


def fastapi_apps(db: Database, User: Any, engine: AsyncEngine) -> dict[str, Any]:
    from fastapi import APIRouter, Depends, FastAPI

    from duo_orm_fastapi import DuoORM, unit_of_work

    ours = FastAPI()
    router = APIRouter(dependencies=[Depends(unit_of_work)])

    @router.post("/users", status_code=201)
    async def create(payload: UserIn) -> dict[str, Any]:
        user = await User.create(payload)
        return {"id": user.id, "name": user.name}

    @router.get("/users/{user_id}")
    async def read(user_id: int) -> dict[str, Any]:
        user = await User.get_one(user_id)
        return {"id": user.id, "name": user.name}

    @router.get("/users")
    async def listing() -> list[dict[str, Any]]:
        return [{"id": u.id, "name": u.name} for u in await User.order_by("id").limit(20).all()]

    @ours.get("/nodb")
    async def nodb() -> dict[str, bool]:
        return {"ok": True}

    ours.include_router(router)
    DuoORM(ours, db)

    plain = FastAPI()

    async def session() -> AsyncIterator[AsyncSession]:
        async with AsyncSession(engine, expire_on_commit=False) as s:
            yield s
            await s.commit()

    Session = Annotated[AsyncSession, Depends(session)]

    @plain.post("/users", status_code=201)
    async def create_plain(payload: UserIn, s: Session) -> dict[str, Any]:
        user = User(**payload.model_dump())
        s.add(user)
        await s.flush()
        return {"id": user.id, "name": user.name}

    @plain.get("/users/{user_id}")
    async def read_plain(user_id: int, s: Session) -> dict[str, Any]:
        user = await s.get(User, user_id)
        return {"id": user.id, "name": user.name}

    @plain.get("/users")
    async def listing_plain(s: Session) -> list[dict[str, Any]]:
        users = (await s.scalars(select(User).order_by(User.id).limit(20))).all()
        return [{"id": u.id, "name": u.name} for u in users]

    @plain.get("/nodb")
    async def nodb_plain() -> dict[str, bool]:
        return {"ok": True}

    return {"duo-orm": ours, "hand-written": plain}


def starlette_apps(db: Database, User: Any, engine: AsyncEngine) -> dict[str, Any]:
    from starlette.applications import Starlette
    from starlette.middleware import Middleware
    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response
    from starlette.routing import Route

    from duo_orm_starlette import DuoORMMiddleware, duo_exception_handlers

    async def create(request: Request) -> Response:
        user = await User.create(UserIn.model_validate(await request.json()))
        return JSONResponse({"id": user.id, "name": user.name}, status_code=201)

    async def read(request: Request) -> Response:
        user = await User.get_one(request.path_params["user_id"])
        return JSONResponse({"id": user.id, "name": user.name})

    async def listing(request: Request) -> Response:
        users = await User.order_by("id").limit(20).all()
        return JSONResponse([{"id": u.id, "name": u.name} for u in users])

    async def nodb(request: Request) -> Response:
        return JSONResponse({"ok": True})

    async def create_plain(request: Request) -> Response:
        payload = UserIn.model_validate(await request.json())
        async with AsyncSession(engine, expire_on_commit=False) as s, s.begin():
            user = User(**payload.model_dump())
            s.add(user)
            await s.flush()
        return JSONResponse({"id": user.id, "name": user.name}, status_code=201)

    async def read_plain(request: Request) -> Response:
        async with AsyncSession(engine) as s, s.begin():
            user = await s.get(User, request.path_params["user_id"])
            return JSONResponse({"id": user.id, "name": user.name})

    async def listing_plain(request: Request) -> Response:
        async with AsyncSession(engine) as s, s.begin():
            users = (await s.scalars(select(User).order_by(User.id).limit(20))).all()
            return JSONResponse([{"id": u.id, "name": u.name} for u in users])

    def routes(create: Any, read: Any, listing: Any) -> list[Route]:
        return [
            Route("/users", create, methods=["POST"]),
            Route("/users/{user_id:int}", read),
            Route("/users", listing, methods=["GET"]),
            Route("/nodb", nodb),
        ]

    ours = Starlette(
        routes=routes(create, read, listing),
        middleware=[Middleware(DuoORMMiddleware, db=db)],
        exception_handlers=duo_exception_handlers(),
    )
    plain = Starlette(routes=routes(create_plain, read_plain, listing_plain))
    return {"duo-orm": ours, "hand-written": plain}


def litestar_apps(db: Database, User: Any, engine: AsyncEngine) -> dict[str, Any]:
    from litestar import Litestar, get, post
    from litestar.di import NamedDependency, Provide
    from litestar.params import JSONBody

    from duo_orm_litestar import DuoORMPlugin

    @post("/users", status_code=201)
    async def create(data: JSONBody[UserIn]) -> dict[str, Any]:
        user = await User.create(data)
        return {"id": user.id, "name": user.name}

    @get("/users/{user_id:int}")
    async def read(user_id: int) -> dict[str, Any]:
        user = await User.get_one(user_id)
        return {"id": user.id, "name": user.name}

    @get("/users")
    async def listing() -> list[dict[str, Any]]:
        return [{"id": u.id, "name": u.name} for u in await User.order_by("id").limit(20).all()]

    @get("/nodb")
    async def nodb() -> dict[str, bool]:
        return {"ok": True}

    async def session() -> AsyncIterator[AsyncSession]:
        async with AsyncSession(engine, expire_on_commit=False) as s:
            yield s
            await s.commit()

    @post("/users", status_code=201)
    async def create_plain(
        data: JSONBody[UserIn], s: NamedDependency[AsyncSession]
    ) -> dict[str, Any]:
        user = User(**data.model_dump())
        s.add(user)
        await s.flush()
        return {"id": user.id, "name": user.name}

    @get("/users/{user_id:int}")
    async def read_plain(user_id: int, s: NamedDependency[AsyncSession]) -> dict[str, Any]:
        user = await s.get(User, user_id)
        return {"id": user.id, "name": user.name}

    @get("/users")
    async def listing_plain(s: NamedDependency[AsyncSession]) -> list[dict[str, Any]]:
        users = (await s.scalars(select(User).order_by(User.id).limit(20))).all()
        return [{"id": u.id, "name": u.name} for u in users]

    ours = Litestar([create, read, listing, nodb], plugins=[DuoORMPlugin(db)], logging_config=None)
    plain = Litestar(
        [create_plain, read_plain, listing_plain, nodb],
        dependencies={"s": Provide(session)},
        logging_config=None,
    )
    return {"duo-orm": ours, "hand-written": plain}


FRAMEWORKS: dict[str, Callable[[Database, Any, AsyncEngine], dict[str, Any]]] = {
    "fastapi": fastapi_apps,
    "starlette": starlette_apps,
    "litestar": litestar_apps,
}


async def run_http(db: Database, User: Any, requests: int, rounds: int) -> list[HttpResult]:
    engine = db.async_engine
    counter = itertools.count()
    async with db.standalone_session() as s:  # rows for the read routes
        s.add_all(User(email=f"seed{i}@x.io", name="seed") for i in range(50))
        await s.commit()
        first_id = (await s.scalars(select(User.id).order_by(User.id).limit(1))).one()

    def calls() -> dict[str, Callable[[httpx.AsyncClient], Any]]:
        return {
            "create": lambda c: c.post(
                "/users", json={"email": f"h{next(counter)}@x.io", "name": "n"}
            ),
            "get": lambda c: c.get(f"/users/{first_id}"),
            "list 20": lambda c: c.get("/users"),
            "no database": lambda c: c.get("/nodb"),
        }

    results: list[HttpResult] = []
    for framework, build in FRAMEWORKS.items():
        apps = build(db, User, engine)
        apps["hand-written (copy)"] = build(db, User, engine)["hand-written"]  # the noise floor
        clients = {
            name: httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://b")
            for name, app in apps.items()
        }
        for route, call in calls().items():
            samples: dict[str, list[float]] = {name: [] for name in apps}
            names = list(apps)
            for round_number in range(rounds):
                for name in rotated(names, round_number):
                    client = clients[name]
                    for _ in range(requests):
                        started = time.perf_counter()
                        response = await call(client)
                        samples[name].append(time.perf_counter() - started)
                        assert response.status_code < 400, response.text
            for name, values in samples.items():
                per_second = len(values) / sum(values)
                results.append(HttpResult.of(framework, route, name, values, per_second))
        for client in clients.values():
            await client.aclose()
    return results


@dataclass
class DirectResult:
    framework: str
    microseconds: dict[str, float]  # per request, by app


async def run_direct(db: Database, User: Any, requests: int, rounds: int) -> list[DirectResult]:
    """The DB-less route called as a bare ASGI app: no client, no sockets, nothing but the app.

    This is the adapter's own per-request cost with nothing around it to hide it.
    """
    engine = db.async_engine

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Any) -> None:
        if message["type"] == "http.response.start":
            assert message["status"] == 200, message

    def scope() -> dict[str, Any]:
        return {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "GET",
            "scheme": "http",
            "path": "/nodb",
            "raw_path": b"/nodb",
            "query_string": b"",
            "root_path": "",
            "headers": [(b"host", b"bench")],
            "client": ("127.0.0.1", 50000),
            "server": ("127.0.0.1", 80),
        }

    async def timed(app: Any) -> float:
        started = time.perf_counter()
        for _ in range(requests):
            await app(scope(), receive, send)
        return (time.perf_counter() - started) / requests

    results = []
    for framework, build in FRAMEWORKS.items():
        apps = build(db, User, engine)
        apps["hand-written (copy)"] = build(db, User, engine)["hand-written"]
        names = list(apps)
        samples: dict[str, list[float]] = {name: [] for name in names}
        for name in names:
            await timed(apps[name])  # warm up
        for round_number in range(rounds):
            for name in rotated(names, round_number):
                samples[name].append(await timed(apps[name]))
        results.append(
            DirectResult(
                framework, {name: statistics.median(v) * 1e6 for name, v in samples.items()}
            )
        )
    return results
