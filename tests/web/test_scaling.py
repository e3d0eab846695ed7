"""The adapters over a real standby (read-only requests read there) and a real PgBouncer."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

import httpx
import pytest
from sqlalchemy.engine import make_url

from duo_orm import Database

from ..replication import Bouncer, Replicated, replicated_database
from .conftest import FRAMEWORKS, factory
from .scenario import Handlers, Shop, define_shop, lifespan_running
from .test_first_write import FLAVOURS, make_app

pytestmark = [pytest.mark.postgres, pytest.mark.anyio]

HANDLERS: list[Handlers] = ["async", "sync"]


@asynccontextmanager
async def serving(
    shop: Shop, framework: str, handlers: Handlers
) -> AsyncIterator[httpx.AsyncClient]:
    app = factory(framework)(shop, handlers)
    async with (
        lifespan_running(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client,
    ):
        yield client
    await shop.db.disconnect()


async def test_read_only_requests_read_on_the_replica_and_survive_its_loss(
    replicated: Replicated,
) -> None:
    with replicated_database(replicated) as pair:
        setup = Database(pair.primary)
        define_shop(setup)
        await setup.create_all()
        await setup.disconnect()
        replicated.wait_replayed()
        async with AsyncExitStack() as stack:
            clients = {
                f"{framework}-{handlers}": await stack.enter_async_context(
                    serving(
                        define_shop(
                            Database(pair.primary, replicas=[pair.standby], max_replica_lag=None)
                        ),
                        framework,
                        handlers,
                    )
                )
                for framework in FRAMEWORKS
                for handlers in HANDLERS
            }
            with replicated.replay_paused():
                for name, client in clients.items():
                    # a POST writes on the primary; a GET reads the standby, which
                    # applies nothing while replay is paused
                    created = await client.post("/items", json={"name": name})
                    assert created.status_code == 201, created.text
                    listed = await client.get("/items")
                    assert listed.status_code == 200
                    assert name not in listed.json()
            replicated.wait_replayed()
            for client in clients.values():
                assert sorted((await client.get("/items")).json()) == sorted(clients)
            replicated.standby.stop()
            try:
                for client in clients.values():
                    listed = await client.get("/items")
                    assert listed.status_code == 200  # served by the primary, no 5xx
                    assert sorted(listed.json()) == sorted(clients)
            finally:
                replicated.standby.start()


async def test_a_request_that_may_write_reads_the_primary_before_its_first_write(
    replicated: Replicated,
) -> None:
    with replicated_database(replicated) as pair:
        setup = Database(pair.primary)
        define_shop(setup)
        await setup.create_all()
        await setup.disconnect()
        replicated.wait_replayed()
        for framework, handlers in FLAVOURS:
            db = Database(pair.primary, replicas=[pair.standby], max_replica_lag=None)
            app = make_app(framework, handlers, define_shop(db))
            async with (
                lifespan_running(app),
                httpx.AsyncClient(
                    transport=httpx.ASGITransport(app=app), base_url="http://t"
                ) as client,
            ):
                with replicated.replay_paused():
                    stale = (await client.get("/reads")).json()["count"]  # the standby's
                    # each flow counts, writes twice, counts again: its first count,
                    # taken before its first write, must be the primary's
                    first = (await client.post("/flow/ok")).json()
                    second = (await client.post("/flow/ok")).json()
                    assert second["before"] == first["before"] + 2, (framework, handlers)
                    assert (await client.get("/reads")).json()["count"] == stale
            await db.disconnect()
            replicated.wait_replayed()


@pytest.mark.parametrize("driver", ["postgresql", "postgresql+asyncpg"])
@pytest.mark.parametrize("framework", FRAMEWORKS)
async def test_every_adapter_works_through_pgbouncer_transaction_pooling(
    replicated: Replicated, bouncer: Bouncer, framework: str, driver: str
) -> None:
    with replicated_database(replicated) as pair:
        through = bouncer.url(replicated.primary.url, str(make_url(pair.primary).database), driver)
        shop = define_shop(Database(through, engine_options={"transaction_pooling": True}))
        await shop.db.create_all()
        async with serving(shop, framework, "async") as client:
            # more requests than the pooler has server connections, each query
            # repeated past psycopg's prepare threshold, some of them at once
            for round_ in range(4):
                responses = await asyncio.gather(
                    *(client.post("/items", json={"name": f"{round_}-{n}"}) for n in range(6)),
                    *(client.get("/items") for _ in range(6)),
                )
                assert [r.status_code for r in responses] == [201] * 6 + [200] * 6
            names = (await client.get("/items")).json()
            assert len(names) == 24
