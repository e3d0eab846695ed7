"""Run an ASGI app's lifespan around a block, as a server would (httpx does not)."""

from __future__ import annotations

from collections.abc import AsyncIterator, MutableMapping
from contextlib import asynccontextmanager
from typing import Any

import anyio

__all__ = ["lifespan"]

Message = MutableMapping[str, Any]


@asynccontextmanager
async def lifespan(app: Any) -> AsyncIterator[None]:
    """Send ``lifespan.startup`` before the block and ``lifespan.shutdown`` after it.

    Startup and shutdown failures are raised here, so a broken lifespan fails
    the test instead of leaving the app half started.
    """
    to_app, app_inbox = anyio.create_memory_object_stream[Message](2)
    app_outbox, from_app = anyio.create_memory_object_stream[Message](2)
    scope = {"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}

    async def run_app() -> None:
        async with app_outbox:
            await app(scope, app_inbox.receive, app_outbox.send)

    async def expect(step: str) -> None:
        message = await from_app.receive()
        if message["type"] != f"lifespan.{step}.complete":
            raise RuntimeError(f"App lifespan {step} failed: {message.get('message', message)}")

    async with anyio.create_task_group() as tasks, to_app, from_app:
        tasks.start_soon(run_app)
        await to_app.send({"type": "lifespan.startup"})
        await expect("startup")
        try:
            yield
        finally:
            with anyio.CancelScope(shield=True):
                await to_app.send({"type": "lifespan.shutdown"})
                await expect("shutdown")
