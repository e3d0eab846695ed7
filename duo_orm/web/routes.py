"""Per-route choices an app makes with a decorator, read when a request first needs them."""

from __future__ import annotations

from collections.abc import Callable, MutableMapping
from typing import Any, TypeVar

from .asgi import ASGIApp, Receive, Scope, Send
from .unit_of_work import SCOPE_KEY, RequestState

F = TypeVar("F", bound=Callable[..., Any])

STATEMENT_MODE = "__duo_orm_statement_mode__"


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


def gate_threaded(app: ASGIApp) -> ASGIApp:
    """Wrap a route whose handler runs in a worker thread: wait for a place at the
    database's transaction gate before the thread is taken (see ``transaction_gate``)."""

    async def gated(scope: Scope, receive: Receive, send: Send) -> None:
        state = scope.get(SCOPE_KEY)
        if isinstance(state, RequestState) and state.deferred and not state.opted_out():
            await state.hold_thread_gates()
        await app(scope, receive, send)

    setattr(gated, "__duo_orm_gated__", True)  # noqa: B010
    return gated


def is_gated(app: Any) -> bool:
    return getattr(app, "__duo_orm_gated__", False) is True
