"""The duo-orm command, run as a subprocess in a fresh project, on SQLite and PostgreSQL."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest
from sqlalchemy import inspect

from duo_orm import Database
from duo_orm.cli import main

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
        for name in (
            "create",
            "upgrade",
            "downgrade",
            "history",
            "current",
            "heads",
            "stamp",
            "merge",
            "check",
        )
    ]
    for command in commands:
        result = run(tmp_path, None, *command, "--help")
        assert result.returncode == 0 and "usage: duo-orm" in result.stdout, command


def test_console_script_is_installed() -> None:
    script = shutil.which("duo-orm", path=str(Path(sys.executable).parent))
    assert script is not None
    result = subprocess.run([script, "--help"], capture_output=True, text=True, check=False)
    assert result.returncode == 0 and "migration" in result.stdout


def test_version_is_the_installed_one(tmp_path: Path) -> None:
    assert ok(run(tmp_path, None, "--version")).strip() == f"duo-orm {version('duo-orm')}"


def project_with(tmp_path: Path, url: str, model: str) -> Path:
    project = tmp_path / "app"
    project.mkdir()
    ok(run(project, url, "init"))
    (project / "db" / "models" / "user.py").write_text(model)
    with (project / "db" / "models" / "__init__.py").open("a") as init:
        init.write("\nfrom .user import Team, User\n")
    return project


CONSTRAINED = """
from duo_orm import ForeignKey, Mapped, String, mapped_column

from ..database import db


class Team(db.Model):
    __tablename__ = "teams"
    id: Mapped[int] = mapped_column(primary_key=True)


class User(db.Model):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(255), unique=True)
    nickname: Mapped[str] = mapped_column(String(50), index=True)
    team_id: Mapped[int] = mapped_column(ForeignKey("teams.id"))
"""


def test_removed_and_added_constraints_are_migrated(tmp_path: Path, url: str) -> None:
    """Removing ``unique=True`` (or an index, or a foreign key) is a difference to
    ``check`` and a DROP in the generated migration, on SQLite (batch) and PostgreSQL."""
    project = project_with(tmp_path, url, CONSTRAINED)
    ok(run(project, url, "migration", "create", "add users"))
    ok(run(project, url, "migration", "upgrade"))
    model = project / "db" / "models" / "user.py"
    model.write_text(
        CONSTRAINED.replace(", unique=True", "")
        .replace(", index=True", "")
        .replace('mapped_column(ForeignKey("teams.id"))', "mapped_column()")
    )

    drift = run(project, url, "migration", "check")
    assert drift.returncode == 1, drift.stdout + drift.stderr
    for name in ("uq_users_email", "ix_users_nickname", "fk_users_team_id_teams"):
        assert name in drift.stderr
    ok(run(project, url, "migration", "create", "drop constraints"))
    [dropping] = [path for path in versions(project) if "drop_constraints" in path.name]
    upgrade = dropping.read_text().split("def downgrade")[0]
    assert "drop_constraint(batch_op.f('uq_users_email'), type_='unique')" in upgrade or (
        "drop_constraint(op.f('uq_users_email'), 'users', type_='unique')" in upgrade
    )
    assert "ix_users_nickname" in upgrade and "fk_users_team_id_teams" in upgrade
    assert "Running upgrade" in ok(run(project, url, "migration", "upgrade"))
    assert "matches" in ok(run(project, url, "migration", "check"))
    assert constraints(url) == ([], [], [])

    model.write_text(CONSTRAINED)  # and back: added constraints are seen as well
    assert run(project, url, "migration", "check").returncode == 1
    ok(run(project, url, "migration", "create", "add constraints"))
    ok(run(project, url, "migration", "upgrade"))
    assert "matches" in ok(run(project, url, "migration", "check"))
    assert constraints(url) == (
        ["uq_users_email"],
        ["ix_users_nickname"],
        ["fk_users_team_id_teams"],
    )


def constraints(url: str) -> tuple[list[str | None], list[str | None], list[str | None]]:
    """The users table's unique constraints, indexes and foreign keys, as the database has them."""
    db = Database(url)
    try:
        found = inspect(db.sync_engine)
        return (
            [uq["name"] for uq in found.get_unique_constraints("users")],
            [
                ix["name"]
                for ix in found.get_indexes("users")
                if "duplicates_constraint" not in ix  # PostgreSQL: a unique constraint's own
            ],
            [fk["name"] for fk in found.get_foreign_keys("users")],
        )
    finally:
        db.disconnect()


def table_names(url: str) -> list[str]:
    db = Database(url)
    try:
        return inspect(db.sync_engine).get_table_names()
    finally:
        db.disconnect()


CHECKED = """
from sqlalchemy import CheckConstraint

from duo_orm import Mapped, mapped_column

from ..database import db


class Team(db.Model):
    __tablename__ = "teams"
    id: Mapped[int] = mapped_column(primary_key=True)


class User(db.Model):
    __tablename__ = "users"
    __table_args__ = (
        CheckConstraint("age >= 0"),
        CheckConstraint("age < 200", name="sane_age"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    age: Mapped[int]
"""


