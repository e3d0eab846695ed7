"""The ``unit_of_work`` dependency: put a route, router or app in the request transaction."""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable

from fastapi import Request
from sqlalchemy.ext.asyncio import AsyncSession

from duo_orm import Database
from duo_orm.web import open_unit, request_state


async def unit_of_work(request: Request) -> AsyncSession:
    """Every ORM call of this request (``async def`` or ``def``) joins one transaction.

    It commits just before the response starts when the status is below 400,
    and rolls back otherwise. The session is returned for the rare raw statement.
    """
    return await _session(request, None)


async def _session(request: Request, db: Database | None) -> AsyncSession:
    in_thread = _runs_in_thread(request)
    if in_thread:  # before the endpoint takes its thread (see transaction_gate)
        await request_state(request.scope).hold_thread_gates()
    unit = await open_unit(request.scope, db, gated=in_thread)
    return unit.session


def _runs_in_thread(request: Request) -> bool:
    """FastAPI runs ``def`` endpoints (and their response validation) in its thread pool."""
    endpoint = request.scope.get("endpoint")
    return endpoint is not None and not inspect.iscoroutinefunction(endpoint)


def unit_of_work_for(db: Database) -> Callable[[Request], Awaitable[AsyncSession]]:
    """``unit_of_work`` for one of several databases served by the app."""

    async def dependency(request: Request) -> AsyncSession:
        return await _session(request, db)

    dependency.__duo_orm_unit_of_work__ = True  # type: ignore[attr-defined]
    return dependency
