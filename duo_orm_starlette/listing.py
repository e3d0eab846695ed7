"""``list_params(listing, request)``: a request's filters, sort and page as ``ListParams``."""

from __future__ import annotations

from starlette.requests import Request

from duo_orm.web.listing import Listing, ListParams

__all__ = ["list_params"]


def list_params(listing: Listing, request: Request) -> ListParams:
    """The checked listing choices of ``request``; bad input raises ``InvalidQueryError``,
    which ``duo_exception_handlers`` answers with a 400.

    Starlette generates no OpenAPI: ``duo_orm.web.listing.openapi_parameters(listing)``
    gives the parameter objects for a schema of your own.
    """
    return listing.parse(request.query_params.multi_items(), request.url.path)
