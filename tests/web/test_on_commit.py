"""DESIGN.md section 3, item 12: ``db.on_commit`` in a request, for every adapter.

The callbacks run after the request's COMMIT and before the response start is
sent, exactly once; never after a 4xx, an unhandled exception or a failed
COMMIT; a failing callback is logged and leaves the response alone. Each test
runs per framework, for ``async def`` and ``def`` handlers, on every backend.
"""

from __future__ import annotations

import logging
from typing import Any

import httpx
import pytest

from .conftest import Served

pytestmark = pytest.mark.anyio


def watching_response_start(served: Served, seen: list[list[tuple[str, int]]]) -> Any:
    """The served app, noting what the callbacks had done when the response start left it."""

    async def app(scope: Any, receive: Any, send: Any) -> None:
        async def watched_send(message: Any) -> None:
            if message["type"] == "http.response.start":
                seen.append(list(served.shop.committed))
            await send(message)

        await served.app(scope, receive, watched_send)

    return app


async def post(served: Served, then: str, payload: dict[str, Any]) -> httpx.Response:
    """POST /items/on-commit; unhandled exceptions come back as the app's own 500."""
    transport = httpx.ASGITransport(app=served.app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        return await client.post("/items/on-commit", params={"then": then}, json=payload)


async def test_runs_once_after_the_commit_before_the_response_starts(served: Served) -> None:
    seen: list[list[tuple[str, int]]] = []
    transport = httpx.ASGITransport(app=watching_response_start(served, seen))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        response = await client.post("/items/on-commit", json={"name": "welcome"})
    assert response.status_code == 201
    # the callback saw its row committed, and had run when the 201 started
    assert seen == [[("welcome", 1)]]
    assert served.shop.committed == [("welcome", 1)]  # exactly once
    await served.client.post("/items", json={"name": "other"})  # a later request: no rerun
    assert served.shop.committed == [("welcome", 1)]


async def test_never_after_an_http_error(served: Served) -> None:
    response = await post(served, "http-error", {"name": "x"})
    assert response.status_code == 400
    assert served.shop.committed == [] and served.names() == []


async def test_never_after_an_unhandled_exception(served: Served) -> None:
    response = await post(served, "crash", {"name": "x"})
    assert response.status_code == 500
    assert served.shop.committed == [] and served.names() == []


async def test_never_after_a_failed_commit(served: Served) -> None:
    # The foreign key is DEFERRED: the handler succeeds, the COMMIT is refused.
    response = await post(served, "", {"name": "orphan", "ref_id": 999})
    assert response.status_code == 409
    assert served.shop.committed == [] and served.names() == []


async def test_failing_callback_is_logged_and_changes_nothing(
    served: Served, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger="duo_orm.transaction"):
        response = await post(served, "failing-callback", {"name": "kept"})
    assert response.status_code == 201 and "id" in response.json()
    assert served.shop.committed == [("kept", 1)]  # the next callback still ran
    [record] = [r for r in caplog.records if r.name == "duo_orm.transaction"]
    assert record.levelno == logging.ERROR and "failing_callback" in record.getMessage()
    assert record.exc_info is not None and "e-mail server" in str(record.exc_info[1])
