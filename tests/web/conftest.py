"""Fixtures for the conformance suite: one app per framework x handler flavour x database."""

from __future__ import annotations

import importlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from duo_orm import Database

from .scenario import AppFactory, Handlers, Shop, define_shop, lifespan_running

FRAMEWORKS = ["fastapi", "starlette", "litestar"]


def factory(framework: str) -> AppFactory:
    module = importlib.import_module(f"tests.web.apps_{framework}")
    made: AppFactory = module.make_app
    return made


@dataclass
class Served:
    shop: Shop
    app: Any
    client: httpx.AsyncClient
    handlers: Handlers
    framework: str

    def pool(self) -> Any:
        return self.shop.db.async_engine.sync_engine.pool

    def names(self) -> list[str]:
        from sqlalchemy import select

        with self.shop.db.sync_standalone_session() as session:
            return sorted(session.scalars(select(self.shop.Item.name)))


@pytest.fixture(params=FRAMEWORKS)
def framework(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(params=["async", "sync"])
def handlers(request: pytest.FixtureRequest) -> Handlers:
    value: Handlers = request.param
    return value


@pytest.fixture
async def served(url: str, framework: str, handlers: Handlers) -> AsyncIterator[Served]:
    db = Database(url)
    shop = define_shop(db)
    await db.create_all()
    app = factory(framework)(shop, handlers)
    transport = httpx.ASGITransport(app=app)
    async with (
        lifespan_running(app),
        httpx.AsyncClient(transport=transport, base_url="http://test") as client,
    ):
        yield Served(shop, app, client, handlers, framework)
    await db.disconnect()
