"""One request contract in every adapter, with no per-route dependency anywhere:
every request a lazy unit of work, the opt-outs, a forgotten await, and a response
replaced after a failed commit. Per framework, ``async def`` and ``def`` handlers,
every database backend."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import httpx
import pytest

from duo_orm import Database

from . import contract_apps
from .conftest import FRAMEWORKS
from .scenario import Handlers, Shop, define_shop, lifespan_running

pytestmark = pytest.mark.anyio

CONTRACT_APPS = Path(contract_apps.__file__).name


class Client:
    def __init__(self, shop: Shop, client: httpx.AsyncClient, handlers: Handlers) -> None:
        self.shop, self.http, self.handlers = shop, client, handlers

    def names(self) -> list[str]:
        from sqlalchemy import select

        with self.shop.db.sync_standalone_session() as session:
            return sorted(session.scalars(select(self.shop.Item.name)))

    def checked_out(self) -> int:
        pool = self.shop.db.async_engine.sync_engine.pool
        return int(getattr(pool, "checkedout", lambda: 0)())


@pytest.fixture
async def client(url: str, framework: str, handlers: Handlers) -> AsyncIterator[Client]:
    db = Database(url)
    shop = define_shop(db)
    await db.create_all()
    app = contract_apps.make_app(framework, shop, handlers)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with (
        lifespan_running(app),
        httpx.AsyncClient(transport=transport, base_url="http://test") as http,
    ):
        yield Client(shop, http, handlers)
    await db.disconnect()


async def test_a_route_without_a_dependency_that_answers_400_keeps_nothing(
    client: Client,
) -> None:
    response = await client.http.post("/plain/then-http-error", json={"name": "x"})
    assert response.status_code == 400
    assert client.names() == []


async def test_statement_mode_route_keeps_its_writes_whatever_it_answers(client: Client) -> None:
    response = await client.http.post("/optout/then-http-error", json={"name": "kept"})
    assert response.status_code == 400
    assert client.names() == ["kept"]


async def test_excluded_paths_keep_their_writes_whatever_they_answer(client: Client) -> None:
    response = await client.http.post("/health/then-http-error", json={"name": "kept"})
    assert response.status_code == 400
    assert client.names() == ["kept"]


async def test_read_only_paths_never_commit(client: Client) -> None:
    response = await client.http.post("/reports/create", json={"name": "report"})
    assert response.status_code == 200
    assert client.names() == []


async def test_a_forgotten_await_fails_the_request_and_names_the_call_site(
    client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger="duo_orm"):
        response = await client.http.post("/plain/unawaited", json={"name": "lost"})
    if client.handlers == "sync":  # a sync call needs no await: the route works
        assert response.status_code == 200
        assert client.names() == ["lost", "lost-first"]
        assert not [r for r in caplog.records if "never awaited" in r.getMessage()]
        return
    assert response.status_code == 500
    assert "Traceback" not in response.text and CONTRACT_APPS not in response.text
    assert client.names() == []  # not even the awaited write before it
    [record] = [r for r in caplog.records if "never awaited" in r.getMessage()]
    assert record.levelno == logging.ERROR
    assert ".create()" in record.getMessage() and f"{CONTRACT_APPS}:" in record.getMessage()
    assert client.checked_out() == 0


async def test_a_forgotten_await_after_other_calls_fails_a_statement_mode_route(
    client: Client,
) -> None:
    response = await client.http.post("/optout/unawaited", json={"name": "lost"})
    if client.handlers == "sync":
        assert response.status_code == 200
        assert client.names() == ["lost", "lost-first"]
        return
    assert response.status_code == 500
    assert client.names() == ["lost-first"]  # statement mode: the awaited call committed


async def test_a_background_task_of_a_request_that_made_no_orm_call_keeps_its_write(
    client: Client,
) -> None:
    response = await client.http.post("/plain/background-only", json={"name": "later"})
    assert response.status_code == 200
    for _ in range(200):
        if client.shop.background:
            break
        await anyio.sleep(0.01)
    assert client.shop.background == [("later", False)]  # statement mode, committed
    assert client.names() == ["later"]


async def test_a_failed_commit_is_logged_once_and_stops_the_body_and_task_it_replaced(
    client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG, logger="duo_orm"):
        response = await client.http.post("/plain/stream-orphan", json={"name": "orphan"})
    assert response.status_code == 409
    [record] = [r for r in caplog.records if r.name.startswith("duo_orm")]
    assert record.levelno == logging.WARNING and "refused at COMMIT" in record.getMessage()
    assert "count=" not in response.text
    assert client.names() == []
    assert client.shop.background == []  # neither the body's query nor the task ran
    assert client.checked_out() == 0


def test_the_event_loop_shuts_down_promptly_after_a_replaced_streaming_response(
    url: str,
) -> None:
    """The whole app life in a fresh ``asyncio.run``: a cancelled or abandoned database
    task would keep the loop from closing."""
    failures: list[BaseException] = []

    async def life(framework: str, handlers: Handlers) -> None:
        db = Database(url)
        shop = define_shop(db)
        await db.drop_all()
        await db.create_all()
        app = contract_apps.make_app(framework, shop, handlers)
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with (
            lifespan_running(app),
            httpx.AsyncClient(transport=transport, base_url="http://test") as http,
        ):
            for n in range(3):
                response = await http.post("/plain/stream-orphan", json={"name": f"o{n}"})
                assert response.status_code == 409
        await db.disconnect()

    def run_all() -> None:
        try:
            for framework in FRAMEWORKS:
                for handlers in ("async", "sync"):
                    asyncio.run(life(framework, handlers))  # type: ignore[arg-type]
        except BaseException as exc:  # reported to the test thread
            failures.append(exc)

    runner = threading.Thread(target=run_all, daemon=True)
    runner.start()
    runner.join(timeout=120)
    assert not runner.is_alive(), "an event loop did not shut down"
    assert failures == []
