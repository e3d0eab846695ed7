"""A throwaway primary with a streaming standby, and PgBouncer in front of a server.

Both live in temporary directories, listen only on 127.0.0.1 on ports the OS
chose, and are stopped and removed when the context ends. The standby is made
with ``pg_basebackup -R`` (it streams the primary's WAL and answers reads); the
pooler is Debian's ``pgbouncer`` in transaction pooling mode.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Connection, create_engine, text
from sqlalchemy.engine import URL, make_url

from .postgres_server import (
    DatabaseFactory,
    PostgresServer,
    PostgresUnavailable,
    controlled_postgres_server,
)

PGBOUNCER = "/usr/sbin/pgbouncer"


@dataclass
class Replicated:
    primary: PostgresServer
    standby: PostgresServer

    def url(self, server: PostgresServer, database: str) -> str:
        return server.url.set(drivername="postgresql", database=database).render_as_string(
            hide_password=False
        )

    def wait_replayed(self) -> None:
        """Wait until the standby has replayed everything the primary wrote so far."""
        self._wait_for("pg_last_wal_replay_lsn()")

    def wait_received(self) -> None:
        """Wait until the standby has received (not necessarily replayed) the primary's WAL."""
        self._wait_for("pg_last_wal_receive_lsn()")

    @contextmanager
    def replay_paused(self) -> Iterator[None]:
        """The standby receives WAL but applies none of it: it falls behind at once."""
        with _admin(self.standby.url) as standby:
            standby.execute(text("SELECT pg_wal_replay_pause()"))
            try:
                yield
            finally:
                standby.execute(text("SELECT pg_wal_replay_resume()"))

    def _wait_for(self, position: str, timeout: float = 30.0) -> None:
        # the insert position: the test server commits asynchronously, so a COMMIT
        # may not be written out yet (pg_current_wal_lsn() would stop short of it)
        with _admin(self.primary.url) as primary:
            target = primary.execute(text("SELECT pg_current_wal_insert_lsn()")).scalar_one()
        deadline = time.monotonic() + timeout
        with _admin(self.standby.url) as standby:
            while not standby.execute(
                text(f"SELECT {position} >= CAST(:lsn AS pg_lsn)"), {"lsn": target}
            ).scalar_one():
                if time.monotonic() > deadline:
                    raise PostgresUnavailable(f"The standby's {position} stayed behind for 30 s")
                time.sleep(0.02)


@contextmanager
def _admin(url: URL) -> Iterator[Connection]:
    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as connection:
            yield connection
    finally:
        engine.dispose()


@contextmanager
def replicated_servers() -> Iterator[Replicated]:
    """A primary and its hot standby, both running; stopped and removed afterwards."""
    with controlled_postgres_server() as primary:
        root = Path(tempfile.mkdtemp(prefix="duo-orm-standby-"))
        standby = PostgresServer(root)
        try:
            standby.sockets.mkdir()
            if os.geteuid() == 0:
                for path in (root, standby.sockets):
                    shutil.chown(path, "postgres")
            _run_as_server(
                [
                    str(standby.bin_dir / "pg_basebackup"),
                    *("-h", "127.0.0.1", "-p", str(primary.port), "-U", "duo"),
                    *("-D", str(standby.data), "-R", "-X", "stream", "-c", "fast"),
                ]
            )
            standby.start()
            yield Replicated(primary, standby)
        finally:
            standby.kill()
            shutil.rmtree(root, ignore_errors=True)


@dataclass
class ReplicatedDatabase:
    """One database on the replicated primary, as driverless URLs of both servers."""

    servers: Replicated
    primary: str
    standby: str

    def urls(self, driver: str = "postgresql") -> tuple[str, str]:
        return (
            make_url(self.primary).set(drivername=driver).render_as_string(hide_password=False),
            make_url(self.standby).set(drivername=driver).render_as_string(hide_password=False),
        )


@contextmanager
def replicated_database(servers: Replicated) -> Iterator[ReplicatedDatabase]:
    """A new database on the primary, already replayed on the standby; dropped afterwards."""
    factory = DatabaseFactory(servers.primary.url)
    created = factory.create()
    try:
        servers.wait_replayed()
        yield ReplicatedDatabase(
            servers,
            servers.url(servers.primary, str(created.database)),
            servers.url(servers.standby, str(created.database)),
        )
    finally:
        factory.drop(created)
        factory.close()


def _run_as_server(command: list[str]) -> None:
    if os.geteuid() == 0:
        command = ["runuser", "-u", "postgres", "--", *command]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise PostgresUnavailable(f"{command} failed:\n{result.stdout}{result.stderr}")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Bouncer:
    port: int

    def url(self, server_url: URL, database: str, driver: str = "postgresql") -> str:
        return server_url.set(
            drivername=driver, port=self.port, database=database
        ).render_as_string(hide_password=False)


@contextmanager
def pgbouncer(server: URL) -> Iterator[Bouncer]:
    """PgBouncer in transaction pooling mode on 127.0.0.1, in front of ``server``.

    Every database of the server is reachable through it (``* = host=... port=...``),
    with few server connections, so that consecutive transactions of one client
    really do land on different server connections.
    """
    if not os.path.exists(PGBOUNCER):
        raise PostgresUnavailable(
            f"{PGBOUNCER} is missing: run `make postgres` "
            "(Debian/Ubuntu: apt-get install pgbouncer)"
        )
    root = Path(tempfile.mkdtemp(prefix="duo-orm-pgbouncer-"))
    port = _free_port()
    (root / "users.txt").write_text(f'"{server.username}" ""\n')
    (root / "pgbouncer.ini").write_text(
        "[databases]\n"
        f"* = host=127.0.0.1 port={server.port}\n"
        "[pgbouncer]\n"
        f"listen_addr = 127.0.0.1\nlisten_port = {port}\nunix_socket_dir =\n"
        f"auth_type = trust\nauth_file = {root / 'users.txt'}\n"
        "pool_mode = transaction\ndefault_pool_size = 4\nmax_client_conn = 500\n"
        f"logfile = {root / 'pgbouncer.log'}\npidfile = {root / 'pgbouncer.pid'}\n"
    )
    if os.geteuid() == 0:
        shutil.chown(root, "postgres")
    command = [PGBOUNCER, str(root / "pgbouncer.ini")]
    if os.geteuid() == 0:
        command = ["runuser", "-u", "postgres", "--", *command]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        _wait_for_port(port, process, root / "pgbouncer.log")
        yield Bouncer(port)
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        shutil.rmtree(root, ignore_errors=True)


def _wait_for_port(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            error = process.stderr.read().decode() if process.stderr else ""
            logged = log.read_text() if log.exists() else ""
            raise PostgresUnavailable(f"pgbouncer exited: {error}{logged}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.05)
    raise PostgresUnavailable("pgbouncer did not listen within 30 s")
