"""Request bodies read safely: a client's bad JSON is a 400, never a server error.

FastAPI and Litestar parse bodies themselves; Starlette leaves it to the handler,
whose ``await request.json()`` lets ``JSONDecodeError`` and, for JSON nested about
1,000 deep, ``RecursionError`` escape as plain-text 500s. ``decode_json`` catches
both right where the client's bytes are parsed.

Why not exception handlers for ``JSONDecodeError`` and ``RecursionError`` instead:
handlers are app-wide, so they would also turn the app's own runaway recursion, or
a malformed reply from a service the app calls, into a 400 that blames the
client and hides a server bug from the log. Here only the request body's own
parse can produce the 400.
"""

from __future__ import annotations

import json
from typing import Any

from .errors import InvalidBodyError

__all__ = ["decode_json"]


def decode_json(body: bytes) -> Any:
    """``body`` parsed as JSON; ``InvalidBodyError`` (400) when it is not JSON a server can use."""
    try:
        return json.loads(body)
    except RecursionError:
        raise InvalidBodyError("The JSON body is nested too deeply.") from None
    except json.JSONDecodeError as exc:
        raise InvalidBodyError(
            f"The body is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}."
        ) from None
    except ValueError:  # bytes in no encoding JSON allows
        raise InvalidBodyError("The body is not valid JSON: it is not UTF-8 text.") from None
