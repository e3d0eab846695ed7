"""Engines for an app's lifetime: connect (and check) at startup, dispose at shutdown."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from ..database import Database

AppT = TypeVar("AppT")
Lifespan = Callable[[AppT], AbstractAsyncContextManager[Any]]


@asynccontextmanager
async def databases_connected(databases: Sequence[Database]) -> AsyncIterator[None]:
    """A bad URL or an unreachable server fails startup here, with a clear message."""
    connected: list[Database] = []
    try:
        for db in databases:
            await db.connect()
            connected.append(db)
        yield
    finally:
        for db in reversed(connected):
            await db.disconnect()


def compose_lifespan(
    databases: Sequence[Database], inner: Lifespan[AppT] | None = None
) -> Lifespan[AppT]:
    """A Starlette-style ``lifespan(app)``: databases first, then the user's own lifespan."""

    @asynccontextmanager
    async def lifespan(app: AppT) -> AsyncIterator[Any]:
        async with databases_connected(databases):
            if inner is None:
                yield None
            else:
                async with inner(app) as state:
                    yield state

    return lifespan
