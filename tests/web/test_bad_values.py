"""Values no column can hold, sent by a hostile client: a 404 or a 422, never a 5xx.

Per adapter, for ``async def`` and ``def`` handlers, on SQLite and PostgreSQL: a key
no row can have is a missing row (404), and a payload with an out-of-range integer,
a NUL or an unpaired surrogate is a 422 naming the field, with nothing written.
Afterwards the app still answers normally (no broken connection, no aborted
transaction left behind).
"""

from __future__ import annotations

from typing import Any

import pytest

from .conftest import Served

pytestmark = pytest.mark.anyio

IMPOSSIBLE_KEYS = ["2147483648", "9223372036854775808", "99999999999999999999"]


def refused_field(served: Served, body: dict[str, Any]) -> str:
    """The field a 422 body names, in the framework's own error shape."""
    if served.framework == "litestar":
        [error] = body["extra"]
        return str(error["key"])
    [error] = body["detail"]
    return str(error["loc"][-1])


def out_of_range(served: Served) -> list[int]:
    """``ref_id`` values (an Integer column) this database cannot hold."""
    if served.shop.db.dialect == "sqlite":  # 64-bit integers
        return [2**63, -(2**63) - 1, 99999999999999999999]
    return [2**31, -(2**31) - 1, 2**63, 99999999999999999999]


async def still_serving(served: Served) -> None:
    created = await served.client.post("/items", json={"name": "after"})
    assert created.status_code == 201, created.text
    assert (await served.client.get(f"/items/{created.json()['id']}")).status_code == 200


async def test_a_key_no_row_can_have_is_404(served: Served) -> None:
    for key in IMPOSSIBLE_KEYS:
        response = await served.client.get(f"/items/{key}")
        assert response.status_code == 404, (key, response.text)
        assert "not found" in response.json()["detail"]
    await still_serving(served)


async def test_an_out_of_range_integer_is_422_naming_the_field(served: Served) -> None:
    for value in out_of_range(served):
        response = await served.client.post("/items", json={"name": "a", "ref_id": value})
        assert response.status_code == 422, (value, response.text)
        assert refused_field(served, response.json()) == "ref_id"
        assert "out of range" in response.text
    assert served.names() == []
    await still_serving(served)


async def test_nul_in_a_string_is_422_naming_the_field(served: Served) -> None:
    response = await served.client.post("/items", json={"name": "a\x00b"})
    assert response.status_code == 422, response.text
    assert refused_field(served, response.json()) == "name"
    assert "NUL" in response.text
    assert served.names() == []
    await still_serving(served)


async def test_a_lone_surrogate_is_422_naming_the_field(served: Served) -> None:
    # httpx cannot encode "a\ud800b" itself: the JSON escape is what a client sends
    response = await served.client.post(
        "/items", content=b'{"name": "a\\ud800b"}', headers={"content-type": "application/json"}
    )
    if served.framework == "litestar":
        # msgspec refuses to decode the body at all: Litestar's own 400 for a malformed
        # body, before any handler (or duo-orm) runs
        assert response.status_code == 400, response.text
    else:
        assert response.status_code == 422, response.text
        assert refused_field(served, response.json()) == "name"
        assert "surrogate" in response.text
    assert served.names() == []
    await still_serving(served)
