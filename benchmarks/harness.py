"""Timing: every implementation of a scenario runs in the same process, interleaved.

Each round runs every implementation once (in rotating order, so drift hits all
alike); a run reports the median seconds per operation over the rounds and the
ratio to the baseline. Timings are only ever printed, never asserted.
"""

from __future__ import annotations

import asyncio
import gc
import statistics
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

Work = Callable[[], Any]  # one operation; returns None or an awaitable


@dataclass
class Scenario:
    name: str
    ops_per_call: int  # how many operations one call performs (for per-op figures)
    implementations: dict[str, Work]
    baseline: str = "sqlalchemy-orm"
    setup: Callable[[], Any] | None = None  # runs before each round (not timed)
    teardown: Callable[[], Any] | None = None  # runs once after the last round


@dataclass
class Additions:
    """Implementations added to the core scenarios from outside (the peer ORMs).

    They land in the same ``Scenario.implementations`` dicts, so they are measured in the
    same interleaved rounds as duo-orm and the baseline.
    """

    implementations: dict[str, dict[str, Work]] = field(default_factory=dict)  # by scenario key
    # told the ids of the rows a setup just (re)loaded, to load their own objects (not timed)
    loaders: list[Callable[[list[int]], Any]] = field(default_factory=list)
    # databases of their own (SQLAlchemy URLs) that every setup fills with the same rows
    urls: list[str] = field(default_factory=list)

    def add(self, key: str, name: str, work: Work) -> None:
        self.implementations.setdefault(key, {})[name] = work

    def merged(self, key: str, chosen: dict[str, Work]) -> dict[str, Work]:
        return {**chosen, **self.implementations.get(key, {})}


@dataclass
class Result:
    scenario: str
    mode: str
    database: str
    medians: dict[str, float] = field(default_factory=dict)  # seconds per operation
    baseline: str = "sqlalchemy-orm"
    extra: dict[str, str] = field(default_factory=dict)

    def ratio(self, name: str) -> float:
        return self.medians[name] / self.medians[self.baseline]


def measure(
    scenario: Scenario, rounds: int, loop: asyncio.AbstractEventLoop | None
) -> dict[str, float]:
    samples: dict[str, list[float]] = {name: [] for name in scenario.implementations}
    names = list(scenario.implementations)
    for round_number in range(rounds):
        for name in rotated(names, round_number):
            if scenario.setup is not None:
                _call(scenario.setup, loop)
            gc.collect()
            work = scenario.implementations[name]
            started = time.perf_counter()
            _call(work, loop)
            samples[name].append((time.perf_counter() - started) / scenario.ops_per_call)
    if scenario.teardown is not None:
        _call(scenario.teardown, loop)
    return {name: statistics.median(values) for name, values in samples.items()}


def rotated(names: list[str], round_number: int) -> list[str]:
    """This round's order: each round starts one further along, so drift hits all alike."""
    shift = round_number % len(names)
    return names[shift:] + names[:shift]


def _call(work: Work, loop: asyncio.AbstractEventLoop | None) -> Any:
    result = work()
    if loop is not None and isinstance(result, Awaitable):
        return loop.run_until_complete(_await(result))
    return result


async def _await(awaitable: Awaitable[Any]) -> Any:
    return await awaitable
