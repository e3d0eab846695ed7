"""The duo-orm command, run as a subprocess in a fresh project, on SQLite and PostgreSQL."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.persistent

USER_MODEL = """
from duo_orm import Mapped, String, mapped_column

from ..database import db


class User(db.Model):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(255), unique=True)
"""


def run(project: Path, url: str | None, *args: str) -> subprocess.CompletedProcess[str]:
    env = {key: value for key, value in os.environ.items() if key != "DATABASE_URL"}
    if url is not None:
        env["DATABASE_URL"] = url
    return subprocess.run(
        [sys.executable, "-m", "duo_orm", *args],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def versions(project: Path) -> list[Path]:
    return sorted((project / "db" / "migrations" / "versions").glob("*.py"))


def test_init_create_upgrade_check_change_downgrade(tmp_path: Path, url: str) -> None:
    project = tmp_path / "app"
    project.mkdir()
    assert "created  db/database.py" in ok(run(project, url, "init"))
    (project / "db" / "models" / "user.py").write_text(USER_MODEL)
    with (project / "db" / "models" / "__init__.py").open("a") as init:
        init.write("\nfrom .user import User\n")

    assert "created  db/migrations/versions/" in ok(
        run(project, url, "migration", "create", "add users")
    )
    [first] = versions(project)
    assert "create_table('users'" in first.read_text()
    assert "(head)" in ok(run(project, url, "migration", "upgrade"))
    assert "matches" in ok(run(project, url, "migration", "check"))

    model = project / "db" / "models" / "user.py"
    model.write_text(USER_MODEL + "    age: Mapped[int | None]\n")
    drift = run(project, url, "migration", "check")
    assert drift.returncode == 1 and "differ" in drift.stderr and "age" in drift.stderr

    ok(run(project, url, "migration", "create", "add age"))
    second = next(path for path in versions(project) if path != first)
    if url.startswith("sqlite"):
        assert "batch_alter_table" in second.read_text()  # SQLite cannot ALTER in place
    ok(run(project, url, "migration", "upgrade"))
    assert "matches" in ok(run(project, url, "migration", "check"))
    history = ok(run(project, url, "migration", "history"))
    assert "add users" in history and "add age" in history

    ok(run(project, url, "migration", "downgrade"))
    current = ok(run(project, url, "migration", "current"))
    assert first.name.split("_")[0] in current and "(head)" not in current
    assert run(project, url, "migration", "check").returncode == 1  # behind the models again
    ok(run(project, url, "migration", "downgrade", "base"))
    ok(run(project, url, "migration", "upgrade", "head"))


def test_init_is_idempotent_and_never_overwrites(tmp_path: Path) -> None:
    ok(run(tmp_path, None, "init"))
    database = tmp_path / "db" / "database.py"
    database.write_text("# mine\n" + database.read_text())
    again = ok(run(tmp_path, None, "init"))
    assert "skipped (exists)  db/database.py" in again and "created" not in again
    assert database.read_text().startswith("# mine")


def test_clear_errors(tmp_path: Path) -> None:
    nowhere = run(tmp_path, None, "migration", "upgrade")
    assert nowhere.returncode == 2 and "duo-orm init" in nowhere.stderr

    ok(run(tmp_path, None, "init"))
    empty = run(tmp_path, None, "migration", "create", "nothing")
    assert empty.returncode == 1 and "no models found" in empty.stderr

    (tmp_path / "db" / "models" / "user.py").write_text(USER_MODEL)
    with (tmp_path / "db" / "models" / "__init__.py").open("a") as init:
        init.write("\nfrom .user import User\n")
    down = run(tmp_path, "postgresql://duo@127.0.0.1:1/nowhere", "migration", "upgrade")
    assert down.returncode == 1 and "Could not connect to" in down.stderr
    assert "Traceback" not in down.stderr


def test_help_for_every_command(tmp_path: Path) -> None:
    commands = [[], ["init"], ["migration"]] + [
        ["migration", name]
        for name in ("create", "upgrade", "downgrade", "history", "current", "check")
    ]
    for command in commands:
        result = run(tmp_path, None, *command, "--help")
        assert result.returncode == 0 and "usage: duo-orm" in result.stdout, command


def test_console_script_is_installed() -> None:
    script = shutil.which("duo-orm", path=str(Path(sys.executable).parent))
    assert script is not None
    result = subprocess.run([script, "--help"], capture_output=True, text=True, check=False)
    assert result.returncode == 0 and "migration" in result.stdout
