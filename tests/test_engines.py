"""Database construction: derived URLs and drivers, lazy engines, SQLite settings, lifecycle."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from duo_orm import (
    ConfigurationError,
    Database,
    DatabaseBusyError,
    DatabaseError,
    IntegrityError,
    Mapped,
)
from duo_orm import mapped_column as column

from .conftest import count_rows, sqlite_write_lock, tables
from .models import define_models


@pytest.mark.parametrize(
    ("url", "sync", "async_"),
    [
        ("sqlite:///app.db", "sqlite+pysqlite:///app.db", "sqlite+aiosqlite:///app.db"),
        (
            "sqlite:////abs/app.db",
            "sqlite+pysqlite:////abs/app.db",
            "sqlite+aiosqlite:////abs/app.db",
        ),
        (
            "postgresql://u:p@h/db",
            "postgresql+psycopg://u:***@h/db",
            "postgresql+psycopg://u:***@h/db",
        ),
        (
            "postgresql+asyncpg://u@h/db",
            "postgresql+psycopg://u@h/db",
            "postgresql+asyncpg://u@h/db",
        ),
        (
            "postgresql+psycopg2://u@h/db",
            "postgresql+psycopg2://u@h/db",
            "postgresql+psycopg://u@h/db",
        ),
        ("mysql://u@h/db", "mysql+pymysql://u@h/db", "mysql+asyncmy://u@h/db"),
        ("mysql+aiomysql://u@h/db", "mysql+pymysql://u@h/db", "mysql+aiomysql://u@h/db"),
        ("mssql://u@h/db", "mssql+pyodbc://u@h/db", "mssql+aioodbc://u@h/db"),
        ("oracle://u@h/db", "oracle+oracledb://u@h/db", "oracle+oracledb://u@h/db"),
    ],
    ids=lambda value: "url" if "://" in str(value) else None,
)
def test_driverless_and_explicit_urls(url: str, sync: str, async_: str) -> None:
    db = Database(url)
    assert str(db.sync_url) == sync and str(db.async_url) == async_
    assert db.dialect == url.split("+")[0].split(":")[0]


def test_memory_url_is_one_shared_database_for_sync_and_async() -> None:
    db = Database("sqlite:///:memory:")
    models = define_models(db)
    db.create_all()
    models.User.create(email="a@x.io", name="A")  # statement 1, its own connection

    async def read_async() -> list[str]:
        await models.User.create(email="b@x.io", name="B")
        return [u.email for u in await models.User.query().order_by("id").all()]

    import asyncio

    assert asyncio.run(read_async()) == ["a@x.io", "b@x.io"]  # async engine sees the sync row
    assert count_rows(models, "users") == 2  # and the sync side sees the async one
    db.disconnect()


def test_unsupported_scheme_lists_the_supported_ones() -> None:
    with pytest.raises(ConfigurationError, match=r"Supported schemes: .*postgresql.*sqlite"):
        Database("mongodb://h/db")


def test_missing_driver_names_the_pip_extra_when_first_needed() -> None:
    db = Database("mssql://u:p@127.0.0.1/db")  # lazy: nothing imported yet
    with pytest.raises(ConfigurationError, match=r'pip install "duo-orm\[mssql\]"'):
        db.connect()


def test_unreachable_server_is_a_database_error_sync_and_async() -> None:
    db = Database("postgresql://duo@127.0.0.1:1/nowhere")
    with pytest.raises(DatabaseError, match=r"Could not connect to .*127\.0\.0\.1:1"):
        db.connect()

    async def connect() -> None:
        await db.connect()

    import asyncio

    with pytest.raises(DatabaseError, match="Could not connect"):
        asyncio.run(connect())


def test_derive_async_false_refuses_async_use(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'a.db'}", derive_async=False)
    models = define_models(db)
    db.create_all()
    assert models.User.create(email="a@x.io", name="A").id == 1

    async def use() -> None:
        await models.User.get(1)

    import asyncio

    with pytest.raises(ConfigurationError, match="derive_async=False"):
        asyncio.run(use())
    assert count_rows(models, "users") == 1


def test_each_database_has_its_own_model_base_and_metadata(tmp_path: Path) -> None:
    first, second = (
        Database(f"sqlite:///{tmp_path / '1.db'}"),
        Database(f"sqlite:///{tmp_path / '2.db'}"),
    )

    class Apple(first.Model):  # type: ignore[name-defined,misc]
        __tablename__ = "apples"
        id: Mapped[int] = column(primary_key=True)

    class Pear(second.Model):  # type: ignore[name-defined,misc]
        __tablename__ = "pears"
        id: Mapped[int] = column(primary_key=True)

    assert first.Model is not second.Model and first.metadata is not second.metadata
    first.create_all()
    second.create_all()
    with sqlite3.connect(tmp_path / "1.db") as raw:
        tables = {
            row[0] for row in raw.execute("SELECT name FROM sqlite_master WHERE type='table'")
        }
    assert tables == {"apples"}
    with sqlite3.connect(tmp_path / "2.db") as raw:
        tables = {
            row[0] for row in raw.execute("SELECT name FROM sqlite_master WHERE type='table'")
        }
    assert tables == {"pears"}
    Apple.create(id=1)
    assert Pear.count() == 0 and Apple.count() == 1  # each model uses its own database


def test_sqlite_enforces_foreign_keys(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'fk.db'}")
    models = define_models(db)
    db.create_all()
    with pytest.raises(IntegrityError) as info:
        models.Order.create(total=1, customer_id=42)
    assert info.value.kind == "foreign_key"
    assert count_rows(models, "orders") == 0


def test_sqlite_waits_for_a_busy_writer_instead_of_failing(tmp_path: Path) -> None:
    path = tmp_path / "busy.db"
    db = Database(f"sqlite:///{path}")
    models = define_models(db)
    db.create_all()
    with sqlite_write_lock(path, linger=0.3) as release:
        release.set()
        started = time.monotonic()
        models.User.create(email="late@x.io", name="L")  # waits for the lock, then writes
        waited = time.monotonic() - started
    assert count_rows(models, "users") == 1
    assert waited >= 0.2  # it really waited rather than failing with "database is locked"


def test_standalone_sessions_are_raw_and_not_ambient(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 's.db'}")
    models = define_models(db)
    db.create_all()
    with db.sync_standalone_session() as session:
        assert isinstance(session, Session) and not db.in_transaction
        session.execute(text("INSERT INTO customers (name) VALUES ('raw')"))
        session.commit()

    async def use() -> int:
        async with db.standalone_session() as session:
            assert isinstance(session, AsyncSession) and not db.in_transaction
            return int((await session.execute(text("SELECT count(*) FROM customers"))).scalar_one())

    import asyncio

    assert asyncio.run(use()) == 1
    assert models.Customer.count() == 1


def test_disconnect_then_use_again_and_drop_all(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'd.db'}")
    models = define_models(db)
    db.create_all()
    models.Customer.create(name="a")
    db.disconnect()
    assert models.Customer.count() == 1  # engines are rebuilt on the next use
    db.drop_all()
    with pytest.raises(DatabaseError):
        models.Customer.count()
    db.disconnect()


# -- SQL parameters stay out of errors and logs ----------------------------------------


PRIVATE = "Jane Private-Name"  # a parameter value; never a literal in a traced line


def _refused_duplicate(url: str, caplog: pytest.LogCaptureFixture, **options: object) -> str:
    """Everything a refused INSERT leaves behind: the whole exception chain and the log."""
    import logging
    import traceback

    db = Database(url, echo=True, engine_options=dict(options) or None)
    with tables(db, define_models) as models:
        models.User.create(email="jane@example.com", name="Jane")
        with (
            caplog.at_level(logging.INFO, logger="sqlalchemy.engine"),
            pytest.raises(IntegrityError) as info,
        ):
            models.User.create(email="jane@example.com", name=PRIVATE)
    return "".join(traceback.format_exception(info.value)) + caplog.text


def test_sql_parameters_never_reach_error_text_or_logs(
    url: str, caplog: pytest.LogCaptureFixture
) -> None:
    seen = _refused_duplicate(url, caplog)
    assert PRIVATE not in seen  # parameters can hold personal data
    assert "INSERT INTO users" in seen  # echo=True still shows the statements


def test_showing_sql_parameters_is_an_engine_option(
    url: str, caplog: pytest.LogCaptureFixture
) -> None:
    assert PRIVATE in _refused_duplicate(url, caplog, hide_parameters=False)


# -- SQLite production defaults ----------------------------------------------------------


def pragmas(db: Database, *names: str) -> list[str]:
    with db.sync_standalone_session() as session:
        return [str(session.execute(text(f"PRAGMA {name}")).scalar()) for name in names]


async def async_pragmas(db: Database, *names: str) -> list[str]:
    async with db.standalone_session() as session:
        return [str((await session.execute(text(f"PRAGMA {name}"))).scalar()) for name in names]


def test_sqlite_files_get_wal_synchronous_normal_and_a_busy_timeout(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'prod.db'}")
    names = ("journal_mode", "synchronous", "busy_timeout", "foreign_keys")
    assert pragmas(db, *names) == ["wal", "1", "5000", "1"]  # synchronous 1 = NORMAL
    assert asyncio.run(async_pragmas(db, *names)) == ["wal", "1", "5000", "1"]
    db.disconnect()


def test_in_memory_sqlite_keeps_its_memory_journal() -> None:
    db = Database("sqlite:///:memory:")
    assert pragmas(db, "journal_mode", "synchronous") == ["memory", "1"]
    models = define_models(db)
    db.create_all()
    models.Customer.create(name="a")
    assert models.Customer.count() == 1
    db.disconnect()


def test_sqlite_pragmas_and_begin_are_overridable(tmp_path: Path) -> None:
    db = Database(
        f"sqlite:///{tmp_path / 'own.db'}",
        engine_options={
            "sqlite_pragmas": {"journal_mode": "delete", "synchronous": None, "cache_size": -4000},
            "sqlite_begin": "deferred",
            "connect_args": {"timeout": 1.5},
        },
    )
    sent = statements(db)
    assert pragmas(db, "journal_mode", "synchronous", "cache_size", "busy_timeout") == [
        "delete",
        "2",  # SQLite's own default (FULL): the NORMAL default was dropped
        "-4000",
        "1500",
    ]
    models = define_models(db)
    db.create_all()
    sent.clear()
    models.Customer.create(name="a")
    assert sent[0] == "BEGIN"  # deferred, as asked
    db.disconnect()


@pytest.mark.parametrize(
    "options",
    [
        {"sqlite_pragmas": "wal"},
        {"sqlite_pragmas": {"journal_mode": "wal; DROP TABLE x"}},
        {"sqlite_begin": "exclusive"},
    ],
)
def test_bad_sqlite_settings_are_a_configuration_error(
    tmp_path: Path, options: dict[str, object]
) -> None:
    with pytest.raises(ConfigurationError):
        Database(f"sqlite:///{tmp_path / 'bad.db'}", engine_options=options)


def statements(db: Database) -> list[str]:
    """Every statement the sync engine sends from now on (the list fills as they run)."""
    sent: list[str] = []

    @event.listens_for(db._engines.sync_engine(), "before_cursor_execute")
    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        sent.append(statement.split()[0] if statement.startswith("SELECT") else statement)

    return sent


def test_sqlite_writers_take_the_lock_at_begin_and_lone_reads_send_no_begin(
    tmp_path: Path,
) -> None:
    db = Database(f"sqlite:///{tmp_path / 'begin.db'}")
    models = define_models(db)
    db.create_all()
    sent = statements(db)
    customer = models.Customer.create(name="a")
    assert sent[0] == "BEGIN IMMEDIATE"
    sent.clear()
    models.Customer.get(customer.id)
    models.Customer.count()
    models.Customer.where(models.Customer.name == "a").all()
    models.Customer.first()
    assert sent == ["SELECT"] * 4  # one statement each, no BEGIN, nothing left open
    sent.clear()
    models.Customer.related("orders").all()  # two statements: one snapshot
    assert sent == ["BEGIN", "SELECT", "SELECT"]
    sent.clear()
    with db.transaction():
        models.Customer.count()
    assert sent[0] == "BEGIN IMMEDIATE"  # a transaction block may write
    db.disconnect()


def test_a_lone_read_is_not_blocked_by_a_writer_holding_the_lock(tmp_path: Path) -> None:
    path = tmp_path / "wal.db"
    db = Database(f"sqlite:///{path}", engine_options={"connect_args": {"timeout": 0.1}})
    models = define_models(db)
    db.create_all()
    models.Customer.create(name="a")
    with sqlite_write_lock(path):
        assert models.Customer.count() == 1  # WAL: reads go on beside the writer
        with pytest.raises(DatabaseBusyError):
            models.Customer.create(name="b")
    db.disconnect()
