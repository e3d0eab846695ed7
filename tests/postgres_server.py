"""The suite's throwaway PostgreSQL server: the plugin's own provisioning, reused."""

from duo_orm_pytest.postgres import (
    ENV_URL,
    DatabaseFactory,
    PostgresServer,
    PostgresUnavailable,
    controlled_postgres_server,
    empty_database,
    postgres_server,
)

__all__ = [
    "ENV_URL",
    "DatabaseFactory",
    "PostgresServer",
    "PostgresUnavailable",
    "controlled_postgres_server",
    "empty_database",
    "postgres_server",
]