def test_removed_and_added_check_constraints_are_migrated(tmp_path: Path, url: str) -> None:
    project = project_with(tmp_path, url, CHECKED)
    ok(run(project, url, "migration", "create", "add users"))
    ok(run(project, url, "migration", "upgrade"))
    assert "matches" in ok(run(project, url, "migration", "check"))
    [unnamed] = [name for name in check_names(url) if name != "sane_age"]
    assert unnamed.startswith("ck_users_")  # named by the convention

    model = project / "db" / "models" / "user.py"
    model.write_text(CHECKED.replace('CheckConstraint("age >= 0"),', ""))
    drift = run(project, url, "migration", "check")
    assert drift.returncode == 1 and unnamed in drift.stderr
    ok(run(project, url, "migration", "create", "drop check"))
    ok(run(project, url, "migration", "upgrade"))
    assert check_names(url) == ["sane_age"]
    assert "matches" in ok(run(project, url, "migration", "check"))

    model.write_text(CHECKED)
    assert run(project, url, "migration", "check").returncode == 1
    ok(run(project, url, "migration", "create", "add check"))
    ok(run(project, url, "migration", "upgrade"))
    assert sorted(check_names(url)) == sorted([unnamed, "sane_age"])


def check_names(url: str) -> list[str | None]:
    db = Database(url)
    try:
        return [ck["name"] for ck in inspect(db.sync_engine).get_check_constraints("users")]
    finally:
        db.disconnect()


def test_stamp_heads_merge_and_offline_sql(tmp_path: Path, url: str) -> None:
    project = project_with(tmp_path, url, CONSTRAINED)
    ok(run(project, url, "migration", "create", "add users"))
    [first] = versions(project)
    revision = first.name.split("_")[0]

    sql = ok(run(project, url, "migration", "upgrade", "--sql"))
    assert "CREATE TABLE users" in sql and "uq_users_email" in sql
    assert "users" not in table_names(url)  # offline: nothing ran
    down = ok(run(project, url, "migration", "downgrade", "--sql", f"{revision}:base"))
    assert "DROP TABLE users" in down

    stamped = ok(run(project, url, "migration", "stamp", "head"))  # tables made elsewhere
    assert f"Running stamp_revision  -> {revision}" in stamped
    assert f"{revision} (head)" in ok(run(project, url, "migration", "current"))
    ok(run(project, url, "migration", "stamp", "base"))

    # two branches each add a migration after the first: two heads
    ok(run(project, url, "migration", "create", "--empty", "branch a"))
    ok(run(project, url, "migration", "create", "--empty", "branch b"))
    [branch_b] = [path for path in versions(project) if "branch_b" in path.name]
    source = branch_b.read_text()
    parent = source.split("down_revision: str | Sequence[str] | None = ")[1].splitlines()[0]
    branch_b.write_text(source.replace(f"= {parent}", f"= {revision!r}"))
    # Same size, maybe the same second: the bytecode cache would still hold the old parent.
    shutil.rmtree(branch_b.parent / "__pycache__", ignore_errors=True)
    heads = ok(run(project, url, "migration", "heads")).splitlines()
    assert len(heads) == 2
    two = run(project, url, "migration", "upgrade")
    assert two.returncode == 1 and "Multiple head" in two.stderr and "Traceback" not in two.stderr

    assert "created  db/migrations/versions/" in ok(
        run(project, url, "migration", "merge", "-m", "join branches")
    )
    assert len(ok(run(project, url, "migration", "heads")).splitlines()) == 1
    steps = ok(run(project, url, "migration", "upgrade"))
    assert f"Running upgrade  -> {revision}, add users" in steps
    assert "branch a" in steps and "branch b" in steps and "join branches" in steps
    lone = run(project, url, "migration", "merge")
    assert lone.returncode == 1 and "nothing to merge" in lone.stderr


MOVE_OVER = """
def upgrade() -> None:
    # SQLite made these tables' constraints unnamed: copy each table, letting the
    # convention name them (batch mode recreates the table).
    for table in ("teams", "users"):
        with op.batch_alter_table(table, recreate="always", naming_convention=NAMING_CONVENTION):
            pass


def downgrade() -> None:
    pass
"""


