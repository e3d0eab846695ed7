"""Alembic, driven from a duo-orm project: the ``env.py`` body and the commands.

Migrations always run on the Database's sync engine, so a driverless URL, an
async URL (``postgresql+asyncpg://``) and SQLite's settings all work as they do
in the application. SQLite migrations are rendered in batch mode, since SQLite
cannot ALTER most things in place, and run in one transaction with foreign-key
enforcement off until a final check.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from alembic import context
from alembic.util import CommandError
from sqlalchemy import Column, Connection, Table

if TYPE_CHECKING:
    from .database import Database

URL_OPTION = "sqlalchemy.url"  # set by `duo-orm --url`; otherwise the Database's own URL
# set by the CLI from pyproject.toml's [tool.duo-orm] version_table (default alembic_version)
VERSION_TABLE_OPTION = "version_table"

# Alembic's opt-in comparison of CHECK constraints by name (1.19.2, the floor). It is
# only safe when every check is named, as a convention does.
CHECKS_BY_NAME = "alembic.ext.checkconstraint_byname"


def run_migrations(db: Database) -> None:
    """The whole of a generated ``env.py``: migrate ``db.Model``'s tables."""
    config = context.config
    override = config.get_main_option(URL_OPTION)
    target = db if not override else _same_models_elsewhere(db, override)
    options: dict[str, Any] = {
        "target_metadata": db.metadata,
        "render_as_batch": target.dialect == "sqlite",
        "compare_type": True,
    }
    version_table = config.get_main_option(VERSION_TABLE_OPTION)
    if version_table:
        options["version_table"] = version_table
    if "ck" in db.metadata.naming_convention:
        options["autogenerate_plugins"] = ["alembic.autogenerate.*", CHECKS_BY_NAME]
    if context.is_offline_mode():
        context.configure(url=target.sync_url, literal_binds=True, **options)
        with context.begin_transaction():
            context.run_migrations()
        return
    sqlite = target.dialect == "sqlite"
    with target.sync_engine.connect() as connection:
        if sqlite:
            _sqlite_foreign_keys(connection, on=False)
        # duo-orm's SQLite connections issue a real BEGIN, so DDL is transactional
        # there too: a failed upgrade leaves nothing half done.
        context.configure(connection=connection, transactional_ddl=True, **options)
        with context.begin_transaction():
            context.run_migrations()
            if sqlite:
                _refuse_broken_references(connection)
        if sqlite:
            _sqlite_foreign_keys(connection, on=True)
    target.disconnect()


def _sqlite_foreign_keys(connection: Connection, *, on: bool) -> None:
    """Switch SQLite's foreign-key enforcement for this connection.

    Batch mode copies a table, drops the old one and renames the copy; with
    enforcement on, dropping a table other rows point at fails (or cascades).
    The pragma only works outside a transaction, so it goes to the driver
    directly (duo-orm's SQLite connections are in autocommit mode until BEGIN).
    """
    raw = connection.connection.driver_connection
    assert raw is not None
    raw.execute(f"PRAGMA foreign_keys={'ON' if on else 'OFF'}")


def _refuse_broken_references(connection: Connection) -> None:
    """With enforcement off, check before COMMIT that every reference still resolves."""
    broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
    if broken:
        tables = sorted({row[0] for row in broken})
        raise CommandError(
            f"the migration leaves rows whose foreign keys point nowhere in {', '.join(tables)} "
            "(PRAGMA foreign_key_check); nothing was committed"
        )


def _same_models_elsewhere(db: Database, url: str) -> Database:
    from .database import Database

    return Database(url, derive_async=False)


def describe_diffs(diffs: Sequence[Any]) -> list[str]:
    """One readable line per difference Alembic found, naming tables, columns and constraints.

    Alembic's own message is the repr of its diff tuples, where a reflected
    constraint shows its columns but not its name.
    """
    lines: list[str] = []
    for diff in diffs:
        if isinstance(diff, list):  # the changes to one column come grouped
            lines.extend(describe_diffs(diff))
            continue
        kind, *items = diff
        if kind.startswith("modify_"):  # (kind, schema, table, column, existing, old, new)
            _, table, column, _, before, after = items
            lines.append(f"{kind} {table}.{column}: {before} -> {after}")
        else:  # (kind, [schema, table name,] object): the object names its table
            lines.append(" ".join([kind, *(_describe(item) for item in items[-1:])]))
    return lines


def _describe(item: Any) -> str:
    if isinstance(item, Table):
        return item.name
    if isinstance(item, Column):
        return f"{item.table.name}.{item.name}" if isinstance(item.table, Table) else item.name
    table = getattr(item, "table", None)
    if isinstance(table, Table):  # a constraint or an index
        columns = ", ".join(column.name for column in getattr(item, "columns", ()))
        return f"{item.name or 'unnamed'} on {table.name} ({columns})"
    return str(item)
