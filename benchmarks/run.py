"""``make bench``: run every scenario and print the ratio tables (optionally into docs/).

python -m benchmarks.run [--quick] [--db sqlite|postgresql ...]
    [--only core|http|e2e|scaling|pagination ...]
    [--rounds N] [--e2e-seconds S] [--duo-orm-path PATH] [--write docs/performance.md]

``--only`` picks parts (repeatable; the first three by default): ``core`` (duo-orm against
hand-written SQLAlchemy on default engines, and the peers table), ``http`` (the adapters
against hand-written apps, in-process and under uvicorn) and ``e2e`` (the four FastAPI
apps under uvicorn). Two slow parts run only when named: ``scaling`` (read replicas on
PostgreSQL: the cost of routing and HTTP read throughput with and without a replica,
``benchmarks/scaling.py``) and ``pagination`` (page 5,000 of a 1,000,000-row table,
offset against keyset, ``benchmarks/pagination.py``). ``--write`` rewrites only the
tables of the parts that ran.
``--duo-orm-path PATH`` (or ``DUO_ORM_BENCH_PATH``) measures a second duo-orm checkout
beside this one, in the core and e2e tables (see ``benchmarks/checkout.py``):

    git worktree add /work/before <commit>
    python -m benchmarks.run --only core --only e2e --duo-orm-path /work/before
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import glob
import json
import os
import platform
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from duo_orm import Database

from . import checkout, core, e2e, peers
from .harness import Result, measure
from .http import DirectResult, HttpResult, run_direct, run_http
from .loopback import run_loopback


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
    from duo_orm_pytest.postgres import throwaway_database

    with throwaway_database() as url:
        yield url


HTTP_HEADER = (
    "| framework | route | database | duo-orm p50 ms | hand-written p50 ms | p50 ratio "
    "| A/A ratio (noise) | duo-orm p99 ms | hand-written p99 ms | duo-orm req/s "
    "| hand-written req/s |\n|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"
)
COPY = "hand-written (copy)"
CONCURRENCY = 10  # keep-alive connections in the loopback load


def http_rows(kind: str, results: list[HttpResult]) -> list[str]:
    """duo-orm against the hand-written app, and the hand-written app against its own copy."""
    by_key = {(r.framework, r.route, r.app): r for r in results}
    lines = []
    for framework, route in dict.fromkeys((r.framework, r.route) for r in results):
        ours, plain, copy = (
            by_key[(framework, route, app)] for app in ("duo-orm", "hand-written", COPY)
        )
        lines.append(
            f"| {framework} | {route} | {kind} | {ours.p50 * 1e3:.3f} | {plain.p50 * 1e3:.3f} | "
            f"**{ours.p50 / plain.p50:.2f}x** | {copy.p50 / plain.p50:.2f}x | "
            f"{ours.p99 * 1e3:.3f} | {plain.p99 * 1e3:.3f} | "
            f"{ours.per_second:.0f} | {plain.per_second:.0f} |"
        )
    return lines


DIRECT_HEADER = (
    "| framework | bare app us/request | bare app copy us/request | duo-orm us/request "
    "| adapter cost us/request |\n|---|---:|---:|---:|---:|"
)


def direct_rows(results: list[DirectResult]) -> list[str]:
    lines = []
    for result in results:
        ours, plain, copy = (result.microseconds[app] for app in ("duo-orm", "hand-written", COPY))
        lines.append(
            f"| {result.framework} | {plain:.2f} | {copy:.2f} | {ours:.2f} | "
            f"**{ours - plain:+.2f}** |"
        )
    return lines


def seeded(url: str) -> tuple[Database, Any]:
    db = Database(url)
    User = core.define(db)
    db.create_all()
    return db, User


def run_http_benchmarks(kind: str, url: str, quick: bool) -> tuple[list[str], list[str]]:
    """In-process HTTP rows, and (once, on SQLite) the bare-ASGI adapter cost rows."""
    db, User = seeded(url)

    async def go() -> tuple[list[HttpResult], list[DirectResult]]:
        try:
            direct = (
                await run_direct(db, User, 2_000, 3 if quick else 9) if kind == "sqlite" else []
            )
            return await run_http(db, User, requests=100 if quick else 300, rounds=3), direct
        finally:
            await db.disconnect()

    in_process, direct = asyncio.run(go())
    lines, direct_lines = http_rows(kind, in_process), direct_rows(direct)
    for line in lines:
        print(line, flush=True)
    return lines, direct_lines


def run_loopback_benchmarks(kind: str, url: str, quick: bool) -> list[str]:
    db, User = seeded(url)
    try:
        first_id = User.create(email="loopback@x.io", name="seed").id
    finally:
        db.disconnect()
    results = run_loopback(
        url,
        first_id,
        requests=300 if quick else 1_000,
        rounds=2 if quick else 3,
        concurrency=CONCURRENCY,
    )
    lines = http_rows(kind, results)
    for line in lines:
        print(line, flush=True)
    return lines


def run_core(kind: str, url: str, quick: bool, rounds: int, with_peers: bool) -> list[Result]:
    results: list[Result] = []
    db = Database(url)
    User = core.define(db)
    db.create_all()
    sync_peers = peers.sync_additions if with_peers else None
    for scenario in core.sync_scenarios(db, User, quick, sync_peers):
        medians = measure(scenario, rounds, None)
        results.append(Result(scenario.name, "sync", kind, medians))
        print(format_row(results[-1]), flush=True)
    loop = asyncio.new_event_loop()
    async_peers = peers.AsyncPeers(url)
    try:

        async def build() -> list[core.Scenario]:  # the async engine belongs to this loop
            if not with_peers:
                return core.async_scenarios(db, User, quick)
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


COLUMNS = ["duo-orm", "sqlalchemy-orm", core.SAME_ENGINE, "sqlalchemy-core"]
OTHER, OTHER_BASELINE = "other checkout", "other checkout's baseline"  # keys in Result.medians


def format_row(result: Result) -> str:
    cells = [
        f"{result.medians[name] * 1e3:.3f}" if name in result.medians else "-" for name in COLUMNS
    ]
    cells.append(f"**{result.ratio('duo-orm'):.2f}x**")
    if OTHER in result.medians:
        ratio = result.medians[OTHER] / result.medians[OTHER_BASELINE]
        cells += [f"{result.medians[OTHER] * 1e3:.3f}", f"**{ratio:.2f}x**"]
    return f"| {result.scenario} | {result.mode} | {result.database} | " + " | ".join(cells) + " |"


def core_header(other: str | None) -> str:
    """The default engines are ``create_engine(url)`` / ``create_async_engine(url)``."""
    header = (
        "| scenario | mode | database | duo-orm ms/op | SQLAlchemy ORM, default engine ms/op "
        "| SQLAlchemy ORM, duo-orm's engine ms/op | SQLAlchemy Core, default engine ms/op "
        "| duo-orm / ORM |"
    )
    line = "\n|---|---|---|---:|---:|---:|---:|---:|"
    if other:
        header += f" {checkout.label(other)} ms/op | {checkout.label(other)} / its run's ORM |"
        line += "---:|---:|"
    return header + line


# the peers table: each implementation's ms/op and its ratio to the same run's ORM baseline
PEER_COLUMNS = ["duo-orm", *peers.LABELS]
PEERS_HEADER = (
    "| scenario | mode | database | SQLAlchemy ORM, default engine ms/op | "
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


PARTS = ("core", "http", "e2e")
OPTIONAL_PARTS = ("scaling", "pagination")  # slow to set up: only when asked for


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smaller sizes, fewer rounds")
    parser.add_argument("--db", action="append", choices=["sqlite", "postgresql"])
    parser.add_argument("--rounds", type=int, default=None)
    parser.add_argument("--write", type=Path, help="write the tables into this markdown file")
    parser.add_argument(
        "--only",
        action="append",
        choices=PARTS + OPTIONAL_PARTS,
        help="run only this part (repeatable): core (and peers), http, e2e, scaling, pagination",
    )
    parser.add_argument(
        "--e2e-seconds",
        type=float,
        default=None,
        help="seconds each app is loaded per end-to-end round (default 4; 1 with --quick)",
    )
    parser.add_argument("--no-peers", action="store_true", help="core: leave the peers out")
    parser.add_argument("--json", type=Path, help="core: also write the medians as JSON")
    parser.add_argument(
        "--duo-orm-path",
        default=os.environ.get("DUO_ORM_BENCH_PATH") or None,
        help="another duo-orm checkout measured beside this one (or DUO_ORM_BENCH_PATH)",
    )
    args = parser.parse_args(argv)
    rounds = args.rounds or (3 if args.quick else 5)
    kinds = args.db or ["sqlite", "postgresql"]
    parts = args.only or list(PARTS)
    other = str(Path(args.duo_orm_path).resolve()) if args.duo_orm_path else None
    started = time.perf_counter()
    print(f"machine: {machine()}", flush=True)
    tables: list[tuple[str, str, list[str], int]] = []  # name, header, rows, rounds
    for part in parts:
        part_started = time.perf_counter()
        if part == "core":
            found, results = core_tables(kinds, args.quick, rounds, other, not args.no_peers)
            tables += found
            if args.json:  # what a parent run reads back (benchmarks/checkout.py)
                rows = [vars(result) for result in results]
                args.json.write_text(json.dumps(rows, indent=1))
        elif part == "http":
            tables += http_tables(kinds, args.quick)
        elif part == "pagination":
            tables += pagination_tables(kinds, args.rounds or (3 if args.quick else 7))
        elif part == "scaling":  # PostgreSQL only: a primary and its streaming standby
            from . import scaling  # imported when asked for: it needs duo-orm's replicas

            tables += scaling.scaling_tables(args.quick, args.rounds or 3)
        else:
            seconds = args.e2e_seconds or (1.0 if args.quick else 4.0)
            e2e_rounds = args.rounds or 3
            tables += e2e_tables(kinds, e2e_rounds, seconds, other)
        print(f"({part}: {time.perf_counter() - part_started:.0f} s)", flush=True)
    print(f"\ntook {time.perf_counter() - started:.0f} s")
    if args.write:
        for name, header, lines, table_rounds in tables:
            write_report(args.write, name, header, lines, table_rounds)
    return 0


def core_tables(
    kinds: list[str], quick: bool, rounds: int, other: str | None, with_peers: bool = True
) -> tuple[list[tuple[str, str, list[str], int]], list[Result]]:
    if with_peers and (left_out := peers.missing()):
        print(f"(peers not installed, left out: {', '.join(left_out)}; pip install --group bench)")
    header = core_header(other)
    print(f"\n{header}", flush=True)
    results: list[Result] = []
    for kind in kinds:
        with database_url(kind) as url:
            if url is None:
                print(f"({kind}: no server available, skipped)")
                continue
            found = run_core(kind, url, quick, rounds, with_peers)
        if other:
            print(f"({kind}: the core scenarios again with duo-orm from {other})", flush=True)
            theirs = checkout.core_medians(other, kind, quick, rounds)
            for result in found:
                medians = theirs.get((result.scenario, result.mode), {})
                if "duo-orm" in medians:
                    result.medians[OTHER] = medians["duo-orm"]
                    result.medians[OTHER_BASELINE] = medians[result.baseline]
            print("\n".join(format_row(r) for r in found), flush=True)
        results.extend(found)
    tables = [("core", header, [format_row(r) for r in results], rounds)]
    if with_peers:
        peer_lines = [line for line in map(format_peer_row, results) if line is not None]
        print(f"\n{PEERS_HEADER}", flush=True)
        for line in peer_lines:
            print(line, flush=True)
        tables.append(("peers", PEERS_HEADER, peer_lines, rounds))
    return tables, results


def http_tables(kinds: list[str], quick: bool) -> list[tuple[str, str, list[str], int]]:
    print(f"\nIn-process (httpx ASGI transport), one request at a time:\n{HTTP_HEADER}", flush=True)
    http_lines: list[str] = []
    direct_lines: list[str] = []
    for kind in kinds:
        with database_url(kind) as url:
            if url is not None:
                lines, direct = run_http_benchmarks(kind, url, quick)
                http_lines.extend(lines)
                direct_lines.extend(direct)
    print(f"\nThe DB-less route as a bare ASGI call:\n{DIRECT_HEADER}", flush=True)
    for line in direct_lines:
        print(line, flush=True)
    print(
        f"\nuvicorn on 127.0.0.1, {CONCURRENCY} keep-alive connections:\n{HTTP_HEADER}", flush=True
    )
    loopback_lines: list[str] = []
    for kind in kinds:
        with database_url(kind) as url:
            if url is not None:
                loopback_lines.extend(run_loopback_benchmarks(kind, url, quick))
    return [
        ("http", HTTP_HEADER, http_lines, 3),
        ("direct", DIRECT_HEADER, direct_lines, 3 if quick else 9),
        ("loopback", HTTP_HEADER, loopback_lines, 2 if quick else 3),
    ]


def pagination_tables(kinds: list[str], runs: int) -> list[tuple[str, str, list[str], int]]:
    # imported when asked for: it needs duo_orm.web.listing, which an older checkout
    # measured with --duo-orm-path may not have
    from . import pagination

    print(f"\nPage {pagination.PAGE:,} of {pagination.ROWS:,} rows:\n{pagination.HEADER}")
    lines: list[str] = []
    for kind in kinds:
        with database_url(kind) as url:
            if url is not None:
                lines += pagination.rows(kind, url, runs)
    return [("pagination", pagination.HEADER, lines, runs)]


def e2e_tables(
    kinds: list[str], rounds: int, seconds: float, other: str | None
) -> list[tuple[str, str, list[str], int]]:
    apps = e2e.labels(other)
    header = e2e.header(apps)
    print(
        f"\nEnd to end: uvicorn on 127.0.0.1, {e2e.CONCURRENCY} keep-alive connections, "
        f"{seconds:g} s per app and round:\n{header}",
        flush=True,
    )
    lines: list[str] = []
    for kind in kinds:
        with database_url(kind) as url:
            if url is None:
                continue
            found = e2e.rows(
                e2e.run_e2e(kind, url, rounds=rounds, seconds=seconds, duo_orm_path=other), apps
            )
            for line in found:
                print(line, flush=True)
            lines += found
    return [("e2e", header, lines, rounds)]


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
