"""Per-test isolation: every session of a ``Database`` joins one outer transaction.

The pytest plugin (``duo_orm_pytest``) opens one real connection per test and
begins a transaction on it. While that is in place, every session duo-orm
creates (statement mode, ``db.transaction()``, request units of work, sync and
async) binds to that connection with ``join_transaction_mode="create_savepoint"``:
its BEGIN becomes a SAVEPOINT, its COMMIT a RELEASE, its rollback a ROLLBACK TO.
Ending the isolation rolls the outer transaction back, so nothing a test or the
app under test committed survives it.

Async sessions run on the same sync DBAPI connection (through
``AsyncSession``'s greenlet bridge, which runs sync driver calls as they are):
one connection is the only way a sync test, an async test and the app's event
loop can all see one uncommitted transaction.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, RootTransaction
from sqlalchemy.orm import Session

from .session import DuoSession

if TYPE_CHECKING:
    from .database import Database

__all__ = ["Isolation"]


class Isolation:
    """One connection and its outer transaction, shared by every session of ``db``."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.connection: Connection = db._engines.isolated_engine().connect()
        self.transaction: RootTransaction = self.connection.begin()
        self.session_class: type[Session] = _joining(self.connection)

    def end(self) -> None:
        """Roll back everything the test did and give the connection back."""
        try:
            if self.transaction.is_active:
                self.transaction.rollback()
        finally:
            self.connection.close()


def _joining(connection: Connection) -> type[Session]:
    """A session class that always binds to ``connection`` and joins its transaction.

    ``async_sessionmaker`` builds its sync session with ``bind=None``; this class
    puts the test's connection in its place.
    """

    class JoiningSession(DuoSession):
        def __init__(self, bind: Any = None, **options: Any) -> None:
            super().__init__(bind=connection, join_transaction_mode="create_savepoint", **options)

    return JoiningSession
