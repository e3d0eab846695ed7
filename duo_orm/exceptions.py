"""The typed errors every duo-orm call raises.

Driver and SQLAlchemy errors never escape an ORM call unwrapped: they are
translated into one of these, with the original kept as ``__cause__``, so that
application code (and the web adapters) can branch on a small, stable set.
"""

from __future__ import annotations

from typing import Any, Literal

IntegrityKind = Literal["unique", "foreign_key", "not_null", "check", "other"]


class DuoOrmError(Exception):
    """Base class of every error duo-orm raises."""


class ConfigurationError(DuoOrmError):
    """The database or a model is set up wrongly (bad URL, missing driver, ...)."""


class ObjectNotFoundError(DuoOrmError, LookupError):
    """A row that was required does not exist."""


class MultipleObjectsFoundError(DuoOrmError, LookupError):
    """Exactly one row was required but several matched."""


class InvalidQueryError(DuoOrmError):
    """A query was built from input that names nothing valid (e.g. a bad sort field)."""


class UnsupportedOperationError(InvalidQueryError):
    """The call cannot be made in this situation (e.g. async call on a sync-only database)."""


class ValidationError(DuoOrmError, ValueError):
    """Data was refused before it reached the database.

    ``field`` names the offending field when there is one; ``detail`` carries
    anything structured the caller wants to hand on to an API client.
    """

    def __init__(self, message: str, field: str | None = None, detail: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.detail = detail

    def __repr__(self) -> str:
        return f"ValidationError({self.message!r}, field={self.field!r})"


class IntegrityError(DuoOrmError):
    """The database refused a write because it breaks a constraint.

    ``kind`` is classified from the SQLSTATE or the driver's error code, never
    from message text; ``constraint`` is the constraint name when the driver
    reports it.
    """

    def __init__(
        self, message: str, kind: IntegrityKind = "other", constraint: str | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.kind: IntegrityKind = kind
        self.constraint = constraint


class DatabaseError(DuoOrmError):
    """Any other failure reported by the database or its driver."""


class TransactionConflictError(DatabaseError):
    """The transaction lost a race (serialization failure, deadlock, lock timeout).

    Retrying the whole transaction is expected to succeed.
    """

    retryable = True


class DatabaseUnavailableError(DatabaseError):
    """The database cannot be reached, or the connection was lost mid-call.

    The server is down, restarting, refusing connections, or dropped this
    connection (SQLSTATE class 08, 57P01-57P03, a disconnect the driver
    reported). Nothing was committed by the failed call; retrying once the
    server is back is expected to succeed, and pooled connections recover by
    themselves (no restart needed).
    """

    retryable = True


class DatabaseBusyError(TransactionConflictError, DatabaseUnavailableError):
    """A wait for a lock or a connection ran out of time.

    SQLite's write lock stayed taken past the busy timeout ("database is
    locked"), a server lock wait timed out (PostgreSQL 55P03, MySQL 1205), or no
    pooled connection came free within the pool's timeout. The database is
    fine, only overloaded for the moment: nothing was committed by the failed
    call, and the same transaction is expected to succeed on retry (503 with
    ``Retry-After`` in the web adapters).
    """


__all__ = [
    "ConfigurationError",
    "DatabaseBusyError",
    "DatabaseError",
    "DatabaseUnavailableError",
    "DuoOrmError",
    "IntegrityError",
    "IntegrityKind",
    "InvalidQueryError",
    "MultipleObjectsFoundError",
    "ObjectNotFoundError",
    "TransactionConflictError",
    "UnsupportedOperationError",
    "ValidationError",
]
