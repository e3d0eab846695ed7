"""The ``duo-orm`` command: scaffold a project and run its Alembic migrations.

    duo-orm init [--dir src/app/db]
    duo-orm migration create "add users"
    duo-orm migration upgrade [REV] [--sql] | downgrade [REV] [--sql]
    duo-orm migration history | current | heads | check
    duo-orm migration stamp REV | merge -m "merge heads"

The project is the ``db/`` package in the current directory (or ``--project``);
pyproject.toml's ``[tool.duo-orm]`` can name another folder (``duo_orm_dir``, which
``init --dir`` records) and Alembic's version table (``version_table``).
The database URL is the one ``db/database.py`` builds (it reads DATABASE_URL),
unless ``--url`` names another.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import TYPE_CHECKING, TextIO, TypeVar

from ._settings import Settings, check_directory, read_settings, remember_directory
from .exceptions import ConfigurationError, DuoOrmError
from .scaffold import init_project

if TYPE_CHECKING:
    from alembic.config import Config

    from .database import Database


T = TypeVar("T")
DIR_HELP = "the db package's folder (default: pyproject.toml's [tool.duo-orm] duo_orm_dir, or db)"


class CommandFailed(Exception):
    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "run"):
        parser.print_help()
        return 2
    try:
        _run(args)
    except CommandFailed as exc:
        print(f"duo-orm: {exc}", file=sys.stderr)
        return exc.exit_code
    return 0


def _run(args: argparse.Namespace) -> None:
    """Run the command; Alembic's own refusals (two heads, bad revision) are one line."""
    if not getattr(args, "uses_alembic", False):
        args.run(args)
        return
    from alembic.util import CommandError

    try:
        args.run(args)
    except CommandError as exc:
        raise CommandFailed(str(exc)) from None


def installed_version() -> str:
    """The version pip installed (package metadata), not a constant that can drift."""
    try:
        return version("duo-orm")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="duo-orm", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--project", type=Path, default=Path.cwd(), help="folder holding db/ (default: here)"
    )
    parser.add_argument("--version", action="version", version=f"duo-orm {installed_version()}")
    commands = parser.add_subparsers(title="commands", metavar="COMMAND")

    init = commands.add_parser(
        "init",
        help="create db/ (database.py, models/, schemas/, migrations/); never overwrites",
        description="Create the db/ package and its Alembic environment. Existing files "
        "are kept and reported as skipped, so it is safe to run again.",
    )
    init.add_argument("--dir", help=DIR_HELP + "; recorded in pyproject.toml")
    init.set_defaults(run=_init)

    migration = commands.add_parser(
        "migration", help="create and apply migrations (Alembic)", description="Migrations."
    )
    migration.add_argument("--url", help="database URL (default: the one db/database.py builds)")
    migration.add_argument("--dir", help=DIR_HELP)
    steps = migration.add_subparsers(title="migration commands", metavar="COMMAND")

    def step(
        name: str, help_text: str, run: Callable[[argparse.Namespace], None]
    ) -> argparse.ArgumentParser:
        sub = steps.add_parser(name, help=help_text, description=help_text)
        for option in ("--url", "--dir"):  # also accepted after the command's name
            sub.add_argument(option, help=argparse.SUPPRESS, default=argparse.SUPPRESS)
        sub.set_defaults(run=run, uses_alembic=True)
        return sub

    def offline(sub: argparse.ArgumentParser) -> None:
        sub.add_argument(
            "--sql",
            action="store_true",
            help="print the SQL instead of running it (offline: the database is not touched)",
        )

    create = step("create", "autogenerate a migration from the models", _create)
    create.add_argument("message", help='what it does, e.g. "add users"')
    create.add_argument("--empty", action="store_true", help="write an empty migration")
    upgrade = step("upgrade", "apply migrations up to REV (default: head)", _upgrade)
    upgrade.add_argument("revision", nargs="?", default="head")
    offline(upgrade)
    downgrade = step(
        "downgrade",
        "revert migrations down to REV (default: -1; with --sql give FROM:TO, e.g. head:base)",
        _downgrade,
    )
    downgrade.add_argument("revision", nargs="?", default="-1")
    offline(downgrade)
    step("history", "list the migrations", _history)
    step("current", "show the revision the database is at", _current)
    heads = step("heads", "list the newest migrations (more than one: merge them)", _heads)
    heads.add_argument("-v", "--verbose", action="store_true", help="show each head in full")
    stamp = step(
        "stamp",
        "record REV as the database's revision without running any migration",
        _stamp,
    )
    stamp.add_argument("revision", help="a revision id, head or base")
    offline(stamp)
    merge = step("merge", "write a migration that joins the current heads into one", _merge)
    merge.add_argument("-m", "--message", default="merge heads", help="what it merges")
    step(
        "check",
        "exit 1 when the models and the database differ (for CI)",
        _check,
    )
    return parser


# -- commands -------------------------------------------------------------------


def _init(args: argparse.Namespace) -> None:
    root = args.project.resolve()
    settings = _settings(root)
    directory = _directory(args, settings)
    recorded = _configured(lambda: remember_directory(root, directory, settings))
    for path, created in init_project(root, directory):
        print(f"{'created' if created else 'skipped (exists)'}  {path}")
    if recorded:
        print(f'recorded  pyproject.toml [tool.duo-orm] duo_orm_dir = "{directory}"')


def _create(args: argparse.Namespace) -> None:
    from alembic import command

    config, db = _alembic(args)
    if not args.empty and not db.metadata.tables:
        raise CommandFailed(
            "no models found: db.Model has no tables. Import your model modules in "
            "db/models/__init__.py."
        )
    _reachable(db, args)
    scripts = command.revision(config, message=args.message, autogenerate=not args.empty)
    _created(args, scripts if isinstance(scripts, list) else [scripts])


