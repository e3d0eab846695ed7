"""End to end: the same users API written with duo-orm and each peer, under uvicorn.

Four FastAPI apps (``benchmarks/e2e_apps/``), each written the way its project's docs
show: duo-orm with its adapter, SQLModel, advanced-alchemy's FastAPI extension and
Tortoise ORM's ``RegisterTortoise``. Each runs in its own uvicorn process (uvloop,
httptools, one worker) on 127.0.0.1 and is loaded by 20 keep-alive connections from the
asyncio client in ``loopback.py``: ``GET /users/{id}`` over 1,000 seeded rows, and
``POST /users/`` with a fresh email each time. Every round gives each app the same time
slice, in rotating order; req/s, p50 and p99 are medians over the rounds.

All apps share one PostgreSQL table. On SQLite each app gets its own copy of the seeded
file: the journal mode belongs to the file, and each app must meet its own defaults
(Tortoise switches a file to WAL; SQLAlchemy's default engine leaves it as it is).

``duo_orm_path`` adds the duo-orm app once more, importing ``duo_orm`` and its adapter
from another checkout (``PYTHONPATH=PATH``): before/after figures in one run.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import shutil
import statistics
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import Column, Integer, MetaData, String, Table, create_engine, insert
from sqlalchemy.engine import make_url

from . import checkout, peers
from .harness import rotated
from .loopback import Load, drive, get, post_json, uvicorn_process

APP_DIR = Path(__file__).parent / "e2e_apps"
SEEDED = 1_000
CONCURRENCY = 20
DUO, SQLMODEL, ADVANCED_ALCHEMY, TORTOISE = (
    "duo-orm",
    "SQLModel",
    "advanced-alchemy",
    "Tortoise ORM",
)
# label -> (module in e2e_apps, the peer it needs installed or None)
APPS = {
    DUO: ("duo_orm_app", None),
    SQLMODEL: ("sqlmodel_app", peers.SQLMODEL),
    ADVANCED_ALCHEMY: ("advanced_alchemy_app", peers.ADVANCED_ALCHEMY),
    TORTOISE: ("tortoise_app", peers.TORTOISE),
}
ROUTES = ("GET /users/{id}", "POST /users/")


@dataclass
class E2EResult:
    route: str
    database: str
    app: str
    per_second: float  # medians over the rounds
    p50: float  # seconds
    p99: float
    failures: list[str] = field(default_factory=list)  # over all rounds


def app_url(label: str, url: str) -> str:
    """The database URL in the form the app's docs use (each picks its own driver)."""
    parsed = make_url(url)
    sqlite = parsed.get_backend_name() == "sqlite"
    if label == TORTOISE:
        return peers.tortoise_url(url)
    if label == ADVANCED_ALCHEMY:
        driver = "sqlite+aiosqlite" if sqlite else "postgresql+asyncpg"
        return parsed.set(drivername=driver).render_as_string(hide_password=False)
    if label == SQLMODEL and not sqlite:
        return parsed.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)
    return url  # duo-orm picks its drivers itself; SQLModel on SQLite: the stdlib driver


def seed(url: str) -> None:
    """The ``e2e_users`` table with ``SEEDED`` rows, written with plain SQLAlchemy Core."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "postgresql":
        url = parsed.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)
    metadata = MetaData()
    table = Table(
        "e2e_users",
        metadata,
        Column("id", Integer, primary_key=True),
        Column("email", String(100), unique=True, nullable=False),
        Column("name", String(100), nullable=False),
    )
    engine = create_engine(url)
    try:
        metadata.drop_all(engine)
        metadata.create_all(engine)
        rows = [{"email": f"seed{i}@x.io", "name": f"user {i}"} for i in range(SEEDED)]
        with engine.begin() as connection:
            connection.execute(insert(table), rows)
    finally:
        engine.dispose()


def databases(url: str, labels: list[str]) -> dict[str, str]:
    """Each app's database URL: the shared one, or on SQLite its own copy of the file."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return dict.fromkeys(labels, url)
    source = Path(str(parsed.database))
    found = {}
    for number, label in enumerate(labels):
        copy = source.with_name(f"{source.stem}-app{number}{source.suffix}")
        shutil.copyfile(source, copy)
        found[label] = parsed.set(database=str(copy)).render_as_string(hide_password=False)
    return found


