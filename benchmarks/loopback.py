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
import importlib.util
import os
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
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
    engine = Database(os.environ["BENCH_DATABASE_URL"])._engines.async_engine()
    variant = os.environ["BENCH_VARIANT"]
    apps = http.FRAMEWORKS[os.environ["BENCH_FRAMEWORK"]](db, user, engine)
    return apps["duo-orm" if variant == "duo-orm" else "hand-written"]


@contextmanager
def served(framework: str, variant: str, url: str) -> Iterator[int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    environment = dict(
        os.environ,
        BENCH_DATABASE_URL=url,
        BENCH_FRAMEWORK=framework,
        BENCH_VARIANT=variant,
    )
    command = [
        sys.executable,
        "-m",
        "uvicorn",
        "--factory",
        "benchmarks.loopback:app_factory",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--log-level",
        "warning",
        "--no-access-log",
        *server_flavour(),
    ]
    server = subprocess.Popen(command, env=environment)
    try:
        _wait_for(port, server)
        yield port
    finally:
        server.terminate()
        server.wait(timeout=30)


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


async def _connection_worker(port: int, path: str, count: int, latencies: list[float]) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    request = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode()
    try:
        for _ in range(count):
            started = time.perf_counter()
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head[9:12])
            if status >= 400:
                raise RuntimeError(f"GET {path} answered {status}")
            length = 0
            for line in head.split(b"\r\n"):
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            await reader.readexactly(length)
            latencies.append(time.perf_counter() - started)
    finally:
        writer.close()
        await writer.wait_closed()


async def load(port: int, path: str, requests: int, concurrency: int) -> tuple[list[float], float]:
    """``requests`` GETs over ``concurrency`` keep-alive connections: latencies, wall time."""
    latencies: list[float] = []
    per_connection = requests // concurrency
    started = time.perf_counter()
    await asyncio.gather(
        *(_connection_worker(port, path, per_connection, latencies) for _ in range(concurrency))
    )
    return latencies, time.perf_counter() - started


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
