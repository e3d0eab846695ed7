"""``provide_list_params(listing)``: a request's filters, sort and page as ``ListParams``.

Like the FastAPI shell, the provider reads the raw query string (the same input is
accepted and refused in every framework, a bad value a 400 from ``Listing.parse``);
its signature only documents the parameters, each declared as ``Any`` with the
listing's own schema so that Litestar lists them in OpenAPI without validating them.
"""

from __future__ import annotations

import inspect
from typing import Annotated, Any

from litestar import Request
from litestar.di import Provide
from litestar.params import QueryParameter

from duo_orm.web.listing import Listing, ListParams, parameter_docs

__all__ = ["provide_list_params"]


def provide_list_params(listing: Listing) -> Provide:
    """For ``dependencies={"params": provide_list_params(users)}``; the handler then
    takes ``params: NamedDependency[ListParams]``."""

    def provider(request: Request[Any, Any, Any], **documented: Any) -> ListParams:
        items = request.query_params.multi_items()
        return listing.parse(items, request.url.path)

    parameters = [inspect.Parameter("request", inspect.Parameter.KEYWORD_ONLY, annotation=Request)]
    annotations: dict[str, Any] = {"request": Request, "return": ListParams}
    for index, (name, schema, description) in enumerate(parameter_docs(listing)):
        documented = QueryParameter(name=name, description=description, schema_extra=schema)
        annotation = Annotated[Any, documented]
        key = f"_duo_list_{index}"
        annotations[key] = annotation
        parameters.append(
            inspect.Parameter(
                key, inspect.Parameter.KEYWORD_ONLY, default=None, annotation=annotation
            )
        )
    provider.__signature__ = inspect.Signature(parameters, return_annotation=ListParams)  # type: ignore[attr-defined]
    provider.__annotations__ = annotations
    return Provide(provider, sync_to_thread=False)
