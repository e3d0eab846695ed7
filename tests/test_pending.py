"""A forgotten ``await`` on an ORM call is reported, never silent; a taken call is not."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest

from duo_orm import Database

from .models import Models

HERE = Path(__file__).name


def never_awaited(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if "never awaited" in r.getMessage()]


def test_a_forgotten_await_is_logged_at_error_with_its_call_site(
    m: Models, caplog: pytest.LogCaptureFixture
) -> None:
    async def script() -> None:
        m.User.create(email="a@x.io", name="A")  # the forgotten await
        await asyncio.sleep(0)

    with caplog.at_level(logging.ERROR, logger="duo_orm"):
        asyncio.run(script())
    [message] = never_awaited(caplog)
    assert ".create()" in message and f"{HERE}:" in message
    assert m.User.count() == 0


def test_a_forgotten_await_on_create_all_is_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    db = Database(f"sqlite:///{tmp_path / 'ddl.db'}")

    async def lifespan_without_await() -> None:
        db.create_all()

    with caplog.at_level(logging.ERROR, logger="duo_orm"):
        asyncio.run(lifespan_without_await())
    [message] = never_awaited(caplog)
    assert "create_all()" in message and f"{HERE}:" in message


def test_tasks_and_gather_take_the_call(m: Models, caplog: pytest.LogCaptureFixture) -> None:
    async def script() -> list[object]:
        task = asyncio.create_task(m.User.create(email="t@x.io", name="T"))
        await task
        return list(await asyncio.gather(m.User.count(), m.User.get(task.result().id)))

    with caplog.at_level(logging.ERROR, logger="duo_orm"):
        count, user = asyncio.run(script())
    assert count == 1 and getattr(user, "name", None) == "T"
    assert never_awaited(caplog) == []


def test_sync_calls_return_values_and_log_nothing(
    m: Models, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger="duo_orm"):
        user = m.User.create(email="s@x.io", name="S")
        assert m.User.get(user.id).name == "S"
    assert never_awaited(caplog) == []
