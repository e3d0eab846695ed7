"""A listing's query parameters as OpenAPI parameter objects, for every adapter.

FastAPI and Litestar get them through the dependency's signature (see
``signature.py``); Starlette, which generates no OpenAPI, can paste
``openapi_parameters(listing)`` into a schema of its own.
"""

from __future__ import annotations

from typing import Any

from .cursor import MAX_CURSOR_CHARS
from .operators import DESCRIPTIONS
from .spec import MAX_PAGE, SEPARATOR, Listing

__all__ = ["ParameterDoc", "openapi_parameters", "parameter_docs"]

ParameterDoc = tuple[str, dict[str, Any], str]  # (name, schema, description)


def parameter_docs(listing: Listing) -> list[ParameterDoc]:
    """Every query parameter the listing reads: name, JSON schema and description."""
    sort_values = [f"{sign}{name}" for name in listing.sortable for sign in ("", "-")]
    docs: list[ParameterDoc] = [
        (
            "sort",
            {"type": "array", "items": {"type": "string", "enum": sort_values}},
            "Sort order: fields, '-' for descending; repeat the parameter or separate "
            f"with commas (sort=-{listing.sortable[0] if listing.sortable else 'id'},...). "
            "The primary key breaks ties, in the last field's direction.",
        ),
        (
            "size",
            {
                "type": "integer",
                "minimum": 1,
                "maximum": listing.max_size,
                "default": listing.default_size,
            },
            f"Items per page (default {listing.default_size}, at most {listing.max_size})",
        ),
        (
            "page",
            {"type": "integer", "minimum": 1, "maximum": MAX_PAGE, "default": 1},
            "Offset pagination: the page number (not with cursor)"
            + ("; the response counts the total" if listing.count else ""),
        ),
    ]
    if listing.keyset:
        docs.append(
            (
                "cursor",
                {"type": "string", "maxLength": MAX_CURSOR_CHARS},
                "Keyset pagination: empty for the first page, then the value from the "
                "next/previous link. Opaque and signed; not with page.",
            )
        )
    for name, operators in listing.operators.items():
        schema = listing.types[name].schema
        for operator in operators:
            parameter = name if operator == "eq" else f"{name}{SEPARATOR}{operator}"
            if operator == "is_null":
                shown: dict[str, Any] = {"type": "boolean"}
            elif operator == "in":
                shown = {"type": "string"}  # comma-separated values of the field's type
            else:
                shown = dict(schema)
            docs.append((parameter, shown, f"Filter: {name} {DESCRIPTIONS[operator]}"))
    return docs


def openapi_parameters(listing: Listing) -> list[dict[str, Any]]:
    """The OpenAPI 3 parameter objects of ``listing`` (for Starlette's own schemas)."""
    return [
        {
            "name": name,
            "in": "query",
            "required": False,
            "description": description,
            "schema": schema,
        }
        for name, schema, description in parameter_docs(listing)
    ]
