"""A throwaway PostgreSQL server on 127.0.0.1 for the test run.

``DUO_TEST_POSTGRES_URL`` (a role allowed to CREATE DATABASE) replaces it. Otherwise
the Debian server binaries are used; ``tests/ensure_postgres.sh`` installs them
on a fresh machine. The cluster lives in a temporary directory, listens only on
loopback, trades durability for speed, and is removed when the run ends.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import URL, make_url

ENV_URL = "DUO_TEST_POSTGRES_URL"


class PostgresUnavailable(RuntimeError):
    """No server could be started or reached; the PostgreSQL tests fail with this."""


def _bin_dir() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not found:
        raise PostgresUnavailable(
            "No PostgreSQL server binaries under /usr/lib/postgresql. Run "
            f"`tests/ensure_postgres.sh` (installs Debian's postgresql) or set {ENV_URL}."
        )
    return Path(found[-1]).parent


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _as_server_user(command: list[str]) -> list[str]:
    """initdb and postgres refuse to run as root: drop to the ``postgres`` system user."""
    if os.geteuid() != 0:
        return command
    return ["runuser", "-u", "postgres", "--", *command]


@contextmanager
def postgres_server() -> Iterator[URL]:
    """Yield the admin URL of a running server (with the psycopg driver)."""
    given = os.environ.get(ENV_URL)
    if given:
        yield make_url(given).set(drivername="postgresql+psycopg")
        return
    bin_dir = _bin_dir()
    root = Path(tempfile.mkdtemp(prefix="duo-orm-pg-"))
    data, sockets = root / "data", root / "sockets"
    data.mkdir()
    sockets.mkdir()
    if os.geteuid() == 0:
        shutil.chown(root, "postgres")
        shutil.chown(data, "postgres")
        shutil.chown(sockets, "postgres")
    port = _free_port()
    log = root / "server.log"
    try:
        _run([str(bin_dir / "initdb"), "-D", str(data), "-U", "duo", "-A", "trust", "-E", "UTF8"])
        _run(
            [
                str(bin_dir / "pg_ctl"),
                "-D",
                str(data),
                "-l",
                str(log),
                "-w",
                "-o",
                f"-p {port} -c listen_addresses=127.0.0.1 -k {sockets} -c fsync=off "
                "-c synchronous_commit=off -c full_page_writes=off -c max_connections=300",
                "start",
            ],
            log=log,
        )
        yield URL.create("postgresql+psycopg", "duo", None, "127.0.0.1", port, "postgres")
    finally:
        subprocess.run(
            _as_server_user([str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"]),
            capture_output=True,
            check=False,
        )
        shutil.rmtree(root, ignore_errors=True)


def _run(command: list[str], log: Path | None = None) -> None:
    result = subprocess.run(_as_server_user(command), capture_output=True, text=True, check=False)
    if result.returncode != 0:
        server_log = log.read_text() if log is not None and log.exists() else ""
        raise PostgresUnavailable(
            f"{command[0]} failed ({result.returncode}):\n{result.stdout}{result.stderr}"
            f"{server_log}"
        )


class DatabaseFactory:
    """Creates an empty database per test on the server, and drops it afterwards."""

    def __init__(self, admin_url: URL) -> None:
        self.admin_url = admin_url
        self._admin = create_engine(admin_url, isolation_level="AUTOCOMMIT", pool_size=1)

    def create(self) -> URL:
        name = f"duo_test_{uuid.uuid4().hex[:12]}"
        with self._admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}" TEMPLATE template0'))
        return self.admin_url.set(database=name)

    def drop(self, url: URL) -> None:
        with self._admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{url.database}" WITH (FORCE)'))

    def close(self) -> None:
        self._admin.dispose()
