"""Filtering, sorting and pagination from the query string, framework-neutral.

Declare a ``Listing`` once; each adapter turns a request's query string into
``ListParams`` (FastAPI ``Depends(list_params(listing))``, Starlette
``list_params(listing, request)``, Litestar ``provide_list_params(listing)``), and
``await params.apply(query).page()`` answers a ``Page``. Bad input is an
``InvalidQueryError``: a bounded 400 through every adapter.
"""

from .openapi import openapi_parameters, parameter_docs
from .operators import OPERATORS
from .page import Page
from .params import Listed, ListParams
from .spec import Listing

__all__ = [
    "OPERATORS",
    "ListParams",
    "Listed",
    "Listing",
    "Page",
    "openapi_parameters",
    "parameter_docs",
]