def test_a_database_made_before_the_convention_moves_over(tmp_path: Path, url: str) -> None:
    project = project_with(tmp_path, url, CONSTRAINED)
    database = project / "db" / "database.py"
    database.write_text(database.read_text().replace('"))', '"), naming_convention=None)'))
    ok(run(project, url, "migration", "create", "before"))
    ok(run(project, url, "migration", "upgrade"))
    db = Database(url)
    with db.sync_engine.begin() as connection:  # rows that point at each other
        connection.exec_driver_sql("INSERT INTO teams (id) VALUES (1)")
        connection.exec_driver_sql(
            "INSERT INTO users (id, email, nickname, team_id) VALUES (1, 'a@x.io', 'a', 1)"
        )
    db.disconnect()
    database.write_text(database.read_text().replace(", naming_convention=None", ""))

    drift = run(project, url, "migration", "check")
    assert drift.returncode == 1 and "uq_users_email" in drift.stderr
    ok(run(project, url, "migration", "create", "name constraints"))
    [moving] = [path for path in versions(project) if "name_constraints" in path.name]
    if url.startswith("sqlite"):  # what docs/migrations.md says to write instead
        source = moving.read_text()
        source = source[: source.index("\ndef upgrade")] + MOVE_OVER
        source = source.replace(
            "from alembic import op\n",
            "from alembic import op\n\nfrom duo_orm import NAMING_CONVENTION\n",
        )
        moving.write_text(source)
    ok(run(project, url, "migration", "upgrade"))
    assert "matches" in ok(run(project, url, "migration", "check"))
    assert constraints(url) == (
        ["uq_users_email"],
        ["ix_users_nickname"],
        ["fk_users_team_id_teams"] if url.startswith("sqlite") else ["users_team_id_fkey"],
    )
    db = Database(url)
    with db.sync_engine.connect() as connection:  # the rows came through the copy
        assert connection.exec_driver_sql("SELECT team_id FROM users").scalar_one() == 1
    db.disconnect()


def test_sqlite_migration_that_breaks_references_is_rolled_back(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'app.db'}"
    project = project_with(tmp_path, url, CONSTRAINED)
    ok(run(project, url, "migration", "create", "add users"))
    ok(run(project, url, "migration", "upgrade"))
    db = Database(url)
    with db.sync_engine.begin() as connection:
        connection.exec_driver_sql("INSERT INTO teams (id) VALUES (1)")
        connection.exec_driver_sql(
            "INSERT INTO users (id, email, nickname, team_id) VALUES (1, 'a@x.io', 'a', 1)"
        )
    ok(run(project, url, "migration", "create", "--empty", "delete teams"))
    [deleting] = [path for path in versions(project) if "delete_teams" in path.name]
    deleting.write_text(
        deleting.read_text().replace(
            "def upgrade() -> None:\n    pass",
            'def upgrade() -> None:\n    op.execute("DELETE FROM teams")',
        )
    )
    broken = run(project, url, "migration", "upgrade")
    assert broken.returncode == 1 and "point nowhere in users" in broken.stderr
    with db.sync_engine.connect() as connection:  # all or nothing: the team is still there
        assert connection.exec_driver_sql("SELECT count(*) FROM teams").scalar_one() == 1
    assert "(head)" not in ok(run(project, url, "migration", "current"))
    db.disconnect()


# -- [tool.duo-orm] in pyproject.toml, init --dir (duo-orm 0.1's settings) -------------


def test_init_dir_is_recorded_and_migrations_follow_the_settings(tmp_path: Path, url: str) -> None:
    project = tmp_path / "app"
    project.mkdir()
    pyproject = project / "pyproject.toml"
    pyproject.write_text('[project]\nname = "app"')  # no final newline: still valid after
    out = ok(run(project, url, "init", "--dir", "src/app/store"))
    assert "created  src/app/store/database.py" in out
    assert 'recorded  pyproject.toml [tool.duo-orm] duo_orm_dir = "src/app/store"' in out
    assert pyproject.read_text().startswith('[project]\nname = "app"\n')
    with pyproject.open("a") as settings:
        settings.write('version_table = "app_schema"\n')  # the table init appended is last
    package = project / "src" / "app" / "store"
    (package / "models" / "user.py").write_text(USER_MODEL)
    with (package / "models" / "__init__.py").open("a") as init:
        init.write("\nfrom .user import User\n")

    ok(run(project, url, "migration", "create", "add users"))  # no --dir: read from pyproject
    assert len(list((package / "migrations" / "versions").glob("*.py"))) == 1
    ok(run(project, url, "migration", "upgrade"))
    assert set(table_names(url)) == {"users", "app_schema"}  # no alembic_version
    assert "the database matches" in ok(
        run(project, url, "migration", "check", "--dir", "src/app/store")
    )
    assert "skipped (exists)  src/app/store/database.py" in ok(run(project, url, "init"))


@pytest.mark.parametrize(
    ("pyproject", "args", "message"),
    [
        ("", ["init", "--dir", "../elsewhere"], "cannot be imported as a Python package"),
        ("", ["init", "--dir", "/abs/db"], "relative"),
        ("[tool.duo-orm]\ndb_dir = 'x'\n", ["init"], "unknown key 'db_dir'"),
        ("[tool.duo-orm]\nversion_table = 'a b'\n", ["migration", "history"], "version_table"),
        ("[tool.duo-orm]\nduo_orm_dir = 'db'\n", ["init", "--dir", "store"], "by hand"),
        ("[tool.duo-orm\n", ["init"], "not valid TOML"),
    ],
)
def test_bad_settings_are_usage_errors(
    tmp_path: Path,
    pyproject: str,
    args: list[str],
    message: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    if pyproject:
        (tmp_path / "pyproject.toml").write_text(pyproject)
    assert main(["--project", str(tmp_path), *args]) == 2  # in-process: these never reach Alembic
    assert message in capsys.readouterr().err
    assert not (tmp_path / "store").exists() and not (tmp_path / "db").exists()
