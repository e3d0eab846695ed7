"""Driver settings for PostgreSQL behind a transaction-pooling proxy (PgBouncer).

In PgBouncer's ``pool_mode = transaction`` each transaction (and each statement
outside one) may run on another server connection, and PgBouncer before 1.21
does not carry prepared statements across. A driver that prepares named
statements and reuses them later then fails with "prepared statement ... does
not exist" (or "already exists"). ``engine_options={"transaction_pooling": True}``
turns that off per driver:

- psycopg 3 prepares a query after it ran five times (``prepare_threshold``):
  ``None`` never prepares.
- asyncpg caches prepared statements (its own cache and SQLAlchemy's): both
  sizes 0, and every statement SQLAlchemy prepares gets a unique name, so two
  clients sharing a server connection never clash.

A setting the user passed in ``connect_args`` is kept.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from sqlalchemy.engine import URL


def behind_transaction_pooler(url: URL, connect_args: Mapping[str, Any] | None) -> dict[str, Any]:
    """``connect_args`` with the driver's prepared statements made safe for the pooler."""
    merged = dict(connect_args or {})
    driver = url.get_driver_name()
    if driver in ("psycopg", "psycopg_async"):
        merged.setdefault("prepare_threshold", None)
    elif driver == "asyncpg":
        merged.setdefault("statement_cache_size", 0)
        merged.setdefault("prepared_statement_cache_size", 0)
        merged.setdefault("prepared_statement_name_func", _unique_statement_name)
    return merged


def _unique_statement_name() -> str:
    return f"__duo_orm_{uuid.uuid4().hex}__"