def labels(duo_orm_path: str | None) -> list[str]:
    """The apps this run serves: the installed ones, then the other checkout's duo-orm."""
    found = [label for label, (_, peer) in APPS.items() if peer is None or peers.available(peer)]
    return found + ([checkout.label(duo_orm_path)] if duo_orm_path else [])


@contextmanager
def servers(url: str, duo_orm_path: str | None) -> Iterator[dict[str, int]]:
    """Every app served at once, each in its own uvicorn process (idle ones cost nothing)."""
    urls = databases(url, labels(duo_orm_path))
    folder = str(APP_DIR)  # holds nothing but the apps, so sys.path gains nothing else
    with ExitStack() as stack:
        ports = {}
        for label, database in urls.items():
            module, _ = APPS.get(label, APPS[DUO])
            environment = {"E2E_DATABASE_URL": app_url(label, database)}
            if label not in APPS and duo_orm_path:  # the other checkout's duo-orm
                environment.update(checkout.environment(duo_orm_path))
                checkout.check(duo_orm_path, environment, folder)
            ports[label] = stack.enter_context(
                uvicorn_process(f"{module}:app", environment, app_dir=folder, cwd=folder)
            )
        yield ports


def requests_for(route: str) -> Callable[[], bytes]:
    """Each call the next request: ids cycle over the seeded rows, emails never repeat."""
    numbers = itertools.count()
    if route.startswith("GET"):
        return lambda: get(f"/users/{next(numbers) % SEEDED + 1}")
    token = os.urandom(4).hex()

    def create() -> bytes:
        body = {"email": f"e2e-{token}-{next(numbers)}@x.io", "name": "bench"}
        return post_json("/users/", json.dumps(body).encode())

    return create


def run_e2e(
    kind: str, url: str, *, rounds: int, seconds: float, duo_orm_path: str | None = None
) -> list[E2EResult]:
    seed(url)
    with servers(url, duo_orm_path) as ports:
        return [
            result
            for route in ROUTES
            for result in measure_route(kind, route, ports, rounds, seconds)
        ]


def measure_route(
    kind: str, route: str, ports: dict[str, int], rounds: int, seconds: float
) -> list[E2EResult]:
    """``rounds`` rounds (after a short warm-up that is dropped), apps in rotating order."""
    make = requests_for(route)
    loads: dict[str, list[Load]] = {name: [] for name in ports}
    failures: dict[str, list[str]] = {name: [] for name in ports}
    for number in range(rounds + 1):
        for name in rotated(list(ports), number):
            done = asyncio.run(
                drive(
                    ports[name],
                    make,
                    concurrency=CONCURRENCY,
                    requests=int(seconds * 10_000),  # a bound far above any app's rate
                    seconds=seconds if number else seconds / 4,
                )
            )
            failures[name] += done.failures
            if number:
                loads[name].append(done)
    return [summary(kind, route, name, loads[name], failures[name]) for name in ports]


def summary(kind: str, route: str, app: str, loads: list[Load], failures: list[str]) -> E2EResult:
    """Medians over the rounds of each round's req/s, p50 and p99."""
    answered = [sorted(load.latencies) for load in loads if load.latencies]
    return E2EResult(
        route,
        kind,
        app,
        _median([load.per_second for load in loads]),
        _median([statistics.median(latencies) for latencies in answered]),
        _median([latencies[max(int(len(latencies) * 0.99) - 1, 0)] for latencies in answered]),
        failures,
    )


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else 0.0


def header(apps: list[str]) -> str:
    return (
        "| route | database | "
        + " | ".join(f"{app} req/s (p50 / p99 ms)" for app in apps)
        + " |\n|---|---|"
        + "---:|" * len(apps)
    )


def rows(results: list[E2EResult], apps: list[str]) -> list[str]:
    by_key = {(r.route, r.database, r.app): r for r in results}
    lines = []
    for route, database in dict.fromkeys((r.route, r.database) for r in results):
        cells = []
        for app in apps:
            found = by_key.get((route, database, app))
            cells.append("-" if found is None else cell(found))
        lines.append(f"| {route} | {database} | " + " | ".join(cells) + " |")
    return lines


def cell(result: E2EResult) -> str:
    text = f"{result.per_second:,.0f} ({result.p50 * 1e3:.1f} / {result.p99 * 1e3:.0f})"
    if result.failures:
        counted = ", ".join(
            f"{count} x {what}"
            for what, count in sorted(
                {f: result.failures.count(f) for f in result.failures}.items()
            )
        )
        text += f"; failed: {counted}"
    return text
