"""``await json_body(request)``: the request body as JSON, with bad input a 400."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request

from duo_orm.web.body import decode_json


async def json_body(request: Request) -> Any:
    """Use instead of ``await request.json()``: malformed JSON, bytes that are not text,
    and JSON nested too deeply for the parser become a 400 in the adapter's error shape
    (through ``duo_exception_handlers``), not a plain-text 500.

    A safe reader rather than app-wide handlers for ``JSONDecodeError`` and
    ``RecursionError``: those would also blame the client for the app's own bugs
    (see ``duo_orm.web.body``).
    """
    return decode_json(await request.body())
