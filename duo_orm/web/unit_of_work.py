"""One HTTP request's unit of work, shared by every adapter.

A request gets a ``RequestState`` in its ASGI scope. Handlers that want the
request transaction (a FastAPI dependency, the Starlette middleware, the
Litestar plugin) open a ``db.transaction()`` for it with :func:`open_unit`;
no connection is taken until the first statement. The adapter then calls
:meth:`RequestState.finish` with the response status just before the response
starts: below 400 commits, anything else rolls back, and a failed commit comes
back as an :class:`ErrorInfo` to send instead of the original response.
"""

from __future__ import annotations

from collections.abc import MutableMapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import anyio
from sqlalchemy.ext.asyncio import AsyncSession

from ..exceptions import ConfigurationError
from .errors import ErrorInfo, classify, internal_error

if TYPE_CHECKING:
    from ..database import Database
    from ..transaction import TransactionBlock

SCOPE_KEY = "duo_orm"


class _Rollback(Exception):
    """Passed to a transaction block's exit to make it roll back."""


@dataclass
class Unit:
    db: Database
    block: TransactionBlock
    session: AsyncSession


@dataclass
class RequestState:
    """What one request opened, and whether it has been settled."""

    databases: Sequence[Database]
    units: list[Unit] = field(default_factory=list)
    finished: bool = False
    client_gone: bool = False

    def database(self, db: Database | None) -> Database:
        if db is not None:
            return db
        if len(self.databases) != 1:
            raise ConfigurationError(
                "This app serves several databases; name the one this unit of work is for."
            )
        return self.databases[0]

    async def finish(self, status: int | None) -> ErrorInfo | None:
        """Commit every open unit for a status below 400, else roll back. Runs once."""
        if self.finished:
            return None
        self.finished = True
        commit = status is not None and status < 400 and not self.client_gone
        failure: ErrorInfo | None = None
        for unit in self.units:
            if commit and failure is None:
                try:
                    await unit.block.__aexit__(None, None, None)
                except Exception as exc:  # the commit failed: the response must say so
                    failure = classify(exc) or internal_error()
                continue
            with anyio.CancelScope(shield=True):
                await unit.block.__aexit__(_Rollback, _Rollback(), None)
        return failure


def request_state(scope: MutableMapping[str, Any]) -> RequestState:
    state = scope.get(SCOPE_KEY)
    if not isinstance(state, RequestState):
        raise ConfigurationError(
            "No duo-orm middleware saw this request, so nothing would commit its "
            "transaction at the right moment. Install the adapter on the app "
            "(FastAPI/Starlette: DuoORM(app, db); Litestar: DuoORMPlugin(db))."
        )
    return state


async def open_unit(scope: MutableMapping[str, Any], db: Database | None = None) -> Unit:
    """The request's transaction on ``db``: opened on first request, reused after that."""
    state = request_state(scope)
    database = state.database(db)
    for unit in state.units:
        if unit.db is database:
            return unit
    if state.finished:
        raise ConfigurationError("The response has started; the request transaction is over.")
    block = database.transaction()
    session = await block.__aenter__()
    unit = Unit(database, block, session)
    state.units.append(unit)
    return unit
