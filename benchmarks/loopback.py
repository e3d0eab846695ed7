"""The same apps behind a real server: uvicorn on 127.0.0.1 in its own process.

The in-process figures (``http.py``) isolate framework + adapter cost; these add
what a deployment adds (sockets, HTTP parsing, a server loop) and load the app
with concurrent keep-alive connections. Each app runs in its own uvicorn process
(one core); the client is a small asyncio HTTP/1.1 loop in this process (the other
core), light enough that the server is the bottleneck. A second copy of the
hand-written app is measured too: the spread between the two identical apps is
the noise floor the adapter's overhead is compared against.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import os
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from typing import Any

from duo_orm import Database

from . import core, http
from .harness import rotated
from .http import HttpResult

VARIANTS = ("duo-orm", "hand-written", "hand-written (copy)")
# path, and the share of the requests each round sends (the DB-less route is ~15x faster)
ROUTES = {"get": ("/users/{first_id}", 1), "no database": ("/nodb", 4)}


def app_factory() -> Any:
    """``uvicorn --factory benchmarks.loopback:app_factory``; configured by environment."""
    db = Database(os.environ["BENCH_DATABASE_URL"])
    user = core.define(db)
    # The hand-written app gets its own engine configured like duo-orm's (uvicorn calls
    # this on its running loop), as in-process: the same SQLite transaction handling on
    # both sides, so the comparison is about the layer, not the driver settings.
    engine = Database(os.environ["BENCH_DATABASE_URL"]).async_engine
    variant = os.environ["BENCH_VARIANT"]
    apps = http.FRAMEWORKS[os.environ["BENCH_FRAMEWORK"]](db, user, engine)
    return apps["duo-orm" if variant == "duo-orm" else "hand-written"]


@contextmanager
def served(framework: str, variant: str, url: str) -> Iterator[int]:
    environment = {
        "BENCH_DATABASE_URL": url,
        "BENCH_FRAMEWORK": framework,
        "BENCH_VARIANT": variant,
    }
    with uvicorn_process("benchmarks.loopback:app_factory", environment, factory=True) as port:
        yield port


@contextmanager
def uvicorn_process(
    target: str,
    environment: dict[str, str],
    *,
    factory: bool = False,
    app_dir: str | None = None,
    cwd: str | None = None,
) -> Iterator[int]:
    """``target`` served by its own uvicorn process on a free loopback port (one worker).

    ``environment`` is added to this process's own. The process is ours alone: it is
    terminated (killed if it lingers) when the block ends, whatever happened inside.
    """
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    command = [sys.executable, "-m", "uvicorn", target, "--host", "127.0.0.1"]
    command += ["--port", str(port), "--log-level", "warning", "--no-access-log"]
    command += ["--factory"] if factory else []
    command += ["--app-dir", app_dir] if app_dir is not None else []
    server = subprocess.Popen(
        [*command, *server_flavour()], env={**os.environ, **environment}, cwd=cwd
    )
    try:
        _wait_for(port, server)
        yield port
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def server_flavour() -> list[str]:
    """httptools and uvloop when installed (``--group bench``), as most deployments run."""
    flags = []
    if importlib.util.find_spec("httptools") is not None:
        flags += ["--http", "httptools"]
    if importlib.util.find_spec("uvloop") is not None:
        flags += ["--loop", "uvloop"]
    return flags


def _wait_for(port: int, server: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"uvicorn exited with {server.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("uvicorn did not start within 30 s")


@dataclass
class Load:
    """What one load round measured: request latencies (seconds), failures, wall time."""

    latencies: list[float] = field(default_factory=list)  # every answered request's
    failures: list[str] = field(default_factory=list)  # "503", "connection lost", ...
    succeeded: int = 0
    wall: float = 0.0

    @property
    def per_second(self) -> float:
        """Successful requests per second."""
        return self.succeeded / self.wall if self.wall else 0.0


def get(path: str) -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode()


def post_json(path: str, body: bytes) -> bytes:
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


class _Budget:
    """Shared by a round's connections: how many requests may still start, and until when."""

    def __init__(self, requests: int, seconds: float | None) -> None:
        self.left = requests
        self.deadline = None if seconds is None else time.perf_counter() + seconds

    def take(self) -> bool:
        if self.left <= 0 or (self.deadline is not None and time.perf_counter() >= self.deadline):
            return False
        self.left -= 1
        return True


async def _connection_worker(
    port: int, next_request: Callable[[], bytes], budget: _Budget, load: Load
) -> None:
    """One keep-alive connection sending requests back to back while the budget lasts.

    An error status is recorded (its latency counts too: the client waited for it) and the
    connection goes on; a connection the server dropped is recorded and opened again.
    """
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        while budget.take():
            request = next_request()
            started = time.perf_counter()
            try:
                writer.write(request)
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line[:15].lower() == b"content-length:":
                        length = int(line[15:])
                await reader.readexactly(length)
            except (ConnectionError, asyncio.IncompleteReadError):
                load.failures.append("connection lost")
                writer.close()
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
                continue
            load.latencies.append(time.perf_counter() - started)
            status = int(head[9:12])
            if status >= 400:
                load.failures.append(str(status))
            else:
                load.succeeded += 1
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()


async def drive(
    port: int,
    next_request: Callable[[], bytes],
    *,
    concurrency: int,
    requests: int,
    seconds: float | None = None,
) -> Load:
    """Up to ``requests`` requests over ``concurrency`` keep-alive connections, none started
    after ``seconds``; a round still running a minute past that is cancelled."""
    load = Load()
    budget = _Budget(requests, seconds)
    started = time.perf_counter()
    workers = asyncio.gather(
        *(_connection_worker(port, next_request, budget, load) for _ in range(concurrency))
    )
    limit = None if seconds is None else seconds + 60
    try:
        await asyncio.wait_for(workers, limit)
    except TimeoutError:
        load.failures.append("round cancelled")
    load.wall = time.perf_counter() - started
    return load


async def load(port: int, path: str, requests: int, concurrency: int) -> tuple[list[float], float]:
    """``requests`` GETs over ``concurrency`` keep-alive connections: latencies, wall time."""
    request = get(path)
    done = await drive(port, lambda: request, concurrency=concurrency, requests=requests)
    if done.failures:
        raise RuntimeError(f"GET {path}: {', '.join(sorted(set(done.failures)))}")
    return done.latencies, done.wall


def run_loopback(
    url: str, first_id: int, *, requests: int, rounds: int, concurrency: int
) -> list[HttpResult]:
    results: list[HttpResult] = []
    for framework in http.FRAMEWORKS:
        with servers(framework, url) as ports:
            for route, (template, share) in ROUTES.items():
                path = template.format(first_id=first_id)
                latencies: dict[str, list[float]] = {name: [] for name in ports}
                rates: dict[str, list[float]] = {name: [] for name in ports}
                for number in range(rounds + 1):  # the first round warms up and is dropped
                    for name in rotated(list(ports), number):
                        count = requests * share // (1 if number else 4)  # a short warm-up
                        values, wall = asyncio.run(load(ports[name], path, count, concurrency))
                        if number:
                            latencies[name].extend(values)
                            rates[name].append(len(values) / wall)
                for name in ports:
                    per_second = statistics.median(rates[name])
                    results.append(
                        HttpResult.of(framework, route, name, latencies[name], per_second)
                    )
    return results


@contextmanager
def servers(framework: str, url: str) -> Iterator[dict[str, int]]:
    """Every variant of ``framework``'s app served at once (idle ones cost nothing)."""
    with ExitStack() as stack:
        yield {name: stack.enter_context(served(framework, name, url)) for name in VARIANTS}
