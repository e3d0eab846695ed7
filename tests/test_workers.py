"""The example apps under several worker processes (uvicorn --workers, gunicorn).

Each worker builds its engines after the fork, in its lifespan: the check reads
which process holds each connection to PostgreSQL (``/proc``) and requires that
several workers hold some and that no connection is held by two processes. A
short load of writes and reads must answer every request and land every write.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from .postgres_server import DatabaseFactory

pytestmark = [pytest.mark.postgres, pytest.mark.anyio]

ROOT = Path(__file__).resolve().parent.parent
WORKERS = 4
WRITES = 50  # and as many reads, 16 at a time, each on a new HTTP connection


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def server_command(server: str, app: str, port: int) -> list[str]:
    bin_dir = Path(sys.executable).parent
    if server == "uvicorn":
        return [
            str(bin_dir / "uvicorn"),
            app,
            *("--host", "127.0.0.1", "--port", str(port), "--workers", str(WORKERS)),
        ]
    return [
        str(bin_dir / "gunicorn"),
        app,
        *("--bind", f"127.0.0.1:{port}", "--workers", str(WORKERS)),
        *("--worker-class", "uvicorn.workers.UvicornWorker"),
    ]


@contextmanager
def served(command: list[str], port: int, database_url: str, log: Path) -> Iterator[int]:
    """Run the server until the block ends; yields its pid once it answers."""
    env = {**os.environ, "DATABASE_URL": database_url}
    with log.open("wb") as out:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=out)
    try:
        deadline = time.monotonic() + 60
        while True:  # gunicorn listens before its workers have booted: wait for an answer
            try:
                if httpx.get(f"http://127.0.0.1:{port}/users/", timeout=5).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"server did not start:\n{log.read_text()}")
            time.sleep(0.1)
        yield process.pid
    finally:
        process.terminate()
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def create_schema(url: str) -> None:
    """The examples' tables (the three apps share the FastAPI example's models)."""
    script = (
        "import examples.fastapi_app.db.models\n"
        "from examples.fastapi_app.db.database import db\n"
        "db.create_all()\n"
    )
    env = {**os.environ, "DATABASE_URL": url}
    subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, check=True)


def database_connections(parent: int, server_port: int) -> dict[int, set[str]]:
    """The TCP connections to ``server_port`` held by each child of ``parent``, by socket."""
    remote = f":{server_port:04X}"
    sockets = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[2].endswith(remote) and fields[3] == "01":  # ESTABLISHED
                sockets.add(f"socket:[{fields[9]}]")
    children = Path(f"/proc/{parent}/task/{parent}/children").read_text().split()
    held: dict[int, set[str]] = {}
    for child in map(int, children):
        fd_dir = Path(f"/proc/{child}/fd")
        links = set()
        for fd in fd_dir.iterdir():
            try:
                links.add(os.readlink(fd))
            except OSError:
                continue
        held[child] = links & sockets
    return held


async def load(port: int) -> None:
    limits = httpx.Limits(max_keepalive_connections=0)  # a new connection per request
    async with httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{port}", limits=limits, timeout=30
    ) as client:
        gate = asyncio.Semaphore(16)

        async def write(n: int) -> int:
            async with gate:
                payload = {"email": f"u{n}@x.io", "name": f"User {n}"}
                return (await client.post("/users/", json=payload)).status_code

        async def read() -> int:
            async with gate:
                return (await client.get("/users/")).status_code

        statuses = await asyncio.gather(
            *(write(n) for n in range(WRITES)), *(read() for _ in range(WRITES))
        )
        assert statuses == [201] * WRITES + [200] * WRITES
        listed = (await client.get("/users/", params={"size": WRITES})).json()["items"]
        assert sorted(user["email"] for user in listed) == sorted(
            f"u{n}@x.io" for n in range(WRITES)
        )


@pytest.mark.parametrize(
    ("server", "framework"),
    # each example app once, each server at least once (four workers boot per case)
    [("uvicorn", "fastapi"), ("uvicorn", "litestar"), ("gunicorn", "starlette")],
)
async def test_several_workers_each_own_their_connections(
    postgres_databases: DatabaseFactory, server: str, framework: str, tmp_path: Path
) -> None:
    created = postgres_databases.create()
    url = created.set(drivername="postgresql").render_as_string(hide_password=False)
    port = _free_port()
    command = server_command(server, f"examples.{framework}_app.main:app", port)
    try:
        # The examples' create_all() at startup would race between the workers (two
        # CREATE TABLE at once collide in the catalog): make the schema first, as a
        # deployment runs its migrations before starting the workers.
        create_schema(url)
        with served(command, port, url, tmp_path / "server.log") as pid:
            await load(port)
            held = database_connections(pid, int(created.port or 5432))
            owners = [child for child, sockets in held.items() if sockets]
            assert len(owners) >= 2, held  # the load reached several workers
            all_sockets = [s for sockets in held.values() for s in sockets]
            assert len(all_sockets) == len(set(all_sockets)), held  # none shared
        log = (tmp_path / "server.log").read_text()
        assert "Traceback" not in log and "ERROR" not in log, log
    finally:
        postgres_databases.drop(created)
