"""SQLAlchemy's ``greenlet_spawn``, with each greenlet kept for the next call.

Lone statements on an async engine run the pool's checkout, sync code that may
await the driver (to connect, or to ping), once per call. ``greenlet_spawn`` makes
a new greenlet for every call, and making and starting one costs 12-16 µs here,
where switching into one that already exists costs 1.5. ``run_sync`` runs the call
in a greenlet that has finished an earlier one, kept per thread (greenlets cannot
switch across threads).

SQLAlchemy's ``await_`` only asks the greenlet it runs in for its
``__sqlalchemy_greenlet_provider__`` mark and hands the awaitable to its parent
(SQLAlchemy 2.0 and 2.1 alike), which is what ``_Runner`` provides.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, NoReturn, TypeVar, cast

from greenlet import GreenletExit, getcurrent, greenlet

T = TypeVar("T")

# More than one is needed only while a call awaits (a connect, a ping) and another
# task starts one meanwhile; a runner past these is dropped, and freed, when done.
KEPT_PER_THREAD = 8


class _Runner(greenlet):
    """A greenlet SQLAlchemy's ``await_`` may switch out of, serving call after call.

    The call comes in, and its outcome goes out, as attributes: whatever a greenlet
    is started or switched with stays referenced for as long as it runs or waits,
    and a runner waits in its free list for as long as its thread lives.
    """

    __sqlalchemy_greenlet_provider__ = True

    def __init__(self) -> None:
        super().__init__(_serve)
        self.call: tuple[Callable[..., Any], tuple[Any, ...]] | None = None
        self.outcome: tuple[Any, BaseException | None] | None = None

    def take_call(self) -> tuple[Callable[..., Any], tuple[Any, ...]]:
        assert self.call is not None
        call, self.call = self.call, None
        return call


_FINISHED = object()  # switched back when a call is over (anything else is an awaitable)


def _serve() -> NoReturn:
    """A runner's life. No frame of it holds the runner itself, even while a call
    waits: a runner that is dropped (past ``KEPT_PER_THREAD``, or with its thread)
    is then freed, greenlet ending it with ``GreenletExit``."""
    while True:
        _run()
        caller = getcurrent().parent
        assert caller is not None  # run_sync made it this call's parent
        caller.switch(_FINISHED)


def _run() -> None:
    fn, args = _this().take_call()
    outcome: tuple[Any, BaseException | None]
    try:
        outcome = fn(*args), None
    except GreenletExit:  # ending the runner (a suspended one being freed): let it end
        raise
    except BaseException as error:  # the caller's to raise, cancellation included
        outcome = None, error
    _this().outcome = outcome


def _this() -> _Runner:
    return cast(_Runner, getcurrent())


class _Idle(threading.local):
    def __init__(self) -> None:
        self.runners: list[_Runner] = []


_idle = _Idle()


async def run_sync(fn: Callable[..., T], *args: Any) -> T:
    """``fn(*args)`` where SQLAlchemy's ``await_`` may await the driver, as
    ``greenlet_spawn(fn, *args)`` runs it: in the caller's context, an exception
    raised inside it coming out of this call."""
    idle = _idle.runners
    runner = idle.pop() if idle else _Runner()
    here = getcurrent()
    runner.parent = here
    runner.gr_context = here.gr_context  # context variables set inside stay set
    runner.call = (fn, args)
    step: Any = runner.switch()
    while step is not _FINISHED:
        if runner.dead:  # ended by a GreenletExit, which greenlet hands back as a value
            raise step
        try:
            value = await step
        except BaseException as raised:  # into the call, which may handle it
            step = runner.throw(type(raised), raised, raised.__traceback__)
        else:
            step = runner.switch(value)
    runner.gr_context = None  # hold no request's context while idle
    if len(idle) < KEPT_PER_THREAD:
        idle.append(runner)
    assert runner.outcome is not None
    value, error = runner.outcome
    runner.outcome = None
    if error is not None:
        try:
            raise error
        finally:
            del error  # no cycle through this frame
    return cast(T, value)
