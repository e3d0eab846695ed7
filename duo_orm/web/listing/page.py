"""``Page[T]``: the response schema of a listed page, with links to its neighbours."""

from __future__ import annotations

from typing import Any, Generic, TypeVar

from pydantic import BaseModel, Field

__all__ = ["Page"]

T = TypeVar("T")
S = TypeVar("S", bound=BaseModel)


class Page(BaseModel, Generic[T]):
    """One page of a list: the rows, and how to reach the pages beside it.

    ``next`` and ``previous`` are relative links (path and query string) with the
    request's filters and sort kept; null where there is no such page. ``page`` and
    ``total`` are set for offset pages (``total`` only when the listing counts);
    both are null for cursor pages, which never count.
    """

    items: list[T]
    size: int = Field(description="The most items a page holds")
    page: int | None = Field(default=None, description="This page's number (offset pages)")
    total: int | None = Field(
        default=None, description="How many rows match (offset pages, if counted)"
    )
    next: str | None = Field(default=None, description="Link to the next page, or null")
    previous: str | None = Field(default=None, description="Link to the previous page, or null")

    def to_schema(self, schema: type[S]) -> Page[S]:
        """This page with each item as ``schema`` (built from the rows' attributes)."""
        fields: dict[str, Any] = {name: getattr(self, name) for name in type(self).model_fields}
        fields["items"] = [schema.model_validate(item, from_attributes=True) for item in self.items]
        return Page[schema](**fields)  # type: ignore[valid-type]
