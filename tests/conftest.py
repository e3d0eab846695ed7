"""Each test gets its own Database (SQLite file and shared in-memory) with fresh tables.

Sync tests use ``m``; async tests use ``am``, which builds and disposes the
async engine on the test's own event loop.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from duo_orm import Database

from .models import Models, define_models

BACKENDS = ["sqlite-file", "sqlite-memory"]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(params=BACKENDS)
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite-file":
        return f"sqlite:///{tmp_path / 'test.db'}"
    return "sqlite:///:memory:"


@pytest.fixture
def m(url: str) -> Iterator[Models]:
    db = Database(url)
    models = define_models(db)
    db.create_all()
    yield models
    db.disconnect()


@pytest.fixture
async def am(url: str) -> AsyncIterator[Models]:
    db = Database(url)
    models = define_models(db)
    await db.create_all()
    yield models
    await db.disconnect()


def count_rows(models: Models, table: str) -> int:
    """Rows in ``table``, read on a fresh sync connection (outside any session under test)."""
    from sqlalchemy import text

    with models.db.sync_standalone_session() as session:
        return int(session.execute(text(f"SELECT count(*) FROM {table}")).scalar_one())
