"""``Depends(unit_of_work)``: the request transaction's session, for raw statements.

Every request already runs in its unit of work (``DuoORM(app, db)``); the 0.1 style
of declaring the dependency keeps working, and on an excluded or opted-out route it
opens the transaction explicitly.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from duo_orm import Database
from duo_orm.web import open_unit, request_state
from duo_orm.web.routes import runs_in_thread


async def unit_of_work(request: Request) -> AsyncSession:
    """Every ORM call of this request (``async def`` or ``def``) joins one transaction.

    It commits just before the response starts when the status is below 400,
    and rolls back otherwise. The session is returned for the rare raw statement.
    """
    return await _session(request, None)


RequestSession = Annotated[AsyncSession, Depends(unit_of_work)]
"""A handler parameter typed ``AsyncSession``: the request transaction's session."""


async def _session(request: Request, db: Database | None) -> AsyncSession:
    endpoint = request.scope.get("endpoint")
    if endpoint is not None and runs_in_thread(endpoint):  # before it takes its thread
        await request_state(request.scope).hold_thread_gates()
    return await open_unit(request.scope, db)


def unit_of_work_for(db: Database) -> Callable[[Request], Awaitable[AsyncSession]]:
    """``unit_of_work`` for one of several databases served by the app."""

    async def dependency(request: Request) -> AsyncSession:
        return await _session(request, db)

    return dependency
