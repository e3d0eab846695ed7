"""``make fuzz``: schemathesis against the three example apps, served by uvicorn on 127.0.0.1.

``python -m tests.fuzz_examples [--db sqlite|postgresql ...] [--max-examples N]``

Each example runs in its own uvicorn process on a fresh database (a temporary SQLite
file, or a new database on a throwaway PostgreSQL server). schemathesis reads the
app's OpenAPI document (the Starlette example has none of its own: it serves the
FastAPI example's API, so that document describes it) and checks that no response
is a 5xx and that every response matches the status codes, content types and
schemas documented for it. The server's log is searched for ERROR lines and
tracebacks afterwards. Exit status 0 only if every run is clean.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
APPS = {
    "fastapi": ("examples.fastapi_app.main:app", "/openapi.json"),
    "starlette": ("examples.starlette_app.main:app", None),  # described by FastAPI's document
    "litestar": ("examples.litestar_app.main:app", "/schema/openapi.json"),
}
CHECKS = ",".join(
    [
        "not_a_server_error",
        "status_code_conformance",
        "content_type_conformance",
        "response_schema_conformance",
    ]
)


@dataclass
class Outcome:
    framework: str
    database: str
    exit_code: int
    summary: str
    server_errors: list[str]

    @property
    def clean(self) -> bool:
        return self.exit_code == 0 and not self.server_errors


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", action="append", choices=["sqlite", "postgresql"])
    parser.add_argument("--framework", action="append", choices=list(APPS))
    parser.add_argument("--max-examples", type=int, default=100)
    args = parser.parse_args(argv)
    schemathesis = shutil.which("schemathesis", path=str(Path(sys.executable).parent))
    if schemathesis is None:
        raise SystemExit("schemathesis is not installed here: `make fuzz` installs it")
    outcomes = []
    for database in args.db or ["sqlite", "postgresql"]:
        with database_urls(database) as next_url:
            for framework in args.framework or list(APPS):
                outcome = fuzz(schemathesis, framework, database, next_url(), args.max_examples)
                outcomes.append(outcome)
                print(report_line(outcome), flush=True)
    print("\n| framework | database | schemathesis | server errors logged |")
    print("|---|---|---|---|")
    for outcome in outcomes:
        print(report_line(outcome))
    return 0 if all(outcome.clean for outcome in outcomes) else 1


def report_line(outcome: Outcome) -> str:
    verdict = "passed" if outcome.exit_code == 0 else f"FAILED ({outcome.exit_code})"
    return (
        f"| {outcome.framework} | {outcome.database} | {verdict}: {outcome.summary} "
        f"| {len(outcome.server_errors)} |"
    )


@contextmanager
def database_urls(database: str) -> Iterator[Callable[[], str]]:
    """A function that hands out a fresh, empty database URL per app."""
    if database == "sqlite":
        folder = Path(tempfile.mkdtemp(prefix="duo-orm-fuzz-"))
        names = iter(range(1000))
        try:
            yield lambda: f"sqlite:///{folder / f'fuzz{next(names)}.db'}"
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        return
    from tests.postgres_server import DatabaseFactory, postgres_server

    with postgres_server() as admin_url:
        factory = DatabaseFactory(admin_url)
        try:
            yield lambda: factory.create().set(drivername="postgresql").render_as_string(False)
        finally:
            factory.close()


def fuzz(schemathesis: str, framework: str, database: str, url: str, examples: int) -> Outcome:
    target, schema_path = APPS[framework]
    port = free_port()
    log = Path(tempfile.mkstemp(prefix=f"fuzz-{framework}-", suffix=".log")[1])
    env = {**os.environ, "DATABASE_URL": url}
    with log.open("w") as log_file:
        server = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", target, "--host", "127.0.0.1", "--port", str(port)],
            cwd=ROOT,
            env=env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_for_port(port, server)
        base = f"http://127.0.0.1:{port}"
        schema = f"{base}{schema_path}" if schema_path else fastapi_schema_file(url)
        run = subprocess.run(
            [
                schemathesis,
                "run",
                schema,
                "--url",
                base,
                "--checks",
                CHECKS,
                "--max-examples",
                str(examples),
                "--workers",
                "1",
                "--seed",
                "1",
                "--request-timeout",
                "30",
                "--no-color",
            ],
            cwd=tempfile.mkdtemp(prefix="duo-orm-fuzz-run-"),  # its cache stays out of the repo
            capture_output=True,
            text=True,
            timeout=1800,
            check=False,
        )
    finally:
        server.terminate()
        server.wait(timeout=30)
    output = run.stdout + run.stderr
    summary = next(
        (line.strip("= ").strip() for line in reversed(output.splitlines()) if " in " in line),
        "no summary",
    )
    generated = re.search(r"(\d+) generated", output)
    if generated:
        summary = f"{generated.group(1)} requests, {summary}"
    if run.returncode != 0:
        print(output[-6000:], file=sys.stderr)
    errors = [
        line
        for line in log.read_text().splitlines()
        if line.startswith("ERROR") or "Traceback" in line
    ]
    return Outcome(framework, database, run.returncode, summary, errors)


def fastapi_schema_file(url: str) -> str:
    """The FastAPI example's OpenAPI document, which also describes the Starlette example."""
    code = "import json, examples.fastapi_app.main as m; print(json.dumps(m.app.openapi()))"
    text = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={**os.environ, "DATABASE_URL": url},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    path = Path(tempfile.mkstemp(prefix="fuzz-openapi-", suffix=".json")[1])
    path.write_text(json.dumps(json.loads(text)))
    return str(path)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, server: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"the app exited with {server.returncode} before serving")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise SystemExit(f"the app did not listen on port {port} within 30 s")


if __name__ == "__main__":
    raise SystemExit(main())
