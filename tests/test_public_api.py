"""The adapters import, and the core never imports a web framework.

(The public names and the exception hierarchy are checked in test_exports.py.)"""

from __future__ import annotations

import importlib

import pytest


@pytest.mark.parametrize("module", ["duo_orm_fastapi", "duo_orm_starlette", "duo_orm_litestar"])
def test_adapters_import_and_core_stays_framework_free(module: str) -> None:
    importlib.import_module(module)
    import sys

    core_files = [m for name, m in sys.modules.items() if name.startswith("duo_orm.")]
    for loaded in core_files:
        source = getattr(loaded, "__file__", "") or ""
        with open(source, encoding="utf-8") as handle:
            text = handle.read()
        for framework in ("fastapi", "starlette", "litestar"):
            assert f"import {framework}" not in text and f"from {framework}" not in text, source
