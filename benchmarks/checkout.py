"""A second duo-orm checkout in the same run, for before/after figures.

``python -m benchmarks.run --duo-orm-path PATH`` measures duo-orm from ``PATH`` beside
this checkout's: the end-to-end table gets a "duo-orm (PATH)" app (its uvicorn process
imports ``duo_orm`` and ``duo_orm_fastapi`` from ``PATH``), and the core table gets a
"duo-orm (PATH)" column from a second core run in a subprocess that imports duo-orm from
``PATH`` and this checkout's ``benchmarks`` (so both run the same scenarios). That column's
ratio is to the SQLAlchemy baseline of its own run; its rounds are not interleaved with
this process's.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent  # this checkout's benchmarks package


def label(path: str) -> str:
    return f"duo-orm ({path})"


def environment(path: str) -> dict[str, str]:
    """Variables that make a child process import duo-orm from ``path`` first."""
    return {"PYTHONPATH": os.pathsep.join(filter(None, [path, os.environ.get("PYTHONPATH")]))}


def check(path: str, env: dict[str, str], cwd: str) -> None:
    """Refuse to measure a 'second checkout' whose duo_orm is really imported from elsewhere."""
    probe = "import duo_orm, duo_orm_fastapi; print(duo_orm.__file__)"
    found = subprocess.run(
        [sys.executable, "-c", probe],
        env={**os.environ, **env},
        cwd=cwd,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    if not Path(found).resolve().is_relative_to(Path(path).resolve()):
        raise RuntimeError(f"--duo-orm-path {path}: duo_orm was imported from {found}")


def core_medians(path: str, kind: str, quick: bool, rounds: int) -> dict[tuple[str, str], Any]:
    """The core scenarios (no peers) with duo-orm from ``path``: medians by (scenario, mode)."""
    with tempfile.TemporaryDirectory() as folder:
        # only this checkout's benchmarks package in the child's first sys.path entry, so
        # duo_orm (and nothing else of this checkout) comes from ``path``
        (Path(folder) / "benchmarks").symlink_to(HERE)
        # the shim folder first, then ``path``: PATH's own benchmarks/ stays hidden
        env = environment(os.pathsep.join([folder, path]))
        check(path, env, folder)
        output = Path(folder) / "core.json"
        command = [sys.executable, "-m", "benchmarks.run", "--only", "core", "--no-peers"]
        command += ["--db", kind, "--rounds", str(rounds), "--json", str(output)]
        command += ["--quick"] if quick else []
        subprocess.run(command, env={**os.environ, **env}, cwd=folder, check=True)
        found = json.loads(output.read_text())
    return {(row["scenario"], row["mode"]): row["medians"] for row in found}
