"""Runs the Python examples of README.md and docs/*.md as tests (Sybil).

The blocks of one page run in order in one module of their own, so a page can build an
example up step by step. Each page runs in a fresh temporary working directory, so a
``sqlite:///./app.db`` URL lands there, and its Databases are disconnected at the end.
A block that is deliberately a fragment is preceded by ``<!-- skip: next -->``; so are
docs/testing.md's blocks, tests of a user's project, which tests/test_docs_examples.py
runs in one.
"""

from __future__ import annotations

import itertools
import os
import shutil
import sys
import tempfile
from types import ModuleType
from typing import Any

from sybil import Example, Sybil
from sybil.parsers.markdown import CodeBlockParser, SkipParser

from duo_orm import Database


def _run_in_page_module(example: Example) -> None:
    """Run a block in the page's module, as a script's code runs.

    A real module in ``sys.modules`` (not Sybil's plain dict) because pydantic, FastAPI
    and Litestar resolve a class's annotations through its module.
    """
    module: ModuleType = example.namespace["module"]
    padding = "\n" * (example.line + example.parsed.line_offset)  # tracebacks name page lines
    code = compile(padding + example.parsed, example.path, "exec", dont_inherit=True)
    exec(code, module.__dict__)


_pages = itertools.count()


def _set_up_page(namespace: dict[str, Any]) -> None:
    name = f"duo_orm_docs_{next(_pages)}"
    namespace["module"] = sys.modules[name] = ModuleType(name)
    namespace["previous_cwd"] = os.getcwd()
    namespace["workdir"] = tempfile.mkdtemp(prefix="duo-orm-docs-")
    os.chdir(namespace["workdir"])


def _tear_down_page(namespace: dict[str, Any]) -> None:
    module: ModuleType = namespace["module"]
    for value in list(vars(module).values()):
        if isinstance(value, Database):
            value.disconnect()
    del sys.modules[module.__name__]
    os.chdir(namespace["previous_cwd"])
    shutil.rmtree(namespace["workdir"], ignore_errors=True)


pytest_collect_file = Sybil(
    parsers=[CodeBlockParser("python", _run_in_page_module), SkipParser()],
    patterns=["README.md", "docs/*.md"],
    setup=_set_up_page,
    teardown=_tear_down_page,
).pytest()
