"""``db.sync_engine``, ``db.async_engine`` and the session factories: plain SQLAlchemy on
duo-orm's engines, for raw SQL, pandas, Alembic and pool inspection."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, insert, select, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.orm import Session, sessionmaker

from duo_orm import ConfigurationError, Database, UnsupportedOperationError, ValidationError

from .models import Models


def test_hand_written_sqlalchemy_through_the_sync_engine_and_factory(m: Models) -> None:
    db, User = m.db, m.User
    engine, factory = db.sync_engine, db.sync_session_factory
    assert isinstance(engine, Engine) and engine is db.sync_engine  # one engine, reused
    assert isinstance(factory, sessionmaker)
    with factory() as session:
        assert isinstance(session, Session) and session.get_bind() is engine
        session.add(User(email="orm@x.io", name="orm"))
        session.execute(insert(m.Customer).values(name="core"))
        session.commit()
        made = session.scalars(select(User).where(User.email == "orm@x.io")).one()
    assert made.name == "orm"  # expire_on_commit=False: still readable after commit
    assert made.created_at is not None  # duo-orm's session: the model hooks ran
    with factory() as session:
        session.add(User(email="no-at-sign", name="bad"))
        with pytest.raises(ValidationError):
            session.flush()
    with engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM customers")).scalar_one() == 1
    assert User.count() == 1 and m.Customer.count() == 1  # the ORM sees what they wrote


def test_hand_written_sqlalchemy_through_the_async_engine_and_factory(m: Models) -> None:
    db, User = m.db, m.User

    async def main() -> tuple[int, int]:
        engine, factory = db.async_engine, db.async_session_factory
        assert isinstance(engine, AsyncEngine) and engine is db.async_engine
        assert isinstance(factory, async_sessionmaker)
        async with factory() as session:
            assert isinstance(session, AsyncSession) and session.bind is engine
            session.add(User(email="orm@x.io", name="orm"))
            await session.execute(insert(m.Customer).values(name="core"))
            await session.commit()
            made = (await session.scalars(select(User).where(User.email == "orm@x.io"))).one()
            assert made.created_at is not None  # the model hooks ran
        async with engine.connect() as connection:
            raw = await connection.execute(select(func.count()).select_from(m.Customer))
            customers = raw.scalar_one()
        return customers, await User.count()

    assert asyncio.run(main()) == (1, 1)
    db.disconnect()


def test_async_engine_belongs_to_its_event_loop(m: Models) -> None:
    db = m.db

    async def engine_twice() -> AsyncEngine:
        first = db.async_engine
        assert db.async_engine is first and db.async_session_factory.kw["bind"] is first
        async with first.connect() as connection:
            await connection.execute(text("SELECT 1"))
        return first

    one, two = asyncio.run(engine_twice()), asyncio.run(engine_twice())
    assert one is not two  # a new loop gets a new engine and pool
    with pytest.raises(UnsupportedOperationError, match="event loop"):
        db.async_engine  # noqa: B018 (outside a loop there is no engine to give)
    db.disconnect()


def test_no_async_engine_without_derive_async(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'sync.db'}", derive_async=False)
    assert isinstance(db.sync_engine, Engine)

    async def main() -> None:
        with pytest.raises(ConfigurationError, match="derive_async"):
            db.async_engine  # noqa: B018
        with pytest.raises(ConfigurationError, match="derive_async"):
            db.async_session_factory  # noqa: B018

    asyncio.run(main())
    db.disconnect()


def test_disconnect_gives_new_engines(m: Models) -> None:
    db = m.db
    before = db.sync_engine
    db.disconnect()
    after = db.sync_engine
    assert after is not before and db.sync_session_factory.kw["bind"] is after
    assert m.User.count() == 0
