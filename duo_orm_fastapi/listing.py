"""``Depends(list_params(listing))``: a request's filters, sort and page as ``ListParams``.

The dependency reads the raw query string, as the Starlette and Litestar shells do,
so every framework accepts and refuses the same input (a bad value is a 400 from
``Listing.parse``, not FastAPI's 422). Its signature only documents the parameters:
each is declared as ``Any`` with the listing's own schema, so FastAPI shows them in
OpenAPI without validating them first.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import Query, Request

from duo_orm.web.listing import Listing, ListParams, parameter_docs

__all__ = ["list_params"]


def list_params(listing: Listing) -> Callable[..., Awaitable[ListParams]]:
    """A dependency: ``params: Annotated[ListParams, Depends(list_params(users))]``."""

    async def dependency(request: Request, **documented: Any) -> ListParams:  # no thread
        return listing.parse(request.query_params.multi_items(), request.url.path)

    parameters = [inspect.Parameter("request", inspect.Parameter.KEYWORD_ONLY, annotation=Request)]
    for index, (name, schema, description) in enumerate(parameter_docs(listing)):
        query = Query(alias=name, description=description, json_schema_extra=schema)
        parameters.append(
            inspect.Parameter(
                f"p{index}",
                inspect.Parameter.KEYWORD_ONLY,
                default=None,
                annotation=Annotated[Any, query],
            )
        )
    dependency.__signature__ = inspect.Signature(parameters, return_annotation=ListParams)  # type: ignore[attr-defined]
    return dependency
