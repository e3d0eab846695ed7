"""``make bench``: run every scenario and print the ratio tables (optionally into docs/).

python -m benchmarks.run [--quick] [--db sqlite|postgresql ...] [--write docs/performance.md]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import glob
import os
import platform
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from duo_orm import Database

from . import core, peers
from .harness import Result, measure
from .http import HttpResult, run_http


@contextlib.contextmanager
def database_url(kind: str) -> Iterator[str | None]:
    if kind == "sqlite":
        with tempfile.TemporaryDirectory() as folder:
            yield f"sqlite:///{Path(folder) / 'bench.db'}"
        return
    if not (
        os.environ.get("DUO_TEST_POSTGRES_URL") or glob.glob("/usr/lib/postgresql/*/bin/initdb")
    ):
        yield None
        return
    from tests.postgres_server import DatabaseFactory, postgres_server

    with postgres_server() as admin:
        factory = DatabaseFactory(admin)
        url = factory.create()
        try:
            yield url.set(drivername="postgresql").render_as_string(hide_password=False)
        finally:
            factory.drop(url)
            factory.close()


HTTP_HEADER = (
    "| framework | route | database | duo-orm p50 ms | hand-written p50 ms | p50 ratio "
    "| duo-orm p99 ms | hand-written p99 ms | duo-orm req/s | hand-written req/s |\n"
    "|---|---|---|---:|---:|---:|---:|---:|---:|---:|"
)


def http_rows(kind: str, results: list[HttpResult]) -> list[str]:
    by_key = {(r.framework, r.route, r.app): r for r in results}
    lines = []
    for framework, route in dict.fromkeys((r.framework, r.route) for r in results):
        ours, plain = (
            by_key[(framework, route, "duo-orm")],
            by_key[(framework, route, "hand-written")],
        )
        lines.append(
            f"| {framework} | {route} | {kind} | {ours.p50 * 1e3:.3f} | {plain.p50 * 1e3:.3f} | "
            f"**{ours.p50 / plain.p50:.2f}x** | {ours.p99 * 1e3:.3f} | {plain.p99 * 1e3:.3f} | "
            f"{ours.per_second:.0f} | {plain.per_second:.0f} |"
        )
    return lines


def run_http_benchmarks(kind: str, url: str, quick: bool) -> list[str]:
    db = Database(url)
    User = core.define(db)
    db.create_all()

    async def go() -> list[HttpResult]:
        try:
            return await run_http(db, User, requests=100 if quick else 300, rounds=3)
        finally:
            await db.disconnect()

    lines = http_rows(kind, asyncio.run(go()))
    for line in lines:
        print(line, flush=True)
    return lines


def run_core(kind: str, url: str, quick: bool, rounds: int) -> list[Result]:
    results: list[Result] = []
    db = Database(url)
    User = core.define(db)
    db.create_all()
    for scenario in core.sync_scenarios(db, User, quick, peers.sync_additions):
        medians = measure(scenario, rounds, None)
        results.append(Result(scenario.name, "sync", kind, medians))
        print(format_row(results[-1]), flush=True)
    loop = asyncio.new_event_loop()
    async_peers = peers.AsyncPeers(url)
    try:

        async def build() -> list[core.Scenario]:  # the async engine belongs to this loop
            await async_peers.start()  # and so do Tortoise's connections
            return core.async_scenarios(db, User, quick, async_peers.additions)

        for scenario in loop.run_until_complete(build()):
            medians = measure(scenario, rounds, loop)
            results.append(Result(scenario.name, "async", kind, medians))
            print(format_row(results[-1]), flush=True)

        async def close() -> None:
            await async_peers.close()
            await db.disconnect()

        loop.run_until_complete(close())
    finally:
        loop.close()
    db.disconnect()
    return results


COLUMNS = ["duo-orm", "sqlalchemy-orm", "sqlalchemy-core"]


def format_row(result: Result) -> str:
    cells = [
        f"{result.medians[name] * 1e3:.3f}" if name in result.medians else "-" for name in COLUMNS
    ]
    return (
        f"| {result.scenario} | {result.mode} | {result.database} | "
        + " | ".join(cells)
        + f" | **{result.ratio('duo-orm'):.2f}x** |"
    )


HEADER = (
    "| scenario | mode | database | duo-orm ms/op | SQLAlchemy ORM ms/op | SQLAlchemy Core ms/op "
    "| duo-orm / ORM |\n|---|---|---|---:|---:|---:|---:|"
)

# the peers table: each implementation's ms/op and its ratio to the same run's ORM baseline
PEER_COLUMNS = ["duo-orm", *peers.LABELS]
PEERS_HEADER = (
    "| scenario | mode | database | SQLAlchemy ORM ms/op | "
    + " | ".join(f"{label} ms/op | {label} / ORM" for label in ["duo-orm", *peers.LABELS.values()])
    + " |\n|---|---|---|---:|"
    + "---:|---:|" * len(PEER_COLUMNS)
)


def format_peer_row(result: Result) -> str | None:
    """One row of the peers table; None where no peer does this scenario."""
    if not any(name in result.medians for name in peers.LABELS):
        return None
    cells = [f"{result.medians[result.baseline] * 1e3:.3f}"]
    for name in PEER_COLUMNS:
        if name in result.medians:
            cells += [f"{result.medians[name] * 1e3:.3f}", f"**{result.ratio(name):.2f}x**"]
        else:
            cells += ["-", "-"]
    return f"| {result.scenario} | {result.mode} | {result.database} | " + " | ".join(cells) + " |"


def machine() -> str:
    import sqlalchemy

    cpus = os.cpu_count()
    return (
        f"{platform.processor() or platform.machine()}, {cpus} CPUs, {platform.system()} "
        f"{platform.release()}; Python {platform.python_version()}, SQLAlchemy "
        f"{sqlalchemy.__version__}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smaller sizes, fewer rounds")
    parser.add_argument("--db", action="append", choices=["sqlite", "postgresql"])
    parser.add_argument("--rounds", type=int, default=None)
    parser.add_argument("--write", type=Path, help="write the tables into this markdown file")
    args = parser.parse_args(argv)
    rounds = args.rounds or (3 if args.quick else 7)
    started = time.perf_counter()
    results: list[Result] = []
    http_lines: list[str] = []
    print(f"machine: {machine()}", flush=True)
    if left_out := peers.missing():
        print(f"(peers not installed, left out: {', '.join(left_out)}; pip install -e '.[bench]')")
    print(f"\n{HEADER}", flush=True)
    kinds = args.db or ["sqlite", "postgresql"]
    for kind in kinds:
        with database_url(kind) as url:
            if url is None:
                print(f"({kind}: no server available, skipped)")
                continue
            results.extend(run_core(kind, url, args.quick, rounds))
    peer_lines = [line for line in map(format_peer_row, results) if line is not None]
    print(f"\n{PEERS_HEADER}", flush=True)
    for line in peer_lines:
        print(line, flush=True)
    print(f"\n{HTTP_HEADER}", flush=True)
    for kind in kinds:
        with database_url(kind) as url:
            if url is not None:
                http_lines.extend(run_http_benchmarks(kind, url, args.quick))
    print(f"\ntook {time.perf_counter() - started:.0f} s")
    if args.write:
        write_report(args.write, "core", HEADER, [format_row(r) for r in results], rounds)
        write_report(args.write, "peers", PEERS_HEADER, peer_lines, rounds)
        write_report(args.write, "http", HTTP_HEADER, http_lines, 3)
    return 0


def write_report(path: Path, name: str, header: str, lines: list[str], rounds: int) -> None:
    text = path.read_text() if path.exists() else ""
    table = "\n".join([header, *lines])
    begin, end = f"<!-- {name}:begin -->", f"<!-- {name}:end -->"
    block = f"{begin}\nMachine: {machine()}. Medians of {rounds} rounds.\n\n{table}\n{end}"
    if begin in text and end in text:
        text = text[: text.index(begin)] + block + text[text.index(end) + len(end) :]
    else:
        text += "\n" + block + "\n"
    path.write_text(text)


if __name__ == "__main__":
    sys.exit(main())
