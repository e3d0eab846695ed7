"""Per-test rollback (the pytest plugin) against dropping and creating tables per test.

python -m benchmarks.pytest_plugin [--tests 200] [--rounds 3] [--db sqlite|postgresql ...]
    [--write docs/performance.md]

Writes a small project (three tables) with N tests that each create 10 rows and read
them back, and runs it in a fresh pytest process twice per database: once isolated by
the plugin (one outer transaction per test, rolled back), once with an autouse fixture
that drops and creates the tables before each test. Reported: the wall time of each run
(process start and collection included, so the difference is the per-test cost),
median of ``--rounds`` runs. The database is reused across runs: each run starts
by dropping and creating the tables (the plugin at session start, the fixture per test).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

from .run import database_url, write_report

MODELS = """
import os

from duo_orm import Database, ForeignKey, Mapped, String, mapped_column

db = Database(os.environ.get("BENCH_URL", "sqlite:///unused.db"))


class User(db.Model):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(255), unique=True)


class Post(db.Model):
    __tablename__ = "posts"
    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    title: Mapped[str] = mapped_column(String(200))


class Tag(db.Model):
    __tablename__ = "tags"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(50), unique=True)
"""

TEST = """
import pytest

from models import User


@pytest.mark.parametrize("n", range({count}))
def test_ten_rows(n):
    for i in range(10):
        User.create(email=f"{{i}}@x.io")
    assert len(User.all()) == 10
"""

RECREATE_CONFTEST = """
import pytest

from models import db


@pytest.fixture(autouse=True)
def fresh_tables():
    db.drop_all()
    db.create_all()
"""


def run_project(folder: Path, url: str, mode: str, count: int) -> float:
    project = folder / mode
    project.mkdir()
    (project / "models.py").write_text(textwrap.dedent(MODELS))
    (project / "test_rows.py").write_text(textwrap.dedent(TEST.format(count=count)))
    if mode == "rollback":
        ini = '[tool.pytest.ini_options]\nduo_orm_database = ["models:db"]\n'
        (project / "pyproject.toml").write_text(ini)
        env = {**os.environ, "DUO_ORM_TEST_URL": url}
    else:
        (project / "pyproject.toml").write_text("[tool.pytest.ini_options]\n")
        (project / "conftest.py").write_text(textwrap.dedent(RECREATE_CONFTEST))
        env = {**os.environ, "BENCH_URL": url}
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:randomly"]
    started = time.perf_counter()
    result = subprocess.run(command, cwd=project, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if result.returncode != 0 or f"{count} passed" not in result.stdout:
        raise RuntimeError(f"{mode} run failed:\n{result.stdout}\n{result.stderr}")
    return elapsed


HEADER = (
    "| Database | Tests | Per-test rollback | Drop + create per test | Ratio |\n"
    "|---|---:|---:|---:|---:|"
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.pytest_plugin", description=__doc__)
    parser.add_argument("--tests", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3, help="runs per mode; the median counts")
    parser.add_argument("--db", action="append", choices=["sqlite", "postgresql"])
    parser.add_argument("--write", type=Path, help="write the table into this markdown file")
    args = parser.parse_args(argv)
    lines = []
    for kind in args.db or ["sqlite", "postgresql"]:
        runs: dict[str, list[float]] = {"rollback": [], "recreate": []}
        with database_url(kind) as url:
            if url is None:
                print(f"{kind}: no server available, skipped", file=sys.stderr)
                continue
            for _ in range(args.rounds):
                for mode in runs:  # interleaved, so drift hits both alike
                    with tempfile.TemporaryDirectory() as folder:
                        runs[mode].append(run_project(Path(folder), url, mode, args.tests))
        times = {mode: statistics.median(values) for mode, values in runs.items()}
        if times:
            rollback, recreate = times["rollback"], times["recreate"]
            lines.append(
                f"| {kind} | {args.tests} | {rollback:.2f} s | {recreate:.2f} s "
                f"| {recreate / rollback:.1f}x |"
            )
    print(HEADER)
    print("\n".join(lines))
    if args.write:
        write_report(args.write, "pytest-plugin", HEADER, lines, args.rounds)
    return 0


if __name__ == "__main__":
    sys.exit(main())
