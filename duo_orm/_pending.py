"""Awaitables that notice when nobody awaits them.

In async code an ORM call returns an awaitable, and a forgotten ``await`` used
to write nothing, silently: the only trace was Python's "never awaited" warning
at garbage collection. Each async call is therefore handed out as a
``PendingCall`` that knows where it was made. Inside a web request the request's
deferred transaction keeps the calls not yet awaited, and the adapter fails the
request at response start if any is left. Anywhere else, a call collected
without ever being awaited is logged at ERROR with its call site.
"""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Coroutine, Generator
from types import FrameType
from typing import Any, TypeVar

T = TypeVar("T")

logger = logging.getLogger("duo_orm")

__all__ = ["CallRegistry", "PendingCall", "pending"]


class CallRegistry:
    """The calls of one unit of work that have been made but not yet awaited."""

    __slots__ = ("_calls",)

    def __init__(self) -> None:
        self._calls: dict[int, PendingCall[Any]] = {}

    def __bool__(self) -> bool:
        return bool(self._calls)

    def add(self, call: PendingCall[Any]) -> None:
        self._calls[id(call)] = call

    def discard(self, call: PendingCall[Any]) -> None:
        self._calls.pop(id(call), None)

    def forgotten(self) -> list[str]:
        """Close every call still waiting for its ``await`` and say where each was made."""
        calls, self._calls = self._calls, {}
        sites = []
        for call in calls.values():
            call.abandon()
            sites.append(call.site)
        return sites


class PendingCall(Coroutine[Any, Any, T]):
    """An ORM call's coroutine, plus where it was made and whether anyone took it.

    It is a full coroutine (``await``, ``asyncio.create_task``, ``gather`` all
    accept it); taking it in any of those ways counts as awaiting it.
    """

    __slots__ = ("_coro", "_registry", "_taken", "site")

    def __init__(
        self, coro: Coroutine[Any, Any, T], site: str, registry: CallRegistry | None
    ) -> None:
        self._coro = coro
        self.site = site
        self._taken = False
        self._registry = registry
        if registry is not None:
            registry.add(self)

    def _take(self) -> None:
        if not self._taken:
            self._taken = True
            if self._registry is not None:
                self._registry.discard(self)
                self._registry = None

    def __await__(self) -> Generator[Any, None, T]:
        self._take()
        return self._coro.__await__()

    def send(self, value: Any) -> Any:
        self._take()
        return self._coro.send(value)

    def throw(self, *args: Any) -> Any:
        self._take()
        return self._coro.throw(*args)

    def close(self) -> None:
        self._take()
        self._coro.close()

    def abandon(self) -> None:
        """Drop the call without running it; its unit of work reports it instead."""
        self._taken = True
        self._registry = None
        self._coro.close()

    def __repr__(self) -> str:
        return f"<PendingCall {self.site}>"

    def __del__(self) -> None:
        if self._taken:
            return
        self._coro.close()  # no RuntimeWarning on top of our own report
        with contextlib.suppress(Exception):  # logging may be torn down at interpreter exit
            logger.error(
                "%s was never awaited, so it did nothing. In async code every ORM call "
                "needs `await`.",
                self.site,
            )


def pending(coro: Coroutine[Any, Any, T], registry: CallRegistry | None) -> PendingCall[T]:
    """Wrap an ORM call's coroutine, noting the caller's file and line."""
    return PendingCall(coro, _call_site(), registry)


def _call_site() -> str:
    """``Model.create() at app/routes.py:42``: the public call, then the caller's line."""
    api = sys._getframe(2)
    frame: FrameType | None = api
    while frame is not None and _is_ours(frame.f_globals.get("__name__", "")):
        api = frame
        frame = frame.f_back
    code = api.f_code
    name = getattr(code, "co_qualname", code.co_name)
    if frame is None:
        return f"{name}()"
    return f"{name}() at {frame.f_code.co_filename}:{frame.f_lineno}"


def _is_ours(module: str) -> bool:
    return module == "duo_orm" or module.startswith("duo_orm.")
