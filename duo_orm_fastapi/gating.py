"""The transaction gate for ``def`` endpoints, taken before FastAPI hands them a thread.

FastAPI runs a ``def`` endpoint, and then its response validation, in its thread
pool: a request that holds a connection needs a second thread to finish. Handlers
waiting in threads for a connection could take every thread and stall the requests
that hold one. Waiting for the gate in the event loop keeps a thread free for each
request inside it (see ``duo_orm.web.unit_of_work.transaction_gate``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.routing import APIRoute

from duo_orm.web.routes import gate_threaded, hold_gates_for, is_gated, mark_gated, runs_in_thread

Lifespan = Callable[[Any], AbstractAsyncContextManager[Any]]
RequestHandler = Callable[[Request], Coroutine[Any, Any, Response]]


def gate_threaded_routes(app: FastAPI) -> None:
    """Wrap every ``def`` endpoint of ``app`` (again harmlessly: wrapped ones are skipped)."""
    _gate_routes(app.router.routes)


def gating_routes_at_startup(inner: Lifespan) -> Lifespan:
    """A lifespan that first wraps the routes added after ``DuoORM(app, db)``."""

    @asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[Any]:
        if isinstance(app, FastAPI):
            gate_threaded_routes(app)
        async with inner(app) as state:
            yield state

    return lifespan


def _gate_routes(routes: Sequence[Any]) -> None:
    for route in routes:
        included = getattr(route, "original_router", None)
        if included is not None:  # newer FastAPI keeps an included router as a branch
            _gate_routes(included.routes)
            continue
        if not isinstance(route, APIRoute) or not runs_in_thread(route.endpoint):
            continue
        if not is_gated(route.app):  # the route as FastAPI serves it directly
            route.app = gate_threaded(route.app)
        if not is_gated(route.get_route_handler):  # and as an included branch rebuilds it
            route.get_route_handler = _gated_handler_factory(route.get_route_handler)  # type: ignore[method-assign]


def _gated_handler_factory(make: Callable[[], RequestHandler]) -> Callable[[], RequestHandler]:
    def make_gated() -> RequestHandler:
        handler = make()

        async def gated(request: Request) -> Response:
            await hold_gates_for(request.scope)
            return await handler(request)

        return gated

    return mark_gated(make_gated)
