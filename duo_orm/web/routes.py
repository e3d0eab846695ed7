"""Per-route choices an app makes with a decorator, read when a request first needs them."""

from __future__ import annotations

import inspect
from collections.abc import Callable, MutableMapping
from typing import Any, TypeVar

from .asgi import ASGIApp, Receive, Scope, Send
from .unit_of_work import SCOPE_KEY, RequestState

F = TypeVar("F", bound=Callable[..., Any])
G = TypeVar("G", bound=Callable[..., Any])

STATEMENT_MODE = "__duo_orm_statement_mode__"
GATED = "__duo_orm_gated__"


def statement_mode(handler: F) -> F:
    """Run this route without the request transaction: each ORM call commits on its own.

    For routes that must keep what they wrote even when they answer with an
    error (an audit trail, a login-attempt counter), or that stream long and
    should not hold a transaction open. The request still runs through the
    middleware; only its ORM calls leave the unit of work.
    """
    setattr(handler, STATEMENT_MODE, True)
    return handler


def endpoint_opted_out(scope: MutableMapping[str, Any]) -> bool:
    """Starlette and FastAPI routing put the matched endpoint in the scope."""
    return getattr(scope.get("endpoint"), STATEMENT_MODE, False) is True


def runs_in_thread(endpoint: Any) -> bool:
    """Whether a framework would run ``endpoint`` in a worker thread (it is not async)."""
    call = endpoint if inspect.isroutine(endpoint) else getattr(endpoint, "__call__", None)  # noqa: B004
    return not inspect.iscoroutinefunction(call)


async def hold_gates_for(scope: MutableMapping[str, Any]) -> None:
    """Before a threaded handler runs: wait for a place at the transaction gate, if the
    request has a transaction to hold (see ``transaction_gate``)."""
    state = scope.get(SCOPE_KEY)
    if isinstance(state, RequestState) and state.windowed and not state.opted_out():
        await state.hold_thread_gates()


def gate_threaded(app: ASGIApp) -> ASGIApp:
    """Wrap a route whose handler runs in a worker thread so that it waits for the gate
    in the event loop, before the thread is taken."""

    async def gated(scope: Scope, receive: Receive, send: Send) -> None:
        await hold_gates_for(scope)
        await app(scope, receive, send)

    return mark_gated(gated)


def mark_gated(wrapper: G) -> G:
    setattr(wrapper, GATED, True)
    return wrapper


def is_gated(app: Any) -> bool:
    return getattr(app, GATED, False) is True
