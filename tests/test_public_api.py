"""The names API.md promises are importable, and the exception hierarchy it describes."""

from __future__ import annotations

import importlib

import pytest

import duo_orm
from duo_orm import exceptions

CORE_NAMES = [
    "Database", "Model", "Query", "Page",
    "Mapped", "mapped_column", "relationship", "ForeignKey",
    "String", "Integer", "BigInteger", "SmallInteger", "Float", "Numeric", "Boolean",
    "Date", "DateTime", "Time", "Interval", "Text", "LargeBinary", "Enum", "Uuid", "JSON",
    "PG_JSONB", "PG_ARRAY", "PG_UUID",
    "func", "text", "select", "and_", "or_", "not_", "ValidationError",
]  # fmt: skip
EXCEPTION_NAMES = [
    "DuoOrmError", "ConfigurationError", "ObjectNotFoundError", "MultipleObjectsFoundError",
    "InvalidQueryError", "UnsupportedOperationError", "IntegrityError", "ValidationError",
    "DatabaseError", "TransactionConflictError",
]  # fmt: skip


@pytest.mark.parametrize("name", CORE_NAMES + EXCEPTION_NAMES)
def test_top_level_names(name: str) -> None:
    assert getattr(duo_orm, name) is not None
    assert name in duo_orm.__all__


@pytest.mark.parametrize("name", EXCEPTION_NAMES)
def test_exceptions_module(name: str) -> None:
    error = getattr(exceptions, name)
    assert issubclass(error, exceptions.DuoOrmError) and error is getattr(duo_orm, name)


def test_hierarchy_and_attributes() -> None:
    assert issubclass(exceptions.ObjectNotFoundError, LookupError)
    assert issubclass(exceptions.UnsupportedOperationError, exceptions.InvalidQueryError)
    assert issubclass(exceptions.TransactionConflictError, exceptions.DatabaseError)
    assert exceptions.TransactionConflictError("x").retryable is True
    error = exceptions.ValidationError("too short", field="name", detail={"min": 3})
    assert (error.message, error.field, error.detail) == ("too short", "name", {"min": 3})
    assert isinstance(error, ValueError)
    conflict = exceptions.IntegrityError("dup", kind="unique", constraint="users_email_key")
    assert (conflict.kind, conflict.constraint) == ("unique", "users_email_key")


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
