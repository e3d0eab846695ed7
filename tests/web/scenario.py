"""What the conformance apps are made of, whatever the framework.

Each framework's factory (``apps_<framework>.py``) builds the same routes, in
``async def`` and ``def`` flavours, on top of these models and helpers. The
suite in ``test_conformance.py`` only speaks HTTP to the resulting ASGI app.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, Literal

import anyio
from sqlalchemy import ForeignKey

from duo_orm import Database, Mapped, String, ValidationError, mapped_column

Handlers = Literal["async", "sync"]

# What ``GET /items?sort=`` accepts: ref_id is internal, so clients may not sort by it.
SORTABLE = ("id", "name")

# The name that has ``POST /items/background`` leave the database to its background task.
LATER_ONLY = "later-only"


@dataclass
class Shop:
    db: Database
    Item: Any
    # what background tasks saw: (name written, was a transaction ambient?)
    background: list[tuple[str, bool]] = field(default_factory=list)
    # what db.on_commit callbacks saw: (name written, rows of that name committed)
    committed: list[tuple[str, int]] = field(default_factory=list)


def define_shop(db: Database) -> Shop:
    class Item(db.Model):
        __tablename__ = "items"
        id: Mapped[int] = mapped_column(primary_key=True)
        name: Mapped[str] = mapped_column(String(50), unique=True)
        # checked only at COMMIT: the way to make a commit fail on purpose
        ref_id: Mapped[int | None] = mapped_column(
            ForeignKey("items.id", deferrable=True, initially="DEFERRED")
        )

        def validate(self) -> None:
            if self.name == "invalid":
                raise ValidationError("name may not be 'invalid'", field="name")

    return Shop(db, Item)


AppFactory = Callable[[Shop, Handlers], Any]


@asynccontextmanager
async def lifespan_running(app: Any) -> AsyncIterator[None]:
    """Run an ASGI app's lifespan (startup before, shutdown after) like a server does."""
    to_app: Any
    from_app: Any
    to_app, app_inbox = anyio.create_memory_object_stream[dict[str, Any]](10)
    app_outbox, from_app = anyio.create_memory_object_stream[dict[str, Any]](10)

    async def run() -> None:
        async def receive() -> dict[str, Any]:
            return await app_inbox.receive()

        async def send(message: dict[str, Any]) -> None:
            await app_outbox.send(message)

        # After lifespan.startup.failed frameworks re-raise; servers only log it.
        with contextlib.suppress(Exception):
            await app({"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}, receive, send)

    failure: str | None = None
    async with anyio.create_task_group() as tg:
        tg.start_soon(run)
        await to_app.send({"type": "lifespan.startup"})
        started = await from_app.receive()
        if started["type"] != "lifespan.startup.complete":
            failure = str(started.get("message", "lifespan startup failed"))
            tg.cancel_scope.cancel()
        else:
            try:
                yield
            finally:
                await to_app.send({"type": "lifespan.shutdown"})
                await from_app.receive()
    if failure is not None:
        raise RuntimeError(failure)


async def startup_failure(app: Any) -> str:
    """The message a failing lifespan startup reports (empty if it started)."""
    try:
        async with lifespan_running(app):
            return ""
    except RuntimeError as exc:
        return str(exc)


def record_commit(shop: Shop, name: str) -> Callable[[], Awaitable[None]]:
    """An async ``db.on_commit`` callback: notes ``name`` and how many such rows are committed."""

    async def record() -> None:
        shop.committed.append((name, await shop.Item.where(shop.Item.name == name).count()))

    return record


def record_commit_sync(shop: Shop, name: str) -> Callable[[], None]:
    """``record_commit`` for ``def`` handlers: a sync callback (it runs in a worker thread)."""

    def record() -> None:
        shop.committed.append((name, shop.Item.where(shop.Item.name == name).count()))

    return record


def failing_callback() -> None:
    raise RuntimeError("the e-mail server is down")
