"""The pure-ASGI part every adapter shares: settle the unit of work at response start.

``UnitOfWorkMiddleware`` puts a :class:`RequestState` in each HTTP scope and
watches the messages the app sends. On ``http.response.start`` it commits (2xx
and 3xx) or rolls back (anything else) BEFORE passing the message on, so a
client never receives a success for a write that did not commit; when the
commit fails it sends an error response instead. An exception escaping the
app, a cancelled request, or a client that has gone away rolls back. Scopes
other than HTTP pass through untouched.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from typing import TYPE_CHECKING, Any

import anyio

from .errors import ErrorInfo, log_client_gone
from .unit_of_work import SAFE_METHODS, SCOPE_KEY, RequestState, RouteCheck

if TYPE_CHECKING:
    from ..database import Database

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

# status, headers, body: an error response ready to send
RenderedError = tuple[int, list[tuple[bytes, bytes]], bytes]
ErrorRenderer = Callable[[ErrorInfo], RenderedError]


class ResponseReplaced(Exception):
    """Raised from ``send`` once the middleware has answered in the app's place.

    The app's own response (a streaming body included) must not go on running
    database work after its failed commit was reported: raising at its next
    ``send`` stops it at a point where it is waiting, not halfway through a
    statement. The middleware swallows it.
    """


class UnitOfWorkMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        *,
        databases: Sequence[Database],
        render_error: ErrorRenderer,
        exclude_paths: Sequence[str] = (),
        read_only_paths: Sequence[str] = (),
        route_opted_out: RouteCheck | None = None,
        client_gone_errors: tuple[type[BaseException], ...] = (),
    ) -> None:
        """Every HTTP request gets a lazy transaction per database (no connection until
        the first statement). ``exclude_paths`` get none (their calls run in statement
        mode unless a handler asks for the session explicitly), ``read_only_paths`` always
        roll back, and ``route_opted_out(scope)`` lets an adapter decline it for a matched
        route.
        ``client_gone_errors`` are the framework's "the client hung up" exceptions: an
        INFO line, not a traceback."""
        self.app = app
        self.client_gone_errors = client_gone_errors
        self.databases = tuple(databases)
        self.render_error = render_error
        self.exclude_paths = tuple(exclude_paths)
        self.read_only_paths = tuple(read_only_paths)
        self.route_opted_out = route_opted_out

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        read_only = excluded = False
        if self.exclude_paths or self.read_only_paths:
            path = scope.get("path", "")
            read_only = _matches(path, self.read_only_paths)
            excluded = _matches(path, self.exclude_paths)
        state = RequestState(
            self.databases,
            read_only=read_only,
            # SQLite: no write lock taken at BEGIN
            access="read" if read_only or scope.get("method") in SAFE_METHODS else "write",
            scope=None if excluded or self.route_opted_out is None else scope,
            route_opted_out=self.route_opted_out,
        )
        scope[SCOPE_KEY] = state
        if not excluded:
            state.open_window()
        request_read = False
        replaced = False

        async def watched_receive() -> Message:
            nonlocal request_read
            message = await receive()
            if message["type"] == "http.disconnect":
                state.client_gone = True
            elif message["type"] == "http.request" and not message.get("more_body", False):
                request_read = True
            return message

        async def settling_send(message: Message) -> None:
            nonlocal replaced
            if replaced:
                raise ResponseReplaced
            if message["type"] == "http.response.start":
                if not state.needs_settling():
                    # Nothing opened: close the window, so a background task or a
                    # streaming body runs in statement mode instead of opening the
                    # request transaction nobody would commit.
                    state.close()
                else:
                    if request_read and not state.client_gone:
                        await _notice_disconnect(watched_receive)
                    failure = await state.finish(int(message["status"]))
                    if failure is not None:
                        replaced = True
                        status, headers, body = self.render_error(failure)
                        await send(
                            {"type": "http.response.start", "status": status, "headers": headers}
                        )
                        await send({"type": "http.response.body", "body": body})
                        raise ResponseReplaced
            await send(message)

        try:
            await self.app(scope, watched_receive, settling_send)
        except self.client_gone_errors:
            log_client_gone(scope)  # nobody is left to answer; nothing commits (below)
        except Exception as exc:
            if not (replaced and _only_replaced(exc)):
                raise
        finally:
            # An exception, a cancellation, or no response at all: nothing commits.
            if not state.finished:
                if state.needs_settling():
                    with anyio.CancelScope(shield=True):
                        await state.finish(None)
                else:  # nothing to roll back; no await, so no unit can open meanwhile
                    state.close()


def _only_replaced(exc: BaseException | None) -> bool:
    """``ResponseReplaced``, possibly wrapped by task groups (exception groups) or by a
    framework that re-raises errors after response start as its own (Litestar)."""
    if exc is None:
        return False
    if isinstance(exc, ResponseReplaced):
        return True
    inner = getattr(exc, "exceptions", None)
    if isinstance(inner, tuple) and inner:
        return all(_only_replaced(e) for e in inner)
    return _only_replaced(exc.__cause__)


def _matches(path: str, prefixes: Sequence[str]) -> bool:
    return any(path == p or path.startswith(p.rstrip("/") + "/") for p in prefixes)


async def _notice_disconnect(receive: Receive) -> None:
    """Pick up an ``http.disconnect`` the server already has, without waiting for one.
    asyncio's own timeout: anyio's cancel scope formats the task's repr when it
    cancels, which made this cost 36 µs per write request instead of 10."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(0):
            await receive()
