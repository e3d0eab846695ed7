"""Read replicas, measured: the per-read cost of routing, and HTTP read throughput.

``python -m benchmarks.run --only scaling`` starts a throwaway primary and a
streaming standby on loopback (``tests/replication.py``) and measures

- the same lone read (``Model.get``) in-process, sync and async (psycopg), on a
  Database without replicas, on one whose reads go to the standby, and on one whose
  only replica is down (every read asks the router, which skips it: the primary
  serves);
- a read-heavy HTTP load (GET by primary key over keep-alive connections) against a
  Starlette app under one uvicorn worker, with reads on the primary only and with
  reads on the standby.

Setups alternate within every round, so a noisy neighbour slows all of them alike.
On a two-core machine the servers, uvicorn and the load client share both cores: a
replica there moves work from one process to another on the same cores, so it can
show what routing costs, not the throughput a replica on its own machine adds.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import time
import timeit
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

from sqlalchemy import column, create_engine, select, table, text
from sqlalchemy.orm import Mapped, mapped_column
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from duo_orm import Database
from duo_orm_starlette import DuoORMMiddleware, duo_lifespan

from .harness import rotated
from .loopback import drive, get, uvicorn_process

ROUTING_HEADER = "| setup | sync read µs | async read µs |\n|---|---:|---:|"
HTTP_HEADER = "| reads served by | req/s | p50 ms | p99 ms |\n|---|---:|---:|---:|"
DECISION_HEADER = "| session | get_bind per SELECT µs |\n|---|---:|"
DOWN_REPLICA = "postgresql://duo@127.0.0.1:1/none"  # nothing listens on port 1
CONCURRENCY = 10


def define(db: Database) -> Any:
    class Item(db.Model):
        __tablename__ = "items"
        id: Mapped[int] = mapped_column(primary_key=True)
        name: Mapped[str]

    return Item


def app_factory() -> Starlette:
    """``uvicorn --factory benchmarks.scaling:app_factory``; configured by environment."""
    replica = os.environ.get("BENCH_REPLICA_URL")
    db = Database(os.environ["BENCH_DATABASE_URL"], replicas=[replica] if replica else ())
    Item = define(db)

    async def one(request: Request) -> JSONResponse:
        item = await Item.get_one(int(request.path_params["item_id"]))
        return JSONResponse({"id": item.id, "name": item.name})

    return Starlette(
        routes=[Route("/items/{item_id:int}", one)],
        middleware=[Middleware(DuoORMMiddleware, db=db)],
        lifespan=duo_lifespan(db),
    )


@contextmanager
def replicated() -> Iterator[tuple[str, str]]:
    """A primary and its standby with one seeded table: the two URLs of that database."""
    from tests.replication import replicated_database, replicated_servers

    with replicated_servers() as servers, replicated_database(servers) as pair:
        engine = create_engine(pair.primary)
        with engine.begin() as connection:
            connection.execute(text("CREATE TABLE items (id serial PRIMARY KEY, name text)"))
            connection.execute(
                text("INSERT INTO items (name) SELECT 'item' FROM generate_series(1, 100)")
            )
        engine.dispose()
        servers.wait_replayed()
        yield pair.primary, pair.standby


def decision_rows(primary: str, standby: str) -> list[str]:
    """The router's own CPU cost per statement, free of I/O noise: ``get_bind`` of a plain
    session against a routing session that has chosen its replica."""
    from duo_orm.routing import _ROUTE, Route, RoutingSession
    from duo_orm.session import DuoSession

    db = Database(primary, replicas=[standby])
    assert db._router is not None
    engine = db.sync_engine
    statement = select(column("id")).select_from(table("items"))
    plain = DuoSession(bind=engine)
    routed = RoutingSession(bind=engine)
    route = Route(db._router, "read", is_async=False)
    route.read_bind = engine
    routed.info[_ROUTE] = route
    rows = []
    for name, session in (("plain (no replicas)", plain), ("routing, replica chosen", routed)):
        best = min(
            timeit.repeat(lambda s=session: s.get_bind(clause=statement), number=100_000, repeat=5)
        )
        rows.append(f"| {name} | {best / 100_000 * 1e6:.2f} |")
    db.disconnect()
    return rows


def per_read_us(run: Callable[[], Any], reads: int) -> float:
    start = time.perf_counter()
    run()
    return (time.perf_counter() - start) / reads * 1e6


def routing_rows(primary: str, standby: str, rounds: int, reads: int) -> list[str]:
    setups = {
        "primary only (no replicas)": Database(primary),
        "reads on the replica": Database(primary, replicas=[standby]),
        "replica down, primary serves": Database(primary, replicas=[DOWN_REPLICA]),
    }
    models = {name: define(db) for name, db in setups.items()}

    def sync_reads(Item: Any) -> None:
        for n in range(reads):
            Item.get(n % 100 + 1)

    async def async_reads(Item: Any) -> None:
        for n in range(reads):
            await Item.get(n % 100 + 1)

    sync_times: dict[str, list[float]] = {name: [] for name in setups}
    async_times: dict[str, list[float]] = {name: [] for name in setups}

    async def async_round(number: int) -> None:
        for name in rotated(list(setups), number):
            start = time.perf_counter()
            await async_reads(models[name])
            if number:
                async_times[name].append((time.perf_counter() - start) / reads * 1e6)

    async def async_all() -> None:
        for number in range(rounds + 1):  # round 0 warms pools and replica checks
            await async_round(number)
        for db in setups.values():
            await db.disconnect()

    for number in range(rounds + 1):
        for name in rotated(list(setups), number):
            spent = per_read_us(lambda name=name: sync_reads(models[name]), reads)
            if number:
                sync_times[name].append(spent)
    for db in setups.values():
        db.disconnect()
    asyncio.run(async_all())
    return [
        f"| {name} | {statistics.median(sync_times[name]):.0f} "
        f"| {statistics.median(async_times[name]):.0f} |"
        for name in setups
    ]


def http_rows(primary: str, standby: str, rounds: int, seconds: float) -> list[str]:
    setups = {"the primary": {}, "the replica": {"BENCH_REPLICA_URL": standby}}
    rates: dict[str, list[float]] = {name: [] for name in setups}
    latencies: dict[str, list[float]] = {name: [] for name in setups}
    counter = iter(range(10**9))

    def next_request() -> bytes:
        return get(f"/items/{next(counter) % 100 + 1}")

    with ExitStack() as stack:
        ports = {
            name: stack.enter_context(
                uvicorn_process(
                    "benchmarks.scaling:app_factory",
                    {"BENCH_DATABASE_URL": primary, **extra},
                    factory=True,
                )
            )
            for name, extra in setups.items()
        }
        for number in range(rounds + 1):
            for name in rotated(list(setups), number):
                load = asyncio.run(
                    drive(
                        ports[name],
                        next_request,
                        concurrency=CONCURRENCY,
                        requests=10**9,
                        seconds=seconds if number else 0.5,
                    )
                )
                if load.failures:
                    raise RuntimeError(f"{name}: {', '.join(sorted(set(load.failures)))}")
                if number:
                    rates[name].append(load.per_second)
                    latencies[name].extend(load.latencies)
    rows = []
    for name in setups:
        ordered = sorted(latencies[name])
        p50 = ordered[len(ordered) // 2] * 1000
        p99 = ordered[int(len(ordered) * 0.99)] * 1000
        rows.append(f"| {name} | {statistics.median(rates[name]):.0f} | {p50:.2f} | {p99:.2f} |")
    return rows


def scaling_tables(quick: bool, rounds: int) -> list[tuple[str, str, list[str], int]]:
    reads = 300 if quick else 1000
    seconds = 1.0 if quick else 3.0
    with replicated() as (primary, standby):
        print(f"\nOne lone read, in-process, {reads} per round:\n{ROUTING_HEADER}", flush=True)
        routing = routing_rows(primary, standby, rounds, reads)
        print("\n".join(routing), flush=True)
        print(
            f"\nGET by primary key under uvicorn (1 worker), {CONCURRENCY} keep-alive "
            f"connections, {seconds:g} s per setup and round:\n{HTTP_HEADER}",
            flush=True,
        )
        http = http_rows(primary, standby, rounds, seconds)
        print("\n".join(http), flush=True)
        print(f"\nThe routing decision alone, best of 5:\n{DECISION_HEADER}", flush=True)
        decision = decision_rows(primary, standby)
        print("\n".join(decision), flush=True)
    return [
        ("scaling-decision", DECISION_HEADER, decision, 5),
        ("scaling-routing", ROUTING_HEADER, routing, rounds),
        ("scaling-http", HTTP_HEADER, http, rounds),
    ]
