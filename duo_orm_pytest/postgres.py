"""A throwaway PostgreSQL server on 127.0.0.1 for a test run.

Used by the plugin's ``duo_orm_postgres_url`` fixture and by duo-orm's own suite.
``DUO_TEST_POSTGRES_URL`` (a role allowed to CREATE DATABASE) replaces it. Otherwise
the local server binaries are used (Debian/Ubuntu: ``apt-get install postgresql``;
duo-orm's ``tests/ensure_postgres.sh`` installs them on a fresh machine). The
cluster lives in a temporary directory, listens only on loopback, trades
durability for speed, and is removed when the run ends.

``controlled_postgres_server()`` always starts a cluster of its own, which the
fault tests stop, start and restart on the same port without disturbing others.
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
            "No PostgreSQL server binaries under /usr/lib/postgresql. Install them "
            f"(Debian/Ubuntu: `apt-get install postgresql`) or set {ENV_URL}."
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
    with controlled_postgres_server() as server:
        yield server.url


class PostgresServer:
    """A cluster of our own that can be stopped and started again on the same port."""

    def __init__(self, root: Path) -> None:
        self.bin_dir = _bin_dir()
        self.root = root
        self.data, self.sockets, self.log = root / "data", root / "sockets", root / "server.log"
        self.port = _free_port()
        self.url = URL.create("postgresql+psycopg", "duo", None, "127.0.0.1", self.port, "postgres")

    def init(self) -> None:
        self.data.mkdir()
        self.sockets.mkdir()
        if os.geteuid() == 0:
            for path in (self.root, self.data, self.sockets):
                shutil.chown(path, "postgres")
        initdb = str(self.bin_dir / "initdb")
        _run([initdb, "-D", str(self.data), "-U", "duo", "-A", "trust", "-E", "UTF8"])

    def start(self) -> None:
        """Start and wait until it accepts connections (at most 60 s)."""
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.sockets} -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off -c max_connections=300"
        )
        self._pg_ctl("-l", str(self.log), "-o", options, "start")

    def stop(self, mode: str = "fast") -> None:
        """Stop and wait: ``fast`` ends every session (clients see 57P01)."""
        self._pg_ctl("-m", mode, "stop")

    def running(self) -> bool:
        command = [str(self.bin_dir / "pg_ctl"), "-D", str(self.data), "status"]
        return subprocess.run(_as_server_user(command), capture_output=True).returncode == 0

    def restart(self) -> None:
        self.stop()
        self.start()

    def kill(self) -> None:
        """Stop at once if running (a crash, as at the end of the run); never fails."""
        command = [str(self.bin_dir / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop"]
        subprocess.run(_as_server_user(command), capture_output=True, check=False)

    def _pg_ctl(self, *args: str) -> None:
        _run(
            [str(self.bin_dir / "pg_ctl"), "-D", str(self.data), "-w", "-t", "60", *args], self.log
        )


@contextmanager
def controlled_postgres_server() -> Iterator[PostgresServer]:
    """A running server in a temporary directory, stopped and removed afterwards."""
    root = Path(tempfile.mkdtemp(prefix="duo-orm-pg-"))
    try:
        server = PostgresServer(root)
        try:
            server.init()
            server.start()
            yield server
        finally:
            server.kill()
    finally:
        shutil.rmtree(root, ignore_errors=True)


@contextmanager
def empty_database(server: PostgresServer) -> Iterator[URL]:
    """A new database on ``server``, dropped afterwards (restarting a server left stopped)."""
    factory = DatabaseFactory(server.url)
    created = factory.create()
    factory.close()
    try:
        yield created
    finally:
        if not server.running():
            server.start()
        factory = DatabaseFactory(server.url)
        factory.drop(created)
        factory.close()


@contextmanager
def throwaway_database() -> Iterator[str]:
    """A new, empty database on a server of its own, as a driverless URL; gone afterwards."""
    with postgres_server() as admin_url:
        factory = DatabaseFactory(admin_url)
        created = factory.create()
        try:
            yield created.set(drivername="postgresql").render_as_string(hide_password=False)
        finally:
            factory.drop(created)
            factory.close()


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
