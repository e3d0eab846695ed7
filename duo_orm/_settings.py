"""The project's ``[tool.duo-orm]`` settings in ``pyproject.toml``, read by the CLI.

    [tool.duo-orm]
    duo_orm_dir = "src/app/db"         # the db package (default: db)
    version_table = "alembic_version"  # where Alembic records the revision

Both names are duo-orm 0.1's. The folder is imported as a package from the
project root, so each part of it must be a Python identifier. An unknown key is
refused (a typo would otherwise be ignored and the default used in silence).
"""

from __future__ import annotations

import keyword
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from .exceptions import ConfigurationError

DEFAULT_DIR = "db"
DEFAULT_VERSION_TABLE = "alembic_version"
TABLE = "tool.duo-orm"
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass(frozen=True)
class Settings:
    directory: str = DEFAULT_DIR  # relative to the project root, "/"-separated
    version_table: str = DEFAULT_VERSION_TABLE
    declared: bool = False  # whether pyproject.toml has a [tool.duo-orm] table


def read_settings(root: Path) -> Settings:
    table = _table(_load(root / "pyproject.toml"))
    if table is None:
        return Settings()
    unknown = sorted(set(table) - {"duo_orm_dir", "version_table"})
    if unknown:
        raise ConfigurationError(
            f"pyproject.toml [{TABLE}]: unknown key {unknown[0]!r}; "
            f"the keys are duo_orm_dir and version_table"
        )
    return Settings(
        directory=check_directory(table.get("duo_orm_dir", DEFAULT_DIR)),
        version_table=_check_version_table(table.get("version_table", DEFAULT_VERSION_TABLE)),
        declared=True,
    )


def check_directory(raw: object) -> str:
    """A db folder given by the user, as a clean relative path of identifiers."""
    if not isinstance(raw, str) or not raw.strip():
        raise ConfigurationError(f"duo_orm_dir must be a folder name, got {raw!r}")
    path = PurePosixPath(raw.strip().replace("\\", "/"))
    parts = [part for part in path.parts if part != "."]
    if path.is_absolute() or not parts:
        raise ConfigurationError(
            f"duo_orm_dir must be a folder inside the project, relative to it; got {raw!r}"
        )
    for part in parts:
        if not part.isidentifier() or keyword.iskeyword(part):
            raise ConfigurationError(
                f"duo_orm_dir {raw!r}: {part!r} cannot be imported as a Python package "
                f"(use letters, digits and underscores)"
            )
    return "/".join(parts)


def remember_directory(root: Path, directory: str, settings: Settings) -> bool:
    """Record ``directory`` in pyproject.toml; returns whether the file was written.

    The table is appended (or the file created) when there is none; an existing
    table is never rewritten, so one that says otherwise is an error to fix by hand.
    """
    if settings.declared:
        if settings.directory == directory:
            return False
        raise ConfigurationError(
            f"pyproject.toml already has a [{TABLE}] table (its folder: {settings.directory}); "
            f'set duo_orm_dir = "{directory}" in it by hand (init never rewrites a file), '
            f"then run init again"
        )
    if directory == DEFAULT_DIR:
        return False
    path = root / "pyproject.toml"
    before = path.read_text(encoding="utf-8") if path.is_file() else ""
    separator = (
        "" if not before or before.endswith("\n\n") else "\n" if before.endswith("\n") else "\n\n"
    )
    after = f'{before}{separator}[{TABLE}]\nduo_orm_dir = "{directory}"\n'
    _parse(after, path)  # never leave a file TOML cannot read
    path.write_text(after, encoding="utf-8")
    return True


def _check_version_table(raw: object) -> str:
    if not isinstance(raw, str) or not _IDENTIFIER.fullmatch(raw):
        raise ConfigurationError(
            f"pyproject.toml [{TABLE}]: version_table must be a table name of letters, "
            f"digits and underscores, got {raw!r}"
        )
    return raw


def _load(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    return _parse(path.read_text(encoding="utf-8"), path)


def _parse(text: str, path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigurationError(f"{path.name} is not valid TOML: {exc}") from None


def _table(data: dict[str, Any]) -> dict[str, Any] | None:
    tool = data.get("tool", {})
    table = tool.get("duo-orm") if isinstance(tool, dict) else None
    if table is not None and not isinstance(table, dict):
        raise ConfigurationError(f"pyproject.toml: [{TABLE}] must be a table")
    return table
