"""``DateTime(timezone=True)`` that returns aware datetimes on every database.

PostgreSQL keeps the offset itself; SQLite has no datetime type and SQLAlchemy
hands back naive values there. This type stores aware values as UTC on such
databases and marks them UTC again when read, so code sees the same values
on every backend.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import types as sa_types
from sqlalchemy.engine import Dialect

# Databases whose datetime columns cannot hold an offset.
NAIVE_DIALECTS = frozenset({"sqlite", "mysql", "mariadb"})


class DateTime(sa_types.TypeDecorator[dt.datetime]):
    impl = sa_types.DateTime
    cache_ok = True

    def __init__(self, timezone: bool = False) -> None:
        super().__init__(timezone=timezone)
        self.timezone = timezone

    @property
    def python_type(self) -> type[dt.datetime]:
        return dt.datetime

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        if (
            self.timezone
            and isinstance(value, dt.datetime)
            and value.tzinfo is not None
            and dialect.name in NAIVE_DIALECTS
        ):
            return value.astimezone(dt.UTC).replace(tzinfo=None)
        return value

    def process_result_value(self, value: Any, dialect: Dialect) -> Any:
        if (
            self.timezone
            and isinstance(value, dt.datetime)
            and value.tzinfo is None
            and dialect.name in NAIVE_DIALECTS
        ):
            return value.replace(tzinfo=dt.UTC)
        return value
