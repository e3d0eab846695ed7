"""An adapter imported without its framework says which duo-orm extra installs it."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

# Each run blocks the named packages the way Python documents it (None in sys.modules),
# as if they were not installed, then imports the module in a fresh interpreter.
IMPORT_WITHOUT = textwrap.dedent(
    """
    import sys
    for name in sys.argv[1:]:
        sys.modules[name] = None
    try:
        import {modules}
    except ImportError as exc:
        print(type(exc).__name__, exc.name, exc, sep="|")
    else:
        print("imported")
    """
)


def import_without(modules: str, *blocked: str) -> str:
    code = IMPORT_WITHOUT.format(modules=modules)
    done = subprocess.run(
        [sys.executable, "-c", code, *blocked],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return done.stdout.strip()


@pytest.mark.parametrize(
    ("adapter", "extra", "blocked"),
    [
        ("duo_orm_fastapi", "fastapi", ["fastapi"]),
        ("duo_orm_fastapi", "fastapi", ["fastapi", "starlette"]),
        ("duo_orm_starlette", "starlette", ["starlette"]),
        ("duo_orm_litestar", "litestar", ["litestar"]),
    ],
    ids=["fastapi", "fastapi-and-starlette", "starlette", "litestar"],
)
def test_adapter_without_its_framework_names_the_extra(
    adapter: str, extra: str, blocked: list[str]
) -> None:
    kind, name, message = import_without(adapter, *blocked).split("|")
    assert kind == "ModuleNotFoundError"  # `except ImportError` keeps working
    assert name == blocked[0]
    assert message == (
        f'{adapter} needs {blocked[0]}, which is not installed: pip install "duo-orm[{extra}]"'
    )


def test_core_and_pytest_plugin_import_without_any_framework() -> None:
    modules = "duo_orm, duo_orm.web, duo_orm_pytest.plugin"
    assert import_without(modules, "fastapi", "starlette", "litestar") == "imported"


def test_a_missing_module_the_extra_does_not_bring_is_left_alone() -> None:
    # sqlalchemy is a core dependency: no extra would fix it, so no extra is named
    kind, name, message = import_without("duo_orm_litestar", "sqlalchemy").split("|")
    assert (kind, name) == ("ModuleNotFoundError", "sqlalchemy")
    assert "duo-orm[" not in message
