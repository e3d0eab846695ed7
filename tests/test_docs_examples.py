"""The README's first example is a script a newcomer can paste into a file and run.

conftest.py at the repository root runs every Python block of README.md and docs/*.md
in-process (Sybil); this runs the first one the way a user would: alone, as a file,
in a fresh interpreter and an empty directory.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from sybil import Document
from sybil.parsers.markdown import CodeBlockParser

README = Path(__file__).resolve().parent.parent / "README.md"


def first_python_block(path: Path) -> str:
    document = Document.parse(str(path), CodeBlockParser("python"))
    return str(next(document.examples()).parsed)


def test_readme_first_example_runs_as_a_script_and_again(tmp_path: Path) -> None:
    script = tmp_path / "quickstart.py"
    script.write_text(first_python_block(README))
    for _ in range(2):  # a second run starts from empty tables, as its comment says
        result = subprocess.run(
            [sys.executable, str(script)],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 0, result.stderr
        assert result.stdout.splitlines()[-1] == "3 users"
    assert (tmp_path / "app.db").is_file()  # the relative URL is relative to the working directory
