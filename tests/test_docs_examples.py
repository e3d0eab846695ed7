"""Documentation examples that must run the way a user runs them, not in-process.

conftest.py at the repository root runs every Python block of README.md and docs/*.md
in-process (Sybil). Two kinds need more: the README's first example is a script a
newcomer pastes into a file and runs, and docs/testing.md's blocks are tests of a
user's project, run by pytest with the plugin configured as the page says.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from sybil import Document
from sybil.parsers.markdown import CodeBlockParser

README = Path(__file__).resolve().parent.parent / "README.md"
TESTING_PAGE = README.parent / "docs" / "testing.md"


def blocks(path: Path, language: str) -> list[str]:
    document = Document.parse(str(path), CodeBlockParser(language))
    return [str(example.parsed) for example in document.examples()]


def test_readme_first_example_runs_as_a_script_and_again(tmp_path: Path) -> None:
    script = tmp_path / "quickstart.py"
    script.write_text(blocks(README, "python")[0])
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


# The project docs/testing.md assumes: app/db/database.py, app/db/models.py, app/main.py.
USER_PROJECT = {
    "app/__init__.py": "",
    "app/db/__init__.py": "",
    "app/db/database.py": """
        from duo_orm import Database

        db = Database("sqlite:///./app.db")  # the plugin points it at a test database
    """,
    "app/db/models.py": """
        from duo_orm import Mapped, String, mapped_column

        from .database import db


        class User(db.Model):
            __tablename__ = "users"
            id: Mapped[int] = mapped_column(primary_key=True)
            email: Mapped[str] = mapped_column(String(255), unique=True)
            name: Mapped[str]
    """,
    "app/main.py": """
        from fastapi import FastAPI
        from pydantic import BaseModel

        from duo_orm_fastapi import DuoORM

        from .db.database import db
        from .db.models import User

        app = FastAPI()
        DuoORM(app, db)


        class UserIn(BaseModel):
            email: str
            name: str


        @app.post("/users/", status_code=201)
        async def signup(data: UserIn) -> dict[str, int]:
            return {"id": (await User.create(data)).id}
    """,
}


@pytest.mark.parametrize(
    "conftest",  # the page's last two blocks are fixtures for a conftest.py: which one, and imports
    [
        pytest.param(None, id="plugin-fixtures"),
        pytest.param(
            (3, "import pytest\n\nfrom app.db.database import db\n\n\n"), id="own-databases"
        ),
        pytest.param(
            (4, "import pytest\n\n\n"), id="throwaway-postgresql", marks=pytest.mark.postgres
        ),
    ],
)
def test_testing_page_examples_pass_in_a_user_project(
    pytester: pytest.Pytester, conftest: tuple[int, str] | None
) -> None:
    """The page's configuration and its tests, run as the page tells a user to."""
    python = blocks(TESTING_PAGE, "python")
    pytester.makepyfile(**{name: textwrap.dedent(source) for name, source in USER_PROJECT.items()})
    pytester.makepyprojecttoml(blocks(TESTING_PAGE, "toml")[0])
    pytester.makepyfile(test_users="\n\n".join(python[:3]))
    if conftest is not None:
        index, imports = conftest
        pytester.makeconftest(imports + python[index])
    result = pytester.runpytest_subprocess("-p", "no:randomly")
    result.assert_outcomes(passed=4)
