"""Alembic, driven from a duo-orm project: the ``env.py`` body and the commands.

Migrations always run on the Database's sync engine, so a driverless URL, an
async URL (``postgresql+asyncpg://``) and SQLite's settings all work as they do
in the application. SQLite migrations are rendered in batch mode, since SQLite
cannot ALTER most things in place.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from alembic import context

if TYPE_CHECKING:
    from .database import Database

URL_OPTION = "sqlalchemy.url"  # set by `duo-orm --url`; otherwise the Database's own URL


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
    if context.is_offline_mode():
        context.configure(url=target.sync_url, literal_binds=True, **options)
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = target._engines.sync_engine()
    with engine.connect() as connection:
        context.configure(connection=connection, **options)
        with context.begin_transaction():
            context.run_migrations()
    target.disconnect()


def _same_models_elsewhere(db: Database, url: str) -> Database:
    from .database import Database

    return Database(url, derive_async=False)