def _upgrade(args: argparse.Namespace) -> None:
    from alembic import command

    _migrate(args, command.upgrade)


def _downgrade(args: argparse.Namespace) -> None:
    from alembic import command

    _migrate(args, command.downgrade)


def _stamp(args: argparse.Namespace) -> None:
    from alembic import command

    _migrate(args, command.stamp)


def _migrate(args: argparse.Namespace, step: Callable[..., None]) -> None:
    """Run upgrade, downgrade or stamp, showing each step; ``--sql`` only prints the SQL."""
    from alembic import command

    config, db = _alembic(args)
    if args.sql:  # the SQL goes to stdout, so the progress lines go to stderr
        with _progress(sys.stderr):
            step(config, args.revision, sql=True)
        return
    _reachable(db, args)
    with _progress(sys.stdout):
        step(config, args.revision)
    command.current(config)


def _heads(args: argparse.Namespace) -> None:
    from alembic import command

    config, _ = _alembic(args)
    command.heads(config, verbose=args.verbose)


def _merge(args: argparse.Namespace) -> None:
    from alembic import command
    from alembic.script import ScriptDirectory

    config, _ = _alembic(args)
    heads = ScriptDirectory.from_config(config).get_heads()
    if len(heads) < 2:
        raise CommandFailed(f"nothing to merge: there is one head ({', '.join(heads) or 'none'})")
    _created(args, [command.merge(config, "heads", message=args.message)])


def _history(args: argparse.Namespace) -> None:
    from alembic import command

    config, _ = _alembic(args)
    command.history(config)


def _current(args: argparse.Namespace) -> None:
    from alembic import command

    config, db = _alembic(args)
    _reachable(db, args)
    command.current(config)


def _check(args: argparse.Namespace) -> None:
    from alembic import command
    from alembic.util import AutogenerateDiffsDetected, CommandError

    config, db = _alembic(args)
    _reachable(db, args)
    try:
        command.check(config)
    except AutogenerateDiffsDetected as exc:
        from .migrations import describe_diffs

        found = getattr(exc, "diffs", None)
        listed = "\n".join(f"  {line}" for line in describe_diffs(found)) if found else exc
        raise CommandFailed(f"the models and the database differ:\n{listed}") from None
    except CommandError as exc:
        raise CommandFailed(str(exc)) from None
    print("the database matches the models")


# -- helpers --------------------------------------------------------------------


def _created(args: argparse.Namespace, scripts: Sequence[object]) -> None:
    root = args.project.resolve()
    for script in scripts:
        path = getattr(script, "path", None)
        if path is not None:
            print(f"created  {Path(path).relative_to(root)}")


class _Steps(logging.Filter):
    """Alembic's "Running upgrade a -> b, message" lines, without its setup chatter."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.getMessage().startswith("Running ")


@contextmanager
def _progress(stream: TextIO) -> Iterator[None]:
    """Show the migrations Alembic runs; it logs each on ``alembic.runtime.migration``."""
    logger = logging.getLogger("alembic.runtime.migration")
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(message)s"))
    handler.addFilter(_Steps())
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


def _settings(root: Path) -> Settings:
    return _configured(lambda: read_settings(root))


def _directory(args: argparse.Namespace, settings: Settings) -> str:
    """The db folder: ``--dir`` when given, else pyproject.toml's (or ``db``)."""
    given = getattr(args, "dir", None)
    return _configured(lambda: check_directory(given)) if given else settings.directory


def _configured(read: Callable[[], T]) -> T:
    """A project setting; a bad one is a usage error (exit 2) with its own message."""
    try:
        return read()
    except ConfigurationError as exc:
        raise CommandFailed(str(exc), 2) from None


def _load_project(root: Path, directory: str) -> Database:
    from .database import Database

    package = directory.replace("/", ".")
    if not (root / directory / "database.py").is_file():
        raise CommandFailed(f"no {directory}/ package in {root}; run `duo-orm init` there first", 2)
    if not (root / directory / "migrations" / "env.py").is_file():
        raise CommandFailed(f"no {directory}/migrations/env.py in {root}; run `duo-orm init`", 2)
    sys.path.insert(0, str(root))
    try:
        module = importlib.import_module(f"{package}.database")
        importlib.import_module(f"{package}.models")
    except DuoOrmError as exc:
        raise CommandFailed(str(exc)) from None
    found = [value for value in vars(module).values() if isinstance(value, Database)]
    if len(found) != 1:
        raise CommandFailed(
            f"{directory}/database.py must define exactly one Database (named db)", 2
        )
    return found[0]


def _alembic(args: argparse.Namespace) -> tuple[Config, Database]:
    from alembic.config import Config

    from .migrations import URL_OPTION, VERSION_TABLE_OPTION

    root = args.project.resolve()
    settings = _settings(root)
    directory = _directory(args, settings)
    db = _load_project(root, directory)
    config = Config()
    config.set_main_option("script_location", str(root / directory / "migrations"))
    config.set_main_option(VERSION_TABLE_OPTION, settings.version_table)
    url = getattr(args, "url", None)
    if url:
        config.set_main_option(URL_OPTION, url.replace("%", "%%"))
    return config, db


def _reachable(db: Database, args: argparse.Namespace) -> None:
    from .database import Database

    url = getattr(args, "url", None)
    target = Database(url, derive_async=False) if url else db
    try:
        target.connect()
    except DuoOrmError as exc:
        raise CommandFailed(str(exc)) from None
    finally:
        if url:
            target.disconnect()
