"""The constraint naming convention every ``Database``'s metadata starts with.

Alembic's autogenerate (``duo-orm migration create`` and ``check``) can only
see a unique, foreign-key or check constraint go away when it has a name: the
database reports unnamed ones without one, so nothing matches them to the
models. A convention names every constraint the same way on every database,
which also lets a hand-written migration drop one by a name it can predict.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from sqlalchemy import CheckConstraint, Table


def _check_label(constraint: CheckConstraint, table: Table) -> str:
    """The columns a check mentions plus a digest of its SQL (``age_1a2b3c4d``).

    Only unnamed checks get here (an explicit ``name=`` is kept as given), including
    the ones ``Boolean`` and ``Enum`` add; two unnamed checks on one column differ.
    """
    columns = "_".join(column.name for column in constraint.columns)
    digest = hashlib.sha1(str(constraint.sqltext).encode()).hexdigest()[:8]
    return f"{columns}_{digest}" if columns else digest


NAMING_CONVENTION: Mapping[str, Any] = MappingProxyType(
    {
        "pk": "pk_%(table_name)s",
        "ix": "ix_%(column_0_N_label)s",  # one column: SQLAlchemy's own ix_<table>_<column>
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_N_name)s_%(referred_table_name)s",
        "ck": "ck_%(table_name)s_%(check_label)s",
        "check_label": _check_label,
    }
)
"""Names such as ``uq_users_email`` and ``fk_orders_user_id_users``; names longer than
the database allows are shortened by SQLAlchemy with a stable hash."""
